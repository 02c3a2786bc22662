package mailu

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Every error this package returns wraps one of them (and,
// for timeouts, the context error too), so callers decide with errors.Is and
// never parse MailU's message text.
var (
	// ErrNotFound: MailU answered 404, no such user or domain.
	ErrNotFound = errors.New("mailu: not found")
	// ErrConflict: MailU answered 409, the user already exists.
	ErrConflict = errors.New("mailu: conflict")
	// ErrDomainFull: MailU answered 409 "Too many users for domain": the
	// domain's max_users is reached, and nobody created the user.
	ErrDomainFull = errors.New("mailu: too many users for the domain")
	// ErrUnauthorized: MailU answered 401 (no token) or 403 (wrong token).
	ErrUnauthorized = errors.New("mailu: unauthorized")
	// ErrRejected: MailU refused the request as malformed (any other 4xx).
	ErrRejected = errors.New("mailu: request rejected")
	// ErrUnavailable: MailU could not be reached or could not answer now
	// (5xx, 408, 429, refused connection, timeout, cancelled context,
	// temporary SMTP failure). Retrying later may succeed.
	ErrUnavailable = errors.New("mailu: unavailable")
	// ErrRateLimited: MailU's admin API answered 429: the caller's address
	// is over AUTH_RATELIMIT_IP, which the API checks before the token and
	// which failed logins from the same network fill. It also wraps
	// ErrUnavailable: retrying later may succeed.
	ErrRateLimited = errors.New("mailu: rate limited")
	// ErrMisconfigured: MailU answered that its API is not configured
	// (API_TOKEN empty: an HTML 500 on every API path). Retrying does not
	// help until the tenant's MailU is set up (docs/deploy.md).
	ErrMisconfigured = errors.New("mailu: admin API not configured")
	// ErrAuthFailed: the SMTP server rejected the credentials (535).
	ErrAuthFailed = errors.New("mailu: SMTP authentication failed")
)

// APIError is a non-2xx answer of MailU's admin API. It unwraps to the
// sentinel that matches its status.
type APIError struct {
	Status  int    // HTTP status
	Code    int    // "code" of MailU's JSON body, or Status when the body has none
	Message string // "message" of the body (plus field errors), or the status text

	domainFull bool // a 409 for a full domain, not an existing user
	noToken    bool // a 500 of a MailU whose API_TOKEN is empty
}

func (e *APIError) Error() string {
	return fmt.Sprintf("MailU answered %d: %s", e.Status, e.Message)
}

// Unwrap maps the answer to its sentinels. 408 and 429 are "try later"
// (MailU rate-limits an IP after failed token checks and logins), not a
// verdict on the request. MailU answers 409 both for a user that exists
// and for a full domain, and 500 both for a failure and for an API
// without a token; only the message tells them apart
// (core/admin/mailu/api/v1/user.py, core/admin/mailu/api/__init__.py).
func (e *APIError) Unwrap() []error {
	switch {
	case e.Status == http.StatusNotFound:
		return []error{ErrNotFound}
	case e.Status == http.StatusConflict && e.domainFull:
		return []error{ErrDomainFull}
	case e.Status == http.StatusConflict:
		return []error{ErrConflict}
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusForbidden:
		return []error{ErrUnauthorized}
	case e.Status == http.StatusTooManyRequests:
		return []error{ErrRateLimited, ErrUnavailable}
	case e.Status == http.StatusInternalServerError && e.noToken:
		return []error{ErrMisconfigured}
	case e.Status == http.StatusRequestTimeout, e.Status >= 500:
		return []error{ErrUnavailable}
	default:
		return []error{ErrRejected}
	}
}
