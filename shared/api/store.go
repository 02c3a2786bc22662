package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/credential"
)

// storeBody is the body of POST .../tenants/{tenant_id}/smtp-credentials;
// the tenant comes from the path.
type storeBody struct {
	Domain        string `json:"domain"`
	WebmailURL    string `json:"webmail_url"`
	MailUAPIURL   string `json:"mailu_api_url"`
	SMTPAddr      string `json:"smtp_addr"`
	MailUAPIToken string `json:"mailu_api_token,omitempty"`
}

// StoreEvent is the direct invocation of the store function by the
// provisioning flow of a new tenant (events/store.json).
type StoreEvent struct {
	credential.StoreInput
	RequestedBy string `json:"requested_by,omitempty"`
}

// Store serves the store route (access: Routes). The provisioning flow's
// direct invocation (StoreFunction) does not pass through the guard.
func (d Deps) Store() Handler {
	return d.guard("store", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		tenantID := req.PathParameters["tenant_id"]
		if err := credential.ValidateTenantID(tenantID); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		var b storeBody
		if err := decodeBody(req, &b); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		res, err := d.Credentials.Store(ctx, credential.StoreInput{
			TenantID:      tenantID,
			Domain:        b.Domain,
			WebmailURL:    b.WebmailURL,
			MailUAPIURL:   b.MailUAPIURL,
			SMTPAddr:      b.SMTPAddr,
			MailUAPIToken: b.MailUAPIToken,
		}, actor(req, c.Principal))
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		status := http.StatusOK
		if res.Action == "created" {
			status = http.StatusCreated
		}
		return respondJSON(status, res), nil
	})
}

// StoreFunction is the store Lambda's handler: an HTTP API event from API
// Gateway, or a StoreEvent from the provisioning flow.
func (d Deps) StoreFunction() func(context.Context, json.RawMessage) (any, error) {
	httpHandler := d.Store()
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if isHTTPEvent(raw) {
			var req events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &req); err != nil {
				return nil, fmt.Errorf("decode HTTP API event: %w", err)
			}
			return httpHandler(ctx, req)
		}
		var ev StoreEvent
		if err := decodeJSON(raw, &ev); err != nil {
			return nil, err
		}
		by := "provisioning"
		if ev.RequestedBy != "" {
			by = "provisioning:" + ev.RequestedBy
		}
		res, err := d.Credentials.Store(ctx, ev.StoreInput, credential.Actor{UserID: by})
		if err != nil {
			e := toError(err)
			d.Log.Log(ctx, levelFor(e.Status), "store invocation failed", "status", e.Status, "code", e.Code, "error", err)
			return nil, e
		}
		return res, nil
	}
}

// isHTTPEvent tells an API Gateway event from a direct invocation.
func isHTTPEvent(raw json.RawMessage) bool {
	var probe struct {
		RouteKey       string          `json:"routeKey"`
		RequestContext json.RawMessage `json:"requestContext"`
	}
	return json.Unmarshal(raw, &probe) == nil && (probe.RouteKey != "" || len(probe.RequestContext) > 0)
}
