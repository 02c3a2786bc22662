package api

import (
	"context"
	"net/http"
	"smtp-vault/shared/credential"
	"time"

	"github.com/aws/aws-lambda-go/events"
)

// retrieveResponse is the body of GET .../smtp-credentials.
type retrieveResponse struct {
	TenantID     string    `json:"tenant_id"`
	Username     string    `json:"username"`
	Password     string    `json:"password"`
	WebmailURL   string    `json:"webmail_url"`
	LastRotated  time.Time `json:"last_rotated"`
	NextRotation time.Time `json:"next_rotation"`
	// ExpiresAt is when the re-auth token runs out: the view must close.
	ExpiresAt time.Time `json:"expires_at"`
	// Compromise: an earlier credential was declared compromised by an
	// emergency reset (until the next normal rotation).
	Compromise *credential.Compromise `json:"compromise,omitempty"`
}

// Retrieve serves the retrieve route (access: Routes).
func (d Deps) Retrieve() Handler {
	return d.guard("retrieve", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		v, err := d.Credentials.Retrieve(ctx, req.PathParameters["tenant_id"], actor(req, c.Principal))
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, retrieveResponse{
			TenantID:     v.TenantID,
			Username:     v.Username,
			Password:     v.Password,
			WebmailURL:   v.WebmailURL,
			LastRotated:  v.LastRotated,
			NextRotation: v.NextRotation,
			ExpiresAt:    c.Reauth.Expiry(),
			Compromise:   v.Compromise,
		}), nil
	})
}
