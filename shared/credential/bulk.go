package credential

import (
	"context"
	"fmt"

	"smtp-vault/shared/audit"
)

// BulkResult is what a bulk rotation of the overdue credentials did.
type BulkResult struct {
	Overdue   int      `json:"overdue"`
	Queued    int      `json:"queued"`  // handed to the rotate worker (Config.Queue)
	Rotated   int      `json:"rotated"` // done in the request (no queue configured)
	Failed    int      `json:"failed"`
	TenantIDs []string `json:"tenant_ids"`
}

// RotateOverdue hands every credential 180 days old or more to the rotate
// worker through the queue (or, with no queue configured, rotates them in
// the request). The request is audited before anything is queued, so a
// bulk rotation nobody can trace never starts.
func (s *Service) RotateOverdue(ctx context.Context, reason string, actor Actor) (BulkResult, error) {
	idx, err := s.readIndex(ctx)
	if err != nil {
		return BulkResult{}, err
	}
	now := s.Now()
	out := BulkResult{TenantIDs: []string{}}
	var jobs []Job
	for _, st := range idx.sorted() {
		if st.Overdue(now) {
			jobs = append(jobs, Job{TenantID: st.TenantID, Reason: JobBulk, RequestedBy: actor.UserID, Note: reason})
			out.TenantIDs = append(out.TenantIDs, st.TenantID)
		}
	}
	out.Overdue = len(jobs)
	if err := s.recordRequest(ctx, actor, audit.BulkRotationRequested, "", map[string]any{"reason": reason, "overdue": len(jobs)}); err != nil {
		return BulkResult{}, err
	}
	if s.cfg.Queue != nil {
		sent, err := s.cfg.Queue.Send(ctx, jobs)
		if err != nil && sent == 0 && len(jobs) > 0 {
			return BulkResult{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		if err != nil {
			s.log.WarnContext(ctx, "rotate overdue: queue jobs", "jobs", len(jobs), "sent", sent, "error", err)
		}
		out.Queued, out.Failed = sent, len(jobs)-sent
	} else {
		for _, j := range jobs {
			r := j.Request()
			r.Actor = actor
			if res, err := s.Rotate(ctx, r); err != nil {
				out.Failed++
				s.log.WarnContext(ctx, "bulk rotation", "tenant_id", j.TenantID, "error", err)
			} else if res.Outcome != OutcomeNotDue {
				out.Rotated++
			}
		}
	}
	s.log.InfoContext(ctx, "rotate overdue", "user_id", actor.UserID, "overdue", out.Overdue, "queued", out.Queued, "rotated", out.Rotated, "failed", out.Failed)
	return out, nil
}
