package api

import (
	"context"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/auth"
)

// retrieveResponse is the body of GET .../smtp-credentials.
type retrieveResponse struct {
	TenantID     string    `json:"tenant_id"`
	Username     string    `json:"username"`
	Password     string    `json:"password"`
	WebmailURL   string    `json:"webmail_url"`
	LastRotated  time.Time `json:"last_rotated"`
	NextRotation time.Time `json:"next_rotation"`
}

// Retrieve serves the retrieve route: support-team and platform-admin.
func (d Deps) Retrieve() Handler {
	return d.guard("retrieve", []auth.Role{auth.RoleSupport, auth.RolePlatformAdmin}, func(ctx context.Context, req events.APIGatewayV2HTTPRequest, p auth.Principal) (events.APIGatewayV2HTTPResponse, error) {
		v, err := d.Credentials.Retrieve(ctx, req.PathParameters["tenant_id"], actor(req, p))
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
		}), nil
	})
}
