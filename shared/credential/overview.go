package credential

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"smtp-vault/shared/audit"
)

// Overview paging.
const (
	DefaultOverviewPerPage = 50
	MaxOverviewPerPage     = 100
)

// OverviewQuery selects a page of the overview: Status is a Class,
// StatusFailing or "" for every credential; Search, when set, keeps the
// tenants whose id or domain contains it (case-insensitive).
type OverviewQuery struct {
	Status  string
	Search  string
	Page    int
	PerPage int
}

// StatusFailing selects the credentials whose last rotation failed.
const StatusFailing = "failing"

// MaxSearchLength bounds OverviewQuery.Search.
const MaxSearchLength = 253

// Validate refuses a query the overview cannot answer.
func (q OverviewQuery) Validate() error {
	switch q.Status {
	case "", ClassOverdue, ClassDueSoon, ClassOK, ClassCompromised, StatusFailing:
	default:
		return fmt.Errorf("%w: status must be overdue, due_soon, ok, compromised or failing", ErrInvalidInput)
	}
	if len(q.Search) > MaxSearchLength || strings.ContainsFunc(q.Search, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return fmt.Errorf("%w: q must be at most %d printable characters", ErrInvalidInput, MaxSearchLength)
	}
	if q.Page < 1 || q.Page > 1_000_000 {
		return fmt.Errorf("%w: page must be a whole number from 1", ErrInvalidInput)
	}
	if q.PerPage < 1 || q.PerPage > MaxOverviewPerPage {
		return fmt.Errorf("%w: per_page must be a whole number from 1 to %d", ErrInvalidInput, MaxOverviewPerPage)
	}
	return nil
}

// OverviewItem is one credential in the overview, from the status index;
// nothing is decrypted.
type OverviewItem struct {
	TenantID      string     `json:"tenant_id"`
	Domain        string     `json:"domain"`
	Username      string     `json:"username"`
	WebmailURL    string     `json:"webmail_url"`
	LastRotated   *time.Time `json:"last_rotated"`
	NextRotation  *time.Time `json:"next_rotation"`
	DaysUntilDue  int        `json:"days_until_due"` // 0 or less: overdue
	Status        string     `json:"status"`         // a Class
	RotationState string     `json:"rotation_state"` // current, pending
	// RotationFailing: the last rotation failed (when, and its error
	// class, in RotationFailure) and no change has gone through since.
	RotationFailing bool   `json:"rotation_failing"`
	RotationFailure string `json:"rotation_failure,omitempty"`
	Compromised     string `json:"compromised_incident,omitempty"`
}

// OverviewPage is one page of the overview and the number of matches.
type OverviewPage struct {
	Credentials []OverviewItem `json:"credentials"`
	Total       int            `json:"total"`
	Page        int            `json:"page"`
	PerPage     int            `json:"per_page"`
}

// domainOf is the domain of a MailU admin's address.
func domainOf(username string) string {
	_, d, _ := strings.Cut(username, "@")
	return d
}

