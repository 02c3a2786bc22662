package credential

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"smtp-vault/shared/notify"
)

// Summary is what a sweep did; it is logged and returned.
type Summary struct {
	Scanned  int `json:"scanned"`
	Due      int `json:"due"`
	Rotated  int `json:"rotated"`
	Notified int `json:"notified"`
	Resumed  int `json:"resumed"`
	Queued   int `json:"queued"`
	Failed   int `json:"failed"`
	// Anchored audit chains, and those whose records since the last anchor
	// do not link up (an operator must look: audit-verify).
	Anchored      int `json:"anchored"`
	AnchorBlocked int `json:"anchor_blocked"`
	// Index is the repair of the status index the sweep read.
	Index IndexRepair `json:"index"`
}

// Sweep is the daily 02:00 UTC run (SPEC section 6): it reads the status
// index (index.go), repairing it first (rebuild.go: tenants it lacks,
// entries with no tenant, and a rolling range re-read from
// custom_metadata; never a secret, never Transit), sends the
// day-173 notice once per cycle, and rotates or resumes the tenants that
// need it: the first Config.Inline of them itself, the rest through
// Config.Queue to the rotate worker, so that tens of thousands of tenants
// fit. Per-tenant failures are counted, logged and left for the next sweep
// or the queue's retries; only a failure to list the tenants at all is an
// error.
func (s *Service) Sweep(ctx context.Context) (Summary, error) {
	log := s.log
	var sum Summary
	now := s.Now()
	idx, rep, err := s.repairIndex(ctx)
	if err != nil {
		return sum, err
	}
	sum.Index = rep
	sum.Failed += rep.Failed
	var (
		jobs    []Job
		notices []Status
	)
	for _, st := range idx.sorted() {
		sum.Scanned++
		switch {
		case st.State == StatePending || st.LastRotated.IsZero():
			jobs = append(jobs, Job{TenantID: st.TenantID, Reason: JobResume})
		case st.Overdue(now):
			sum.Due++
			jobs = append(jobs, Job{TenantID: st.TenantID, Reason: JobScheduled})
		case st.DueSoon(now) && st.NoticeFor != FormatTime(st.LastRotated):
			notices = append(notices, st)
		}
	}
	s.sendNotices(ctx, notices, &sum)
	inline := jobs
	if s.cfg.Queue != nil {
		inline = jobs[:min(max(s.cfg.Inline, 0), len(jobs))]
	}
	rest := s.runInline(ctx, inline, &sum)
	rest = append(rest, jobs[len(inline):]...)
	if len(rest) > 0 {
		if s.cfg.Queue == nil {
			sum.Failed += len(rest)
		} else {
			sent, err := s.cfg.Queue.Send(ctx, rest)
			if err != nil {
				log.ErrorContext(ctx, "sweep: queue jobs", "jobs", len(rest), "sent", sent, "error", err)
			}
			sum.Queued += sent
			sum.Failed += len(rest) - sent
		}
	}
	s.anchorChains(ctx, &sum)
	log.InfoContext(ctx, "rotation sweep", "scanned", sum.Scanned, "due", sum.Due, "rotated", sum.Rotated,
		"notified", sum.Notified, "resumed", sum.Resumed, "queued", sum.Queued, "failed", sum.Failed,
		"anchored", sum.Anchored, "anchor_blocked", sum.AnchorBlocked,
		"index_checked", rep.Checked, "index_added", rep.Added, "index_fixed", rep.Fixed, "index_removed", rep.Removed)
	return sum, nil
}

// runInline runs jobs in the sweep, Concurrency at a time, and returns
// those it had no time left for.
func (s *Service) runInline(ctx context.Context, jobs []Job, sum *Summary) []Job {
	var (
		mu   sync.Mutex
		left []Job
	)
	s.forEach(len(jobs), func(i int) {
		j := jobs[i]
		if s.outOfTime(ctx) {
			mu.Lock()
			left = append(left, j)
			mu.Unlock()
			return
		}
		res, err := s.Rotate(ctx, j.Request())
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			sum.Failed++
			s.log.WarnContext(ctx, "sweep: rotate", "tenant_id", j.TenantID, "reason", j.Reason, "error", err)
		case res.Outcome == OutcomeRotated:
			sum.Rotated++
		case res.Outcome == OutcomeResumed:
			sum.Resumed++
		}
	})
	return left
}

