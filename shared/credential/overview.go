package credential

import (
	"context"
	"fmt"
	"sort"
	"time"

	"smtp-vault/shared/audit"
)

// Overview paging.
const (
	DefaultOverviewPerPage = 50
	MaxOverviewPerPage     = 100
)

// OverviewQuery selects a page of the overview; Status is a Class or ""
// for every credential.
type OverviewQuery struct {
	Status  string
	Page    int
	PerPage int
}

// Validate refuses a query the overview cannot answer.
func (q OverviewQuery) Validate() error {
	switch q.Status {
	case "", ClassOverdue, ClassDueSoon, ClassOK, ClassCompromised:
	default:
		return fmt.Errorf("%w: status must be overdue, due_soon, ok or compromised", ErrInvalidInput)
	}
	if q.Page < 1 || q.Page > 1_000_000 {
		return fmt.Errorf("%w: page must be a whole number from 1", ErrInvalidInput)
	}
	if q.PerPage < 1 || q.PerPage > MaxOverviewPerPage {
		return fmt.Errorf("%w: per_page must be a whole number from 1 to %d", ErrInvalidInput, MaxOverviewPerPage)
	}
	return nil
}

// OverviewItem is one credential in the overview, from KV metadata and the
// record's plain fields; nothing is decrypted.
type OverviewItem struct {
	TenantID      string     `json:"tenant_id"`
	Username      string     `json:"username"`
	WebmailURL    string     `json:"webmail_url"`
	LastRotated   *time.Time `json:"last_rotated"`
	NextRotation  *time.Time `json:"next_rotation"`
	DaysUntilDue  int        `json:"days_until_due"` // 0 or less: overdue
	Status        string     `json:"status"`         // a Class
	RotationState string     `json:"rotation_state"` // current, pending
}

// OverviewPage is one page of the overview and the number of matches.
type OverviewPage struct {
	Credentials []OverviewItem `json:"credentials"`
	Total       int            `json:"total"`
	Page        int            `json:"page"`
	PerPage     int            `json:"per_page"`
}

// Overview lists the platform's credentials, the most urgent first
// (earliest due date), filtered by class, a page at a time. The listing is
// audited (smtp_credentials_overview_viewed) and nothing is returned when
// that record cannot be written. A tenant whose metadata cannot be read
// fails the listing: a partial list would hide credentials.
func (s *Service) Overview(ctx context.Context, q OverviewQuery, actor Actor) (OverviewPage, error) {
	if err := q.Validate(); err != nil {
		return OverviewPage{}, err
	}
	statuses, err := s.statuses(ctx)
	if err != nil {
		return OverviewPage{}, err
	}
	now := s.Now()
	var matched []Status
	for _, st := range statuses {
		if st.Err != nil {
			return OverviewPage{}, st.Err
		}
		if q.Status == "" || st.Class(now) == q.Status {
			matched = append(matched, st)
		}
	}
	sort.Slice(matched, func(i, j int) bool {
		if !matched[i].LastRotated.Equal(matched[j].LastRotated) {
			return matched[i].LastRotated.Before(matched[j].LastRotated)
		}
		return matched[i].TenantID < matched[j].TenantID
	})
	out := OverviewPage{Credentials: []OverviewItem{}, Total: len(matched), Page: q.Page, PerPage: q.PerPage}
	start := min((q.Page-1)*q.PerPage, len(matched))
	for _, st := range matched[start:min(start+q.PerPage, len(matched))] {
		item := OverviewItem{TenantID: st.TenantID, Status: st.Class(now), RotationState: st.State, DaysUntilDue: st.DaysUntilDue(now)}
		if !st.LastRotated.IsZero() {
			last, next := st.LastRotated, st.Due()
			item.LastRotated, item.NextRotation = &last, &next
		}
		rec, err := s.readRecord(ctx, st.TenantID)
		if err != nil {
			return OverviewPage{}, err
		}
		item.Username, item.WebmailURL = rec.Username, rec.WebmailURL
		out.Credentials = append(out.Credentials, item)
	}
	details := map[string]any{"page": q.Page, "per_page": q.PerPage, "total": out.Total}
	if q.Status != "" {
		details["filter_status"] = q.Status
	}
	if err := s.recordRequest(ctx, actor, audit.OverviewViewed, "", details); err != nil {
		return OverviewPage{}, err
	}
	return out, nil
}

// recordRequest writes the audit event of a request that is itself the
// action (listing, querying the trail, asking for a bulk rotation). It
// fails closed: the error is ErrAudit.
func (s *Service) recordRequest(ctx context.Context, a Actor, event, tenantID string, details map[string]any) error {
	if err := s.cfg.Audit.Record(ctx, audit.Event{Event: event, TenantID: tenantID, UserID: a.UserID, IP: a.IP, UserAgent: a.UserAgent, Details: details}); err != nil {
		return fmt.Errorf("%w: %w", ErrAudit, err)
	}
	return nil
}
