package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"unicode"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/credential"
)

const overviewRoute = "GET /api/v1/platform-admin/smtp-credentials"

// overviewQuery parses ?status=&q=&page=&per_page=; anything else is
// refused.
func overviewQuery(params map[string]string) (credential.OverviewQuery, error) {
	q := credential.OverviewQuery{Page: 1, PerPage: credential.DefaultOverviewPerPage}
	var err error
	for k, v := range params {
		switch k {
		case "status":
			switch v {
			case credential.ClassOverdue, credential.ClassDueSoon, credential.ClassOK, credential.ClassCompromised, credential.StatusFailing:
				q.Status = v
			default:
				return q, &Error{http.StatusBadRequest, "invalid_status", "status must be overdue, due_soon, ok, compromised or failing"}
			}
		case "q":
			q.Search = strings.TrimSpace(v)
			if len(q.Search) > credential.MaxSearchLength || strings.ContainsFunc(q.Search, unicode.IsControl) {
				return q, &Error{http.StatusBadRequest, "invalid_search", fmt.Sprintf("q must be at most %d printable characters", credential.MaxSearchLength)}
			}
		case "page":
			if q.Page, err = strconv.Atoi(v); err != nil || q.Page < 1 || q.Page > 1_000_000 {
				return q, &Error{http.StatusBadRequest, "invalid_page", "page must be a whole number from 1"}
			}
		case "per_page":
			if q.PerPage, err = strconv.Atoi(v); err != nil || q.PerPage < 1 || q.PerPage > credential.MaxOverviewPerPage {
				return q, &Error{http.StatusBadRequest, "invalid_per_page", fmt.Sprintf("per_page must be a whole number from 1 to %d", credential.MaxOverviewPerPage)}
			}
		default:
			return q, &Error{http.StatusBadRequest, "unknown_parameter", fmt.Sprintf("unknown query parameter %q: use status, q, page, per_page", k)}
		}
	}
	return q, nil
}

// Overview serves the platform-admins' list of credentials (access:
// Routes).
func (d Deps) Overview() Handler {
	return d.guard("console", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		q, err := overviewQuery(req.QueryStringParameters)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		out, err := d.Credentials.Overview(ctx, q, actor(req, c.Principal))
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, out), nil
	})
}

// VaultHealth serves GET /api/v1/platform-admin/vault/health (access:
// Routes): sealed or not, raft leader and peers, and the last good
// backup's age, coloured green under 24 hours, amber under 48, red beyond
// ("none" before the first). It answers even when Vault is sealed or
// down: what could not be read is listed in errors.
func (d Deps) VaultHealth() Handler {
	return d.guard("console", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		if d.Health == nil {
			return events.APIGatewayV2HTTPResponse{}, errors.New("vault health: not wired")
		}
		return respondJSON(http.StatusOK, d.Health.VaultHealth(ctx)), nil
	})
}

// ConsoleFunction is the console Lambda's handler: the console's pages,
// the overview API, Vault's health and the viewing events.
func (d Deps) ConsoleFunction() func(context.Context, json.RawMessage) (any, error) {
	overview, health, pages, viewing := d.Overview(), d.VaultHealth(), d.ConsolePages(), d.ViewingEvent()
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if isHTTPEvent(raw) {
			var req events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &req); err != nil {
				return nil, fmt.Errorf("decode HTTP API event: %w", err)
			}
			switch req.RouteKey {
			case overviewRoute:
				return overview(ctx, req)
			case "GET " + healthPath:
				return health(ctx, req)
			case eventsRoute:
				return viewing(ctx, req)
			}
			return pages(ctx, req)
		}
		return nil, errors.New("console: only HTTP API events are served")
	}
}
