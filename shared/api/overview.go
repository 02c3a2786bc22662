package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/rotation"
)

const overviewRoute = "GET /api/v1/platform-admin/smtp-credentials"

// Overview paging.
const (
	defaultPerPage = 50
	maxPerPage     = 100
)

// overviewItem is one credential in the overview. It is read from KV
// metadata and the record's plain fields; nothing is decrypted.
type overviewItem struct {
	TenantID      string     `json:"tenant_id"`
	Username      string     `json:"username"`
	WebmailURL    string     `json:"webmail_url"`
	LastRotated   *time.Time `json:"last_rotated"`
	NextRotation  *time.Time `json:"next_rotation"`
	DaysUntilDue  int        `json:"days_until_due"` // 0 or less: overdue
	Status        string     `json:"status"`         // overdue, due_soon, ok, compromised
	RotationState string     `json:"rotation_state"` // current, pending
}

type overviewResponse struct {
	Credentials []overviewItem `json:"credentials"`
	Total       int            `json:"total"`
	Page        int            `json:"page"`
	PerPage     int            `json:"per_page"`
}

// overviewQuery parses ?status=&page=&per_page=; anything else is refused.
func overviewQuery(q map[string]string) (status string, page, perPage int, err error) {
	page, perPage = 1, defaultPerPage
	for k, v := range q {
		switch k {
		case "status":
			switch v {
			case rotation.ClassOverdue, rotation.ClassDueSoon, rotation.ClassOK, rotation.ClassCompromised:
				status = v
			default:
				return "", 0, 0, &Error{http.StatusBadRequest, "invalid_status", "status must be overdue, due_soon, ok or compromised"}
			}
		case "page":
			if page, err = strconv.Atoi(v); err != nil || page < 1 || page > 1_000_000 {
				return "", 0, 0, &Error{http.StatusBadRequest, "invalid_page", "page must be a whole number from 1"}
			}
		case "per_page":
			if perPage, err = strconv.Atoi(v); err != nil || perPage < 1 || perPage > maxPerPage {
				return "", 0, 0, &Error{http.StatusBadRequest, "invalid_per_page", fmt.Sprintf("per_page must be a whole number from 1 to %d", maxPerPage)}
			}
		default:
			return "", 0, 0, &Error{http.StatusBadRequest, "unknown_parameter", fmt.Sprintf("unknown query parameter %q: use status, page, per_page", k)}
		}
	}
	return status, page, perPage, nil
}

// Overview serves the platform-admins' list of credentials: the most
// urgent first (earliest due date), filtered by status, a page at a time.
func (d Deps) Overview() Handler {
	return d.guard("console", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		status, page, perPage, err := overviewQuery(req.QueryStringParameters)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		eng := d.Credentials.Rotation()
		statuses, err := eng.Statuses(ctx, 0)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		now := eng.Now()
		var matched []rotation.Status
		for _, st := range statuses {
			if st.Err != nil {
				// A partial list would hide credentials: refuse instead.
				return events.APIGatewayV2HTTPResponse{}, st.Err
			}
			if status == "" || st.Class(now) == status {
				matched = append(matched, st)
			}
		}
		sort.Slice(matched, func(i, j int) bool {
			if !matched[i].LastRotated.Equal(matched[j].LastRotated) {
				return matched[i].LastRotated.Before(matched[j].LastRotated)
			}
			return matched[i].TenantID < matched[j].TenantID
		})
		out := overviewResponse{Credentials: []overviewItem{}, Total: len(matched), Page: page, PerPage: perPage}
		start := min((page-1)*perPage, len(matched))
		for _, st := range matched[start:min(start+perPage, len(matched))] {
			item := overviewItem{TenantID: st.TenantID, Status: st.Class(now), RotationState: st.State, DaysUntilDue: st.DaysUntilDue(now)}
			if !st.LastRotated.IsZero() {
				last, next := st.LastRotated, st.Due()
				item.LastRotated, item.NextRotation = &last, &next
			}
			rec, err := eng.ReadRecord(ctx, st.TenantID)
			if err != nil {
				return events.APIGatewayV2HTTPResponse{}, err
			}
			item.Username, item.WebmailURL = rec.Username, rec.WebmailURL
			out.Credentials = append(out.Credentials, item)
		}
		details := map[string]any{"page": page, "per_page": perPage, "total": out.Total}
		if status != "" {
			details["filter_status"] = status
		}
		if err := d.recordRequest(ctx, req, c, audit.OverviewViewed, "", details); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, out), nil
	})
}

// ConsoleFunction is the console Lambda's handler: the overview API is
// served; the console's HTML pages are not built yet (501 after the
// guard).
func (d Deps) ConsoleFunction() func(context.Context, json.RawMessage) (any, error) {
	overview, pages := d.Overview(), d.GuardedNotImplemented("console")
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if isHTTPEvent(raw) {
			var req events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &req); err != nil {
				return nil, fmt.Errorf("decode HTTP API event: %w", err)
			}
			if req.RouteKey == overviewRoute {
				return overview(ctx, req)
			}
		}
		return pages(ctx, raw)
	}
}
