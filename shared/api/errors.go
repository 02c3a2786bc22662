package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/reauth"
)

// Error is an HTTP error with a machine-readable code and a message safe
// to show the caller.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// errorBody is the one error shape of every endpoint (SPEC section 9).
type errorBody struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// errorTable is the one mapping from domain and adapter errors to HTTP
// status and code, tested in order. A domain error's code is its own
// (credential.Code: the name the audit trail records too), so its row
// leaves code empty. An empty message shows the error's own text: only
// input errors, whose text the domain writes for the caller; upstream
// details stay in the log.
var errorTable = []struct {
	err     error
	status  int
	code    string
	message string
}{
	{auth.ErrUnauthenticated, http.StatusUnauthorized, "unauthenticated", "a valid bearer token is required"},
	{auth.ErrForbidden, http.StatusForbidden, "forbidden", "your role may not do this"},
	{reauth.ErrHeld, http.StatusTooManyRequests, "reauth_held", "too many failed re-authentications today: re-authentication is held until a platform-admin lifts it"},
	{reauth.ErrLocked, http.StatusTooManyRequests, "rate_limited", "too many failed re-authentications; try again after Retry-After seconds"},
	{reauth.ErrFailed, http.StatusUnauthorized, "reauth_failed", "the password or the TOTP code is wrong"},
	{reauth.ErrRequired, http.StatusUnauthorized, "reauth_required", "re-authenticate (POST /api/v1/platform-admin/reauth) and send the token in X-Reauth-Token"},
	{reauth.ErrAudit, http.StatusServiceUnavailable, "audit_unavailable", "the audit trail cannot be written, so nothing was done; try again later"},
	{reauth.ErrUnavailable, http.StatusServiceUnavailable, "upstream_unavailable", "Vault is unavailable; nothing was decided, try again later"},
	{audit.ErrQueryTooBroad, http.StatusUnprocessableEntity, "query_too_broad", fmt.Sprintf("the filters match more than %d records to read; narrow them with from and to", audit.MaxScan)},
	{credential.ErrIncidentRequired, http.StatusUnprocessableEntity, "", ""},
	{credential.ErrTokenRequired, http.StatusUnprocessableEntity, "", ""},
	{credential.ErrEndpointNotAllowed, http.StatusUnprocessableEntity, "", ""},
	{credential.ErrInvalidInput, http.StatusBadRequest, "", ""},
	{credential.ErrNotFound, http.StatusNotFound, "", "no credential is stored for this tenant"},
	{credential.ErrCooldown, http.StatusConflict, "", "this credential was changed moments ago; rotate it again after Retry-After seconds"},
	{credential.ErrCompromised, http.StatusConflict, "", "an emergency reset declared this password compromised and did not finish; run the emergency reset again"},
	{credential.ErrConflict, http.StatusConflict, "", "another change of this credential is in progress; try again"},
	{credential.ErrRejected, http.StatusUnprocessableEntity, "", "the tenant's MailU rejected the request; nothing was changed in Vault"},
	{credential.ErrMailUMisconfigured, http.StatusUnprocessableEntity, "", "the tenant's MailU admin API is not configured (it needs API=true and API_TOKEN; docs/deploy.md); nothing was changed"},
	{credential.ErrDomainFull, http.StatusUnprocessableEntity, "", "the tenant's MailU refuses to create the admin user: its domain has the maximum number of users; nothing was changed in Vault"},
	{credential.ErrLoginRefused, http.StatusServiceUnavailable, "", "the tenant's MailU holds the password but refuses its SMTP login (a rate limit, AUTH_REQUIRE_TOKENS or a disabled user; docs/deploy.md); no password was overwritten, a change in progress stays pending and is retried later"},
	{credential.ErrMailURateLimited, http.StatusServiceUnavailable, "", "the tenant's MailU is rate-limiting this service (AUTH_RATELIMIT_IP; docs/deploy.md); nothing was overwritten, try again later"},
	{credential.ErrAudit, http.StatusServiceUnavailable, "", "the audit trail cannot be written, so nothing was done; try again later"},
	{credential.ErrTrailUnreadable, http.StatusServiceUnavailable, "", "the audit trail cannot be read; try again later"},
	{credential.ErrUnavailable, http.StatusServiceUnavailable, "", "Vault or MailU is unavailable; nothing was lost, try again later"},
}

// toError maps err through errorTable; anything else is a 500 that says
// nothing.
func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for _, row := range errorTable {
		if errors.Is(err, row.err) {
			code, msg := row.code, row.message
			if code == "" {
				code = credential.Code(row.err)
			}
			if msg == "" {
				msg = publicMessage(err)
			}
			return &Error{row.status, code, msg}
		}
	}
	return &Error{http.StatusInternalServerError, "internal", "internal error"}
}

// publicMessage is the text after the sentinel in an input error, which the
// domain writes for the caller ("invalid input: tenant_id must be ...").
func publicMessage(err error) string {
	return err.Error()
}

// respondError logs why a request failed and renders the error body.
func respondError(ctx context.Context, log *slog.Logger, err error) events.APIGatewayV2HTTPResponse {
	e := toError(err)
	log.Log(ctx, levelFor(e.Status), "request failed", "status", e.Status, "code", e.Code, "error", err)
	return renderError(err)
}

// renderError renders the error body, with Retry-After on a 429.
func renderError(err error) events.APIGatewayV2HTTPResponse {
	e := toError(err)
	var body errorBody
	body.Error.Code = e.Code
	body.Error.Message = e.Message
	resp := respondJSON(e.Status, body)
	var re *reauth.Error
	if e.Status == http.StatusTooManyRequests && errors.As(err, &re) && re.RetryAfter > 0 {
		resp.Headers["Retry-After"] = strconv.Itoa(retryAfterSeconds(re.RetryAfter))
	}
	var ce *credential.CooldownError
	if errors.As(err, &ce) {
		resp.Headers["Retry-After"] = strconv.Itoa(max(retryAfterSeconds(ce.Wait), 1))
	}
	return resp
}

// retryAfterSeconds rounds up, so a client that waits that long is let in.
func retryAfterSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// securityHeaders are on every API response: nothing is cached or
// sniffed, nothing is framed or leaks a referrer, and a response rendered
// as a page may load nothing.
var securityHeaders = map[string]string{
	"Cache-Control":             "no-store",
	"Pragma":                    "no-cache",
	"X-Content-Type-Options":    "nosniff",
	"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
	"X-Frame-Options":           "DENY",
	"Referrer-Policy":           "no-referrer",
	"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
}

// SecurityHeaders returns the headers every API response carries; the
// local gateway puts them on its own answers too.
func SecurityHeaders() map[string]string { return maps.Clone(securityHeaders) }

// respondJSON renders v with the headers every API response carries.
func respondJSON(status int, v any) events.APIGatewayV2HTTPResponse {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	headers := SecurityHeaders()
	headers["Content-Type"] = "application/json"
	return events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: headers, Body: string(b)}
}

func levelFor(status int) slog.Level {
	if status >= 500 {
		return slog.LevelError
	}
	return slog.LevelInfo
}