// Overview lists the platform's credentials from the status index, the
// most urgent first (earliest due date), filtered and searched, a page at
// a time. The listing is audited (smtp_credentials_overview_viewed) and
// nothing is returned when that record cannot be written. A leaf of the
// index that cannot be read fails the listing: a partial list would hide
// credentials.
func (s *Service) Overview(ctx context.Context, q OverviewQuery, actor Actor) (OverviewPage, error) {
	if err := q.Validate(); err != nil {
		return OverviewPage{}, err
	}
	now := s.Now()
	list, total, err := s.overviewEntries(ctx, q, now)
	if err != nil {
		return OverviewPage{}, err
	}
	search := strings.ToLower(q.Search)
	match := func(m *listed) bool {
		switch {
		case q.Status == StatusFailing && m.e.Failing == "",
			q.Status != "" && q.Status != StatusFailing && m.st.Class(now) != q.Status,
			search != "" && !strings.Contains(m.st.TenantID, search) && !strings.Contains(strings.ToLower(domainOf(m.e.Username)), search):
			return false
		}
		return true
	}
	out := OverviewPage{Credentials: []OverviewItem{}, Page: q.Page, PerPage: q.PerPage}
	// The list is in the listing's order: take the page's matches, and
	// count every match only when the total is not known already.
	start, n := (q.Page-1)*q.PerPage, 0
	for _, m := range list {
		if !match(m) {
			continue
		}
		if n >= start && n < start+q.PerPage {
			out.Credentials = append(out.Credentials, m.item(now))
		}
		n++
		if total >= 0 && n >= start+q.PerPage {
			break
		}
	}
	out.Total = total
	if total < 0 {
		out.Total = n
	}
	details := map[string]any{"page": q.Page, "per_page": q.PerPage, "total": out.Total}
	if q.Status != "" {
		details["filter_status"] = q.Status
	}
	if q.Search != "" {
		details["search"] = q.Search
	}
	if err := s.recordRequest(ctx, actor, audit.OverviewViewed, "", details); err != nil {
		return OverviewPage{}, err
	}
	return out, nil
}

// overviewEntries is what a listing filters, in the listing's order: the
// set needing attention when it holds every match of q (an attention
// filter, or a page of the unfiltered listing within the tenants it
// holds in due order) and the sweep made it whole recently enough; else
// the whole index. total is the unfiltered listing's count when the set
// answers it, else -1.
func (s *Service) overviewEntries(ctx context.Context, q OverviewQuery, now time.Time) ([]*listed, int, error) {
	attention := q.Status == ClassOverdue || q.Status == ClassDueSoon || q.Status == ClassCompromised || q.Status == StatusFailing
	if attention || (q.Status == "" && q.Search == "") {
		hs, err := s.cachedHot(ctx)
		if err != nil {
			return nil, 0, err
		}
		if hotValid(hs.sum, now) {
			if attention {
				return hs.list, -1, nil
			}
			// Every tenant last rotated at or before the summary's cutoff
			// is in the set, and sorts before every tenant not in it.
			if head := hs.list[:hs.head]; len(head) >= q.Page*q.PerPage {
				return head, max(hs.sum.Tenants, len(head)), nil
			}
		}
	}
	idx, err := s.cachedIndex(ctx)
	if err != nil {
		return nil, 0, err
	}
	return idx.list, -1, nil
}

// listed is one tenant of a listing: its entry and its status.
type listed struct {
	e  IndexEntry
	st Status
}

// listing orders entries as the overview lists them: the most urgent
// first (the earliest last rotation; an unknown one first of all), then
// by tenant id. A cached read of the index is ordered once, not once a
// request.
func listing(entries map[string]IndexEntry) []*listed {
	all := make([]listed, 0, len(entries))
	for id, e := range entries {
		all = append(all, listed{e, e.status(id)})
	}
	out := make([]*listed, len(all))
	for i := range all {
		out[i] = &all[i]
	}
	slices.SortFunc(out, func(a, b *listed) int {
		if c := a.st.LastRotated.Compare(b.st.LastRotated); c != 0 {
			return c
		}
		return strings.Compare(a.st.TenantID, b.st.TenantID)
	})
	return out
}

// item is the tenant as the overview shows it.
func (m *listed) item(now time.Time) OverviewItem {
	st, e := m.st, m.e
	item := OverviewItem{TenantID: st.TenantID, Status: st.Class(now), RotationState: st.State, DaysUntilDue: st.DaysUntilDue(now),
		Username: e.Username, Domain: domainOf(e.Username), WebmailURL: e.WebmailURL,
		RotationFailing: e.Failing != "", RotationFailure: e.Failing, Compromised: e.Compromised}
	if item.RotationState == "" {
		item.RotationState = StateCurrent
	}
	if !st.LastRotated.IsZero() {
		last, next := st.LastRotated, st.Due()
		item.LastRotated, item.NextRotation = &last, &next
	}
	return item
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