func (s *Service) outOfTime(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	return ok && time.Until(dl) < s.cfg.Reserve
}

// sendNotices sends the notices, Concurrency at a time (a day's share of
// a platform is tenants / 180 of them; a first sweep after a migration
// can have a week's), while at least Config.Reserve of the invocation is
// left: the ones it has no time for stay unmarked, so the next sweep
// sends them.
func (s *Service) sendNotices(ctx context.Context, notices []Status, sum *Summary) {
	var (
		mu   sync.Mutex
		left int
	)
	s.forEach(len(notices), func(i int) {
		st := notices[i]
		if s.outOfTime(ctx) {
			mu.Lock()
			left++
			mu.Unlock()
			return
		}
		err := s.notice(ctx, st)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			sum.Failed++
			s.log.WarnContext(ctx, "sweep: rotation notice", "tenant_id", st.TenantID, "error", err)
			return
		}
		sum.Notified++
	})
	if left > 0 {
		s.log.WarnContext(ctx, "sweep: rotation notices left for the next sweep (out of time)", "notices", left)
	}
}

// notice sends the day-173 notice of st's cycle and marks it sent. A
// failure to mark means a second notice on the next sweep, never none.
func (s *Service) notice(ctx context.Context, st Status) error {
	if s.cfg.Notifier == nil {
		return errors.New("no notifier configured")
	}
	due := st.Due()
	err := s.cfg.Notifier.Notify(ctx, notify.Message{
		Kind:     notify.KindRotationNotice,
		Subject:  fmt.Sprintf("smtp-vault: tenant %s rotates on %s", st.TenantID, due.Format(time.DateOnly)),
		Body:     fmt.Sprintf("The MailU admin SMTP credential of tenant %s, last rotated %s, is due for rotation on %s (every 180 days). The daily 02:00 UTC sweep rotates it; clients that read it from smtp-vault need nothing else.", st.TenantID, FormatTime(st.LastRotated), FormatTime(due)),
		TenantID: st.TenantID,
		Attrs:    map[string]string{"last_rotated": FormatTime(st.LastRotated), "due": FormatTime(due)},
	})
	if err != nil {
		return err
	}
	if err := s.cfg.Vault.PatchCustomMetadata(ctx, AdminPath(st.TenantID), map[string]string{MetaNoticeFor: FormatTime(st.LastRotated)}); err != nil {
		return upstream("mark the notice sent", err)
	}
	s.indexSet(ctx, st.TenantID, func(e *IndexEntry) { e.NoticeFor = FormatTime(st.LastRotated) })
	return nil
}

// anchorChains anchors every audit chain's head in Vault (audit.Bucket's
// AnchorAll), so a rewritten bucket tail shows against it, and alerts on a
// chain whose new records do not link up. A failure is logged: the next
// sweep anchors from the same point.
func (s *Service) anchorChains(ctx context.Context, sum *Summary) {
	if s.cfg.Trail == nil {
		return
	}
	reps, err := s.cfg.Trail.AnchorAll(ctx, s.Now())
	if err != nil {
		s.log.ErrorContext(ctx, "sweep: anchor the audit chains", "error", err)
	}
	for _, r := range reps {
		if !r.Blocked() {
			sum.Anchored++
			continue
		}
		sum.AnchorBlocked++
		s.log.ErrorContext(ctx, "sweep: an audit chain does not link up since its last anchor", "chain", r.Chain, "problems", len(r.Problems))
		if s.cfg.Notifier != nil {
			if err := s.cfg.Notifier.Notify(ctx, notify.Message{
				Kind:    notify.KindSecurityAlert,
				Subject: "smtp-vault: audit chain " + truncate(r.Chain, 40) + " does not verify",
				Body:    fmt.Sprintf("The records of audit chain %s written since its last anchor (seq %d) do not link up (%d problems). Run scripts/audit-verify -chain %s.", r.Chain, r.From, len(r.Problems), r.Chain),
				Attrs:   map[string]string{"rule": "audit_chain_broken", "chain": r.Chain, "severity": "critical"},
			}); err != nil {
				s.log.ErrorContext(ctx, "sweep: audit chain alert not sent", "chain", r.Chain, "error", err)
			}
		}
	}
}
