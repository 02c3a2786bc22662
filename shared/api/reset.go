package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/credential"
)

// resetBody is the body of POST .../smtp-credentials/emergency-reset.
type resetBody struct {
	IncidentID string `json:"incident_id"`
	Reason     string `json:"reason"`
}

// resetResponse is the answer of an emergency reset. Password is the new
// password, shown this once (Cache-Control: no-store; nothing serves the
// response again); it is absent when this incident already reset the
// credential.
type resetResponse struct {
	TenantID           string    `json:"tenant_id"`
	IncidentID         string    `json:"incident_id"`
	Username           string    `json:"username"`
	Password           string    `json:"password,omitempty"`
	AlreadyReset       bool      `json:"already_reset"`
	LastRotated        time.Time `json:"last_rotated"`
	NextRotation       time.Time `json:"next_rotation"`
	CompromisedVersion int       `json:"compromised_version,omitempty"`
	KVVersion          int       `json:"kv_version"`
}

// EmergencyReset serves the emergency reset route (access: Routes).
func (d Deps) EmergencyReset() Handler {
	return d.guard("emergency-reset", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		var b resetBody
		if err := decodeBody(req, &b); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		res, err := d.Credentials.EmergencyReset(ctx, credential.ResetRequest{
			TenantID: req.PathParameters["tenant_id"], IncidentID: b.IncidentID, Reason: b.Reason, Actor: actor(req, c.Principal),
		})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, resetResponse{
			TenantID: res.TenantID, IncidentID: res.IncidentID, Username: res.Username, Password: res.Password,
			AlreadyReset: res.AlreadyReset, LastRotated: res.LastRotated, NextRotation: res.NextRotation,
			CompromisedVersion: res.CompromisedVersion, KVVersion: res.Version,
		}), nil
	})
}

// EmergencyResetFunction is the emergency-reset Lambda's handler: the
// HTTP API routes; other invocations are refused.
func (d Deps) EmergencyResetFunction() func(context.Context, json.RawMessage) (any, error) {
	reset := d.EmergencyReset()
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if !isHTTPEvent(raw) {
			return nil, &Error{http.StatusBadRequest, "invalid_request", "the emergency-reset function takes HTTP API events"}
		}
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("decode HTTP API event: %w", err)
		}
		return reset(ctx, req)
	}
}
