package credential

import (
	"context"
	"errors"
	"fmt"
	"time"

	"smtp-vault/shared/audit"
)

// Triggers of a rotation, in its audit event.
const (
	TriggerManual   = "manual"   // POST .../smtp-credentials/rotate
	TriggerSchedule = "schedule" // the daily sweep, directly or through the queue
	TriggerBulk     = "bulk"     // POST .../smtp-credentials/rotate-overdue
)

// Request asks for one tenant's rotation.
type Request struct {
	TenantID string
	Reason   string
	Trigger  string
	Actor    Actor
	// OnlyIfDue rotates only a credential that is 180 days old or more (the
	// record decides, not the metadata); otherwise an interrupted change
	// is still resumed and the metadata repaired. The sweep and the queue
	// set it, so that a message delivered twice rotates once.
	OnlyIfDue bool
}

// Outcomes of a run.
const (
	OutcomeRotated = "rotated" // a new password is current
	OutcomeResumed = "resumed" // an interrupted change was finished instead
	OutcomeNotDue  = "not_due" // OnlyIfDue and not due; metadata repaired
)

// Result is what a run did.
type Result struct {
	TenantID     string    `json:"tenant_id"`
	Outcome      string    `json:"outcome"`
	Username     string    `json:"username"`
	LastRotated  time.Time `json:"last_rotated"`
	NextRotation time.Time `json:"next_rotation"`
	// RolledBack: an interrupted change MailU never took was dropped first.
	RolledBack bool `json:"rolled_back,omitempty"`
}

// Rotate runs one rotation of a tenant under its lock: an interrupted
// change is resumed first (finished, which ends the run, or rolled back);
// then the four steps run, unless the previous change is less than the
// cool-down ago (ErrCooldown) or, with OnlyIfDue, the credential is not
// due. A second rotation of the same tenant meanwhile gets ErrConflict.
func (s *Service) Rotate(ctx context.Context, req Request) (res Result, err error) {
	if err := ValidateTenantID(req.TenantID); err != nil {
		return Result{}, err
	}
	if req.Trigger != TriggerManual {
		// The HTTP guard audits a failed manual rotation; the sweep's and
		// the queue's failures are audited here.
		defer func() { s.auditFailure(ctx, req, err) }()
	}
	defer func() { s.markFailing(ctx, req.TenantID, err) }()
	release, err := s.lock(ctx, req.TenantID, PurposeRotate)
	if err != nil {
		return Result{}, err
	}
	defer func() {
		if !errors.Is(err, ErrAbandon) {
			release()
		}
	}()
	rec, err := s.readRecord(ctx, req.TenantID)
	if err != nil {
		return Result{}, err
	}
	if rec.Password == "" && !rec.Pending() {
		return Result{}, fmt.Errorf("%w: the credential of tenant %s is still being created", ErrNotFound, req.TenantID)
	}
	ev := audit.Event{
		Event:     audit.CredentialsRotated,
		UserID:    req.Actor.UserID,
		IP:        req.Actor.IP,
		UserAgent: req.Actor.UserAgent,
		Details:   map[string]any{"trigger": req.Trigger, "reason": req.Reason},
	}
	res = Result{TenantID: req.TenantID}
	if rec.Pending() {
		var rev *audit.Event // a store's change audits as a store
		if rec.PendingPurpose == PurposeRotate {
			rev = &ev
		}
		done, err := s.resume(ctx, req.TenantID, rec, rev)
		if err != nil {
			return Result{}, err
		}
		if done == Finished {
			s.log.InfoContext(ctx, "rotation resumed and finished", "tenant_id", req.TenantID, "step", StepFinish)
			return s.result(req.TenantID, rec, OutcomeResumed, false), nil
		}
		res.RolledBack = true
	}
	now := s.Now()
	last := rec.LastRotatedTime()
	if req.OnlyIfDue && now.Before(last.Add(RotationInterval)) {
		s.markState(ctx, req.TenantID, rec, stateOf(rec))
		return s.result(req.TenantID, rec, OutcomeNotDue, res.RolledBack), nil
	}
	// last_rotated has whole seconds: add one so the cool-down is never short.
	if until := last.Add(s.cooldown() + time.Second); s.cooldown() > 0 && now.Before(until) {
		return Result{}, &CooldownError{Until: until, Wait: until.Sub(now)}
	}
	admin, err := s.mailuAdmin(ctx, req.TenantID)
	if err != nil {
		return Result{}, err
	}
	if _, err := s.runSteps(ctx, req.TenantID, rec, admin, rec.Username, PurposeRotate, ev); err != nil {
		return Result{}, err
	}
	s.log.InfoContext(ctx, "credential rotated", "tenant_id", req.TenantID, "trigger", req.Trigger, "kv_version", rec.version)
	return s.result(req.TenantID, rec, OutcomeRotated, res.RolledBack), nil
}

func (s *Service) result(tenantID string, rec *Record, outcome string, rolledBack bool) Result {
	last := rec.LastRotatedTime()
	return Result{
		TenantID:     tenantID,
		Outcome:      outcome,
		Username:     rec.Username,
		LastRotated:  last,
		NextRotation: last.Add(RotationInterval),
		RolledBack:   rolledBack,
	}
}

// auditFailure records a failed scheduled or bulk rotation (best effort:
// the run already failed). The error's class is recorded, not its text.
func (s *Service) auditFailure(ctx context.Context, req Request, err error) {
	if err == nil || errors.Is(err, ErrAbandon) {
		return
	}
	if errors.Is(err, ErrConflict) {
		return // another run holds the tenant: nothing failed, it is retried
	}
	class := errorClass(err)
	if aerr := s.cfg.Audit.Record(ctx, audit.Event{
		Event:    audit.ActionFailed,
		TenantID: req.TenantID,
		UserID:   req.Actor.UserID,
		Severity: audit.Warning,
		Details:  map[string]any{"action": "rotate", "trigger": req.Trigger, "reason": req.Reason, "code": class},
	}); aerr != nil {
		s.log.WarnContext(ctx, "audit a failed rotation", "tenant_id", req.TenantID, "error", aerr)
	}
}

// markFailing records a rotation that failed for a reason that the next
// run will meet again unless someone looks (MailU down or refusing, Vault
// or the audit trail unavailable) in custom_metadata and the status index:
// the overview's "rotation failing", until a change goes through
// (finishSecret clears it). Best effort, like every metadata write.
func (s *Service) markFailing(ctx context.Context, tenantID string, err error) {
	if err == nil || errors.Is(err, ErrAbandon) || errors.Is(err, ErrCooldown) ||
		errors.Is(err, ErrConflict) || errors.Is(err, ErrInvalidInput) || errors.Is(err, ErrNotFound) {
		return
	}
	class := errorClass(err)
	mark := failureMark(s.Now(), class)
	if perr := s.cfg.Vault.PatchCustomMetadata(ctx, AdminPath(tenantID), map[string]string{MetaRotationFailed: mark}); perr != nil {
		s.log.WarnContext(ctx, "mark a failing rotation", "tenant_id", tenantID, "error", perr)
	}
	// The index entry's mark before this one says whether this cause was
	// alerted already (every function that changes a password reads the
	// index; not all may read metadata).
	prev := ""
	s.indexSet(ctx, tenantID, func(e *IndexEntry) { prev, e.Failing = e.Failing, mark })
	s.alertFailing(ctx, tenantID, prev, class)
}
