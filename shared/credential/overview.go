package credential

import (
	"context"
	"fmt"
	"sort"
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
	entries, total, err := s.overviewEntries(ctx, q, now)
	if err != nil {
		return OverviewPage{}, err
	}
	search := strings.ToLower(q.Search)
	type match struct {
		st Status
		e  IndexEntry
	}
	var matched []match
	for id, e := range entries {
		st := e.status(id)
		switch {
		case q.Status == StatusFailing && e.Failing == "",
			q.Status != "" && q.Status != StatusFailing && st.Class(now) != q.Status,
			search != "" && !strings.Contains(id, search) && !strings.Contains(strings.ToLower(domainOf(e.Username)), search):
			continue
		}
		matched = append(matched, match{st, e})
	}
	sort.Slice(matched, func(i, j int) bool {
		a, b := matched[i].st, matched[j].st
		if !a.LastRotated.Equal(b.LastRotated) {
			return a.LastRotated.Before(b.LastRotated)
		}
		return a.TenantID < b.TenantID
	})
	if total < 0 {
		total = len(matched)
	}
	out := OverviewPage{Credentials: []OverviewItem{}, Total: total, Page: q.Page, PerPage: q.PerPage}
	start := min((q.Page-1)*q.PerPage, len(matched))
	for _, m := range matched[start:min(start+q.PerPage, len(matched))] {
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
		out.Credentials = append(out.Credentials, item)
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

// overviewEntries is what a listing filters: the set needing attention
// when it holds every match of q (an attention filter, or a page of the
// unfiltered listing within the tenants it holds in due order) and the
// sweep made it whole recently enough; else the whole index. total is
// the unfiltered listing's count when the set answers it, else -1.
func (s *Service) overviewEntries(ctx context.Context, q OverviewQuery, now time.Time) (map[string]IndexEntry, int, error) {
	attention := q.Status == ClassOverdue || q.Status == ClassDueSoon || q.Status == ClassCompromised || q.Status == StatusFailing
	if attention || (q.Status == "" && q.Search == "") {
		hs, err := s.cachedHot(ctx)
		if err != nil {
			return nil, 0, err
		}
		if hotValid(hs.sum, now) {
			if attention {
				return hs.entries, -1, nil
			}
			// Every tenant last rotated at or before cutoff is in the set,
			// and sorts before every tenant not in it.
			cutoff := hs.sum.At.Add(hotHorizon - RotationInterval)
			head := map[string]IndexEntry{}
			for id, e := range hs.entries {
				if last, err := time.Parse(time.RFC3339, e.LastRotated); err != nil || !last.After(cutoff) {
					head[id] = e
				}
			}
			if len(head) >= q.Page*q.PerPage {
				return head, max(hs.sum.Tenants, len(head)), nil
			}
		}
	}
	idx, err := s.cachedIndex(ctx)
	if err != nil {
		return nil, 0, err
	}
	return idx.entries, -1, nil
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
