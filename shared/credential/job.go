package credential

import (
	"context"
	"fmt"
)

// Job is one tenant for the rotate worker: the body of a RotateQueue
// message. It holds no secret.
type Job struct {
	TenantID string `json:"tenant_id"`
	Reason   string `json:"reason"` // JobScheduled, JobResume or JobBulk
	// RequestedBy and Note are the member of staff behind a bulk rotation
	// and the reason they gave, for the audit trail.
	RequestedBy string `json:"requested_by,omitempty"`
	Note        string `json:"note,omitempty"`
}

// Reasons of a Job.
const (
	JobScheduled = "scheduled" // the sweep found the credential due
	JobResume    = "resume"    // a change is pending, or the metadata is stale
	JobBulk      = "bulk"      // rotate-overdue
)

// Request is the rotation a job asks for. Every job rotates only a due
// credential (the record decides), so a message delivered twice, or a job
// for a tenant rotated meanwhile, changes nothing.
func (j Job) Request() Request {
	r := Request{TenantID: j.TenantID, Reason: j.Reason, Trigger: TriggerSchedule, OnlyIfDue: true,
		Actor: Actor{UserID: "system:rotate-sweep"}}
	if j.Reason == JobBulk {
		r.Trigger, r.Actor.UserID = TriggerBulk, j.RequestedBy
		if j.Note != "" {
			r.Reason = j.Note
		}
	}
	return r
}

// RunJob runs one job of the rotate worker (a queue message or a direct
// invocation).
func (s *Service) RunJob(ctx context.Context, job Job) (Result, error) {
	switch job.Reason {
	case JobScheduled, JobResume, JobBulk:
	default:
		return Result{}, fmt.Errorf("%w: reason must be %s, %s or %s", ErrInvalidInput, JobScheduled, JobResume, JobBulk)
	}
	res, err := s.Rotate(ctx, job.Request())
	if err == nil {
		s.log.InfoContext(ctx, "rotate job", "tenant_id", job.TenantID, "reason", job.Reason, "outcome", res.Outcome)
	}
	return res, err
}
