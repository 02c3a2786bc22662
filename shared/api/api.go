// Package api turns API Gateway HTTP API events into calls on the domain
// and domain results into responses. The Lambda mains and the local gateway
// use the same handlers, so local runs exercise the code that runs in AWS.
package api

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/credential"
)

// Handler serves one route. It always returns a response; the error is
// for faults the Lambda runtime should see, and is nil in practice.
type Handler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Deps are what the handlers need.
type Deps struct {
	Credentials *credential.Service
	Audit       credential.Recorder
	Log         *slog.Logger
	RolesClaim  string
}

// serveFunc is the route-specific part of a handler, called once the
// caller is known and allowed.
type serveFunc func(ctx context.Context, req events.APIGatewayV2HTTPRequest, p auth.Principal) (events.APIGatewayV2HTTPResponse, error)

// guard authenticates and authorises the caller, runs serve, and audits
// every refusal and failure (successes are audited by the domain).
func (d Deps) guard(action string, allowed []auth.Role, serve serveFunc) Handler {
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		tenantID := req.PathParameters["tenant_id"]
		p, err := principal(req, d.RolesClaim)
		if err != nil {
			d.auditRefusal(ctx, req, audit.AuthenticationFailed, "", tenantID, action, err)
			return respondError(ctx, d.Log, err), nil
		}
		if err := auth.Require(p, allowed...); err != nil {
			d.auditRefusal(ctx, req, audit.AuthorizationDenied, p.Subject, tenantID, action, err)
			return respondError(ctx, d.Log, err), nil
		}
		resp, err := serve(ctx, req, p)
		if err != nil {
			event := audit.RequestRejected
			if toError(err).Status >= 500 {
				event = audit.ActionFailed
			}
			d.auditRefusal(ctx, req, event, p.Subject, tenantID, action, err)
			return respondError(ctx, d.Log, err), nil
		}
		return resp, nil
	}
}

// auditRefusal records a denied or failed request. Recording it is best
// effort: the request already failed, and a second failure is only logged.
func (d Deps) auditRefusal(ctx context.Context, req events.APIGatewayV2HTTPRequest, event, user, tenantID, action string, cause error) {
	e := toError(cause)
	sev := audit.Warning
	if event == audit.ActionFailed {
		sev = audit.Critical
	}
	if credential.ValidateTenantID(tenantID) != nil {
		tenantID = "" // never put an unvalidated string into the trail's keys
	}
	err := d.Audit.Record(ctx, audit.Event{
		Event:     event,
		TenantID:  tenantID,
		UserID:    user,
		IP:        req.RequestContext.HTTP.SourceIP,
		UserAgent: req.RequestContext.HTTP.UserAgent,
		Severity:  sev,
		Details:   map[string]any{"action": action, "status": e.Status, "code": e.Code, "route": req.RouteKey},
	})
	if err != nil {
		d.Log.ErrorContext(ctx, "audit refusal", "event", event, "error", err)
	}
}
