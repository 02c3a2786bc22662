package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/credential"
)

// Bounds of the audit query's paging.
const (
	DefaultPerPage = 50
	MaxPerPage     = 200
	maxPage        = 100000
)

var eventName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,63}$`)

// auditQueryParams are the query string parameters the route accepts.
var auditQueryParams = map[string]bool{"event": true, "user": true, "from": true, "to": true, "page": true, "per_page": true}

// VerifyEvent is the direct invocation that verifies a chain
// (events/audit-verify.json): {"action":"verify","tenant_id":"..."}, or
// "chain":"platform" for the events without a tenant.
type VerifyEvent struct {
	Action   string `json:"action"`
	TenantID string `json:"tenant_id,omitempty"`
	Chain    string `json:"chain,omitempty"`
	// RequestedBy names who asked (an operator, a schedule); audited.
	RequestedBy string `json:"requested_by,omitempty"`
}

// AuditFunction is the audit function's handler: the query route over
// HTTP (access: Routes), and the verify invocation otherwise.
func (d Deps) AuditFunction() func(context.Context, json.RawMessage) (any, error) {
	query := d.AuditQuery()
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if isHTTPEvent(raw) {
			var req events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &req); err != nil {
				return nil, fmt.Errorf("decode HTTP API event: %w", err)
			}
			return query(ctx, req)
		}
		var ev VerifyEvent
		if err := decodeJSON(raw, &ev); err != nil {
			return nil, err
		}
		if ev.Action != "verify" {
			return nil, &Error{http.StatusBadRequest, "invalid_request", `action must be "verify"`}
		}
		chain := ev.Chain
		if ev.TenantID != "" {
			if err := credential.ValidateTenantID(ev.TenantID); err != nil {
				return nil, err
			}
			chain = ev.TenantID
		}
		return d.Credentials.VerifyAuditChain(ctx, chain, ev.RequestedBy)
	}
}

// AuditQuery serves GET .../smtp-credentials/audit (access: Routes): a
// tenant's events, newest first, filtered and paged.
func (d Deps) AuditQuery() Handler {
	return d.guard("audit", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		tenant := req.PathParameters["tenant_id"]
		if err := credential.ValidateTenantID(tenant); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		q, err := parseAuditQuery(req.QueryStringParameters)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		page, err := d.Credentials.AuditTrail(ctx, tenant, q, actor(req, c.Principal))
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, page), nil
	})
}

// parseAuditQuery checks the query string; every problem is a 400 that
// says which parameter is wrong.
func parseAuditQuery(p map[string]string) (audit.Query, error) {
	q := audit.Query{Page: 1, PerPage: DefaultPerPage}
	bad := func(code, msg string) (audit.Query, error) {
		return audit.Query{}, &Error{http.StatusBadRequest, code, msg}
	}
	for k := range p {
		if !auditQueryParams[k] {
			return bad("unknown_parameter", fmt.Sprintf("unknown parameter %q (known: event, user, from, to, page, per_page)", k))
		}
	}
	if v, ok := p["event"]; ok {
		if !eventName.MatchString(v) {
			return bad("invalid_event", "event must be an event name such as smtp_credentials_accessed")
		}
		q.Event = v
	}
	if v, ok := p["user"]; ok {
		if v == "" || len(v) > 256 {
			return bad("invalid_user", "user must be 1 to 256 characters")
		}
		q.User = v
	}
	for _, f := range []struct {
		name string
		dst  *time.Time
	}{{"from", &q.From}, {"to", &q.To}} {
		v, ok := p[f.name]
		if !ok {
			continue
		}
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return bad("invalid_time", f.name+" must be an RFC 3339 time such as 2025-01-31T22:00:00Z")
		}
		*f.dst = t.UTC()
	}
	if !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To) {
		return bad("invalid_time_range", "from must not be after to")
	}
	for _, f := range []struct {
		name     string
		dst      *int
		min, max int
	}{{"page", &q.Page, 1, maxPage}, {"per_page", &q.PerPage, 1, MaxPerPage}} {
		v, ok := p[f.name]
		if !ok {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < f.min || n > f.max {
			return bad("invalid_"+f.name, fmt.Sprintf("%s must be a whole number from %d to %d", f.name, f.min, f.max))
		}
		*f.dst = n
	}
	return q, nil
}
