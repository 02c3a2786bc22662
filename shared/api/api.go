// Package api turns API Gateway HTTP API events into calls on the domain
// and domain results into responses. The Lambda mains and the local gateway
// use the same handlers, so local runs exercise the code that runs in AWS.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/backup"
	"smtp-vault/shared/console"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/reauth"
)

// Handler serves one route. It always returns a response; the error is
// for faults the Lambda runtime should see, and is nil in practice.
type Handler func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)

// Deps are what the handlers need.
type Deps struct {
	Credentials     *credential.Service
	Reauthenticator *reauth.Service
	// Audit records the refused and failed requests (successes are
	// audited by the domain).
	Audit credential.Recorder
	Log   *slog.Logger
	// Verifier checks each request's bearer token in the function itself;
	// APIID, when set, is the only HTTP API whose events are served.
	Verifier TokenVerifier
	APIID    string
	// Health reports Vault and its backups for the console.
	Health HealthReporter
	// Console serves the console's pages (the console function's).
	Console *console.Site
}

// HealthReporter reports Vault's state and the age of its last backup.
type HealthReporter interface {
	VaultHealth(ctx context.Context) backup.Health
}

// caller is who made a request, once the guard has let it through.
type caller struct {
	auth.Principal // zero on Public routes
	// Reauth is the verified re-auth token, on Reauth routes.
	Reauth reauth.Claims
}

// serveFunc is the route-specific part of a handler, called once the
// caller is known and allowed.
type serveFunc func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error)

// guard applies the route's line of the access table (Routes) before serve
// runs: the bearer token's subject, one of the route's roles, then on
// Reauth routes the caller's own valid re-auth token. It audits every
// refusal and failure (successes are audited by the domain).
func (d Deps) guard(function string, serve serveFunc) Handler {
	return func(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		var c caller
		refuse := func(err error) (events.APIGatewayV2HTTPResponse, error) {
			d.auditRefusal(ctx, req, c.Subject, function, err)
			return respondError(ctx, d.Log, err), nil
		}
		route, ok := routeFor(req.RouteKey)
		if !ok || route.Function != function {
			// Only a misrouted event gets here: refuse what the table
			// does not list.
			return refuse(&Error{http.StatusNotFound, "not_found", "no such route"})
		}
		if !route.Public {
			p, err := principal(ctx, req, d.Verifier, d.APIID)
			if err != nil {
				return refuse(err)
			}
			c.Principal = p
			if !route.Roles.Allows(p) {
				return refuse(fmt.Errorf("%w: %s requires one of the roles [%v]", auth.ErrForbidden, route.Key(), route.Roles))
			}
			if route.Reauth {
				if d.Reauthenticator == nil {
					return refuse(errors.New("re-authentication is not wired"))
				}
				claims, err := d.Reauthenticator.Verify(ctx, header(req, "x-reauth-token"), p.Subject)
				if err != nil {
					return refuse(err)
				}
				c.Reauth = claims
			}
		}
		resp, err := serve(ctx, req, c)
		if err != nil {
			return refuse(err)
		}
		return resp, nil
	}
}

// refusalEvent names the audit event of a refused or failed request.
func refusalEvent(err error) (string, audit.Severity) {
	switch {
	case toError(err).Status >= 500:
		return audit.ActionFailed, audit.Critical
	case errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, reauth.ErrRequired), errors.Is(err, reauth.ErrFailed):
		return audit.AuthenticationFailed, audit.Warning
	case errors.Is(err, auth.ErrForbidden):
		return audit.AuthorizationDenied, audit.Warning
	default:
		return audit.RequestRejected, audit.Warning
	}
}

// auditRefusal records a denied or failed request. Recording it is best
// effort: the request already failed, and a second failure is only logged.
func (d Deps) auditRefusal(ctx context.Context, req events.APIGatewayV2HTTPRequest, user, action string, cause error) {
	e := toError(cause)
	event, sev := refusalEvent(cause)
	tenantID := req.PathParameters["tenant_id"]
	if credential.ValidateTenantID(tenantID) != nil {
		tenantID = "" // never put an unvalidated string into the trail's keys
	}
	details := map[string]any{"action": action, "status": e.Status, "code": e.Code, "route": req.RouteKey}
	var re *reauth.Error
	if errors.As(cause, &re) {
		details["reason"] = re.Reason
		if re.Failures > 0 {
			details["failures"] = re.Failures
		}
		if re.RetryAfter > 0 {
			details["retry_after_seconds"] = retryAfterSeconds(re.RetryAfter)
		}
	}
	err := d.Audit.Record(ctx, audit.Event{
		Event:     event,
		TenantID:  tenantID,
		UserID:    user,
		IP:        req.RequestContext.HTTP.SourceIP,
		UserAgent: req.RequestContext.HTTP.UserAgent,
		Severity:  sev,
		Details:   details,
	})
	if err != nil {
		d.Log.ErrorContext(ctx, "audit refusal", "event", event, "error", err)
	}
}
