package api

import (
	"context"
	"net/http"
	"regexp"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/reauth"
)

// reauthBody is the body of POST /api/v1/platform-admin/reauth.
type reauthBody struct {
	Password string `json:"password"`
	TOTPCode string `json:"totp_code"`
}

// reauthResponse is its answer.
type reauthResponse struct {
	ReauthToken string    `json:"reauth_token"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// totpCode is the shape of a code an authenticator app shows (Vault's TOTP
// methods use 6 or 8 digits).
var totpCode = regexp.MustCompile(`^[0-9]{6}([0-9]{2})?$`)

// maxPasswordBytes bounds what is sent to Vault.
const maxPasswordBytes = 1024

// Reauth serves the re-authentication route (access: Routes): the caller
// proves password and TOTP code again and gets a re-auth token bound to
// the bearer token's subject. A malformed body is refused before Vault is
// asked and does not count as a failed attempt.
func (d Deps) Reauth() Handler {
	return d.guard("reauth", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		var b reauthBody
		if err := decodeBody(req, &b); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		if b.Password == "" || len(b.Password) > maxPasswordBytes || !totpCode.MatchString(b.TOTPCode) {
			return events.APIGatewayV2HTTPResponse{}, &Error{http.StatusBadRequest, "invalid_request", "password (at most 1024 bytes) and totp_code (6 or 8 digits) are required"}
		}
		issued, err := d.Reauthenticator.Authenticate(ctx, reauth.Actor{
			UserID:    c.Subject,
			IP:        req.RequestContext.HTTP.SourceIP,
			UserAgent: req.RequestContext.HTTP.UserAgent,
		}, b.Password, b.TOTPCode)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, reauthResponse{ReauthToken: issued.Token, ExpiresAt: issued.Claims.Expiry()}), nil
	})
}
