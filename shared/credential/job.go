package credential

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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

// ParseJob decodes a rotate queue message: one JSON object with the
// fields of Job and no other, naming a tenant and a known reason.
func ParseJob(body []byte) (Job, error) {
	var j Job
	if err := decodeMessage(body, &j); err != nil {
		return Job{}, fmt.Errorf("%w: a rotate job must be one JSON object with the fields of a job only", ErrInvalidInput)
	}
	if err := ValidateTenantID(j.TenantID); err != nil {
		return Job{}, err
	}
	return j, j.validReason()
}

func (j Job) validReason() error {
	switch j.Reason {
	case JobScheduled, JobResume, JobBulk:
		return nil
	}
	return fmt.Errorf("%w: reason must be %s, %s or %s", ErrInvalidInput, JobScheduled, JobResume, JobBulk)
}

// decodeMessage decodes exactly one JSON object into v, refusing fields v
// does not have: a queue message is written by this code, so anything
// else is not a job.
func decodeMessage(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON value")
	}
	return nil
}

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
	if err := job.validReason(); err != nil {
		return Result{}, err
	}
	res, err := s.Rotate(ctx, job.Request())
	if err == nil {
		s.log.InfoContext(ctx, "rotate job", "tenant_id", job.TenantID, "reason", job.Reason, "outcome", res.Outcome)
	}
	return res, err
}
