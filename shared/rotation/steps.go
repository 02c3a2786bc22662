package rotation

import (
	"context"
	"errors"
	"fmt"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/crypto"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/vault"
)

// A password change follows AWS Secrets Manager's four rotation steps, each
// safe to repeat, with its state in the KV record itself:
//
//	createSecret  record the new password as pending (check-and-set)
//	setSecret     create the MailU admin or set its password
//	testSecret    prove the password with a real SMTP AUTH login
//	finishSecret  promote pending to current (check-and-set), after the
//	              audit event is written
//
// At every instant MailU accepts either the current password or the pending
// one that Vault records, so a crash anywhere is finished or undone by
// Resume on the next run. Store (a tenant's first password) and Rotate run
// the same steps through runSteps.

// Step names, as they appear in logs and in Boundary values.
const (
	StepCreate = "createSecret"
	StepSet    = "setSecret"
	StepTest   = "testSecret"
	StepFinish = "finishSecret"
)

// Boundary is a point between steps where a run can stop.
type Boundary string

// The boundaries, in order.
const (
	BeforeCreate Boundary = "before_" + StepCreate
	AfterCreate  Boundary = "after_" + StepCreate
	AfterSet     Boundary = "after_" + StepSet
	AfterTest    Boundary = "after_" + StepTest
	AfterFinish  Boundary = "after_" + StepFinish
)

// Boundaries lists every boundary in order, for fault tests.
var Boundaries = []Boundary{BeforeCreate, AfterCreate, AfterSet, AfterTest, AfterFinish}

// Hook is called at each boundary of a run. An error stops the run there;
// one wrapping ErrAbandon stops it as a crash would, leaving the tenant
// lock held until it expires.
type Hook func(ctx context.Context, tenantID string, at Boundary) error

// ErrAbandon, returned by a Hook, makes the run stop as if its process had
// died: nothing is cleaned up, not even the lock.
var ErrAbandon = errors.New("run abandoned at a step boundary")

const passwordField = "password"

// PasswordField is the field name in the AAD of a sealed password.
const PasswordField = passwordField

// passwordBytes is the entropy of a generated password (SPEC section 4).
const passwordBytes = 32

func (e *Engine) hook(ctx context.Context, tenantID string, at Boundary) error {
	if e.cfg.Hook == nil {
		return nil
	}
	return e.cfg.Hook(ctx, tenantID, at)
}

// RunSteps changes the password of a tenant whose record holds no pending
// change: the four steps with the hook between them. admin is the tenant's
// MailU admin API.
func (e *Engine) RunSteps(ctx context.Context, tenantID string, rec *Record, admin MailU, username, purpose string, ev audit.Event) error {
	if err := e.hook(ctx, tenantID, BeforeCreate); err != nil {
		return err
	}
	pw, err := e.CreateSecret(ctx, tenantID, rec, username, purpose)
	if err != nil {
		return err
	}
	if err := e.hook(ctx, tenantID, AfterCreate); err != nil {
		return err
	}
	if err := e.SetSecret(ctx, admin, username, pw); err != nil {
		return err
	}
	if err := e.hook(ctx, tenantID, AfterSet); err != nil {
		return err
	}
	if err := e.TestSecret(ctx, rec.SMTPAddr, username, pw); err != nil {
		return err
	}
	if err := e.hook(ctx, tenantID, AfterTest); err != nil {
		return err
	}
	if err := e.FinishSecret(ctx, tenantID, rec, ev); err != nil {
		return err
	}
	return e.hook(ctx, tenantID, AfterFinish)
}

// CreateSecret generates a password and records it as pending in a new
// version of the record. It returns the plaintext, which the caller keeps
// only for the rest of the request.
func (e *Engine) CreateSecret(ctx context.Context, tenantID string, rec *Record, username, purpose string) (string, error) {
	pw, err := crypto.NewPassword(passwordBytes)
	if err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	sealed, wrapped, err := e.Seal(ctx, tenantID, passwordField, pw)
	if err != nil {
		return "", err
	}
	rec.PendingUsername = username
	rec.PendingPassword = sealed
	rec.PendingDataKey = wrapped
	rec.PendingSince = FormatTime(e.Now())
	rec.PendingPurpose = purpose
	if err := e.WriteRecord(ctx, tenantID, rec); err != nil {
		return "", err
	}
	e.markState(ctx, tenantID, map[string]string{MetaState: StatePending})
	return pw, nil
}

// SetSecret makes MailU's admin user accept pw, creating the user when the
// tenant's MailU does not have it yet. Setting the same password again
// changes nothing, so a resumed run repeats it safely.
func (e *Engine) SetSecret(ctx context.Context, admin MailU, username, pw string) error {
	_, err := admin.GetUser(ctx, username)
	if errors.Is(err, mailu.ErrNotFound) {
		err = admin.CreateUser(ctx, mailu.UserCreate{
			Email:       username,
			RawPassword: pw,
			Comment:     "MailU admin managed by smtp-vault",
			GlobalAdmin: true,
			Enabled:     true,
		})
		if err == nil {
			return nil
		}
		if !errors.Is(err, mailu.ErrConflict) {
			return Upstream("create the MailU admin", err)
		}
		// Created by someone else meanwhile: set the password below.
	} else if err != nil {
		return Upstream("look up the MailU admin", err)
	}
	if err := admin.SetPassword(ctx, username, pw); err != nil {
		return Upstream("set the MailU admin password", err)
	}
	return nil
}

// TestSecret proves pw with an SMTP AUTH login to the tenant's MailU.
func (e *Engine) TestSecret(ctx context.Context, addr, username, pw string) error {
	if err := e.cfg.VerifyLogin(ctx, addr, username, pw); err != nil {
		if errors.Is(err, mailu.ErrAuthFailed) {
			return fmt.Errorf("%w: MailU did not accept the new password over SMTP AUTH: %w", ErrUnavailable, err)
		}
		return Upstream("test the password over SMTP AUTH", err)
	}
	return nil
}

// FinishSecret writes ev to the audit trail and then promotes the pending
// password to current. Without the audit record nothing is promoted; the
// pending password stays recorded and the next run finishes it.
func (e *Engine) FinishSecret(ctx context.Context, tenantID string, rec *Record, ev audit.Event) error {
	now := e.Now()
	ev.TenantID = tenantID
	if ev.Details == nil {
		ev.Details = map[string]any{}
	}
	ev.Details["kv_version"] = rec.version + 1
	if err := e.cfg.Audit.Record(ctx, ev); err != nil {
		return Upstream("record "+ev.Event, err)
	}
	rec.Username = rec.PendingUsername
	rec.Password = rec.PendingPassword
	rec.DataKey = rec.PendingDataKey
	rec.LastRotated = FormatTime(now)
	if rec.CreatedAt == "" {
		rec.CreatedAt = rec.LastRotated
	}
	rec.RotationPolicy = RotationPolicy
	rec.clearPending()
	if err := e.WriteRecord(ctx, tenantID, rec); err != nil {
		return err
	}
	e.markState(ctx, tenantID, stateOf(rec))
	return nil
}

// Resumed is what Resume did with a change an earlier run left behind.
type Resumed string

const (
	// Finished: MailU accepted the pending password; it is now current.
	Finished Resumed = "finished"
	// RolledBack: MailU still accepts the current password; the pending
	// one, which it never took, is dropped.
	RolledBack Resumed = "rolled_back"
)

// Resume finishes or undoes a change that an earlier run left behind. It
// asks MailU with SMTP logins which password it holds: the pending one is
// promoted; if MailU holds the current one, the pending one is dropped;
// if it accepts neither, the pending password is set again (setSecret is
// idempotent) and the change finished. When MailU cannot be asked,
// nothing changes and the error says so. ev is the event to audit when the
// change is finished; nil builds it from the change's purpose.
func (e *Engine) Resume(ctx context.Context, tenantID string, rec *Record, ev *audit.Event) (Resumed, error) {
	if ev == nil {
		ev = &audit.Event{Event: audit.CredentialsStored, Details: map[string]any{"action": "resumed"}}
		if rec.PendingPurpose == PurposeRotate {
			ev = &audit.Event{Event: audit.CredentialsRotated, UserID: "system:resume", Details: map[string]any{"trigger": "resume"}}
		}
	}
	finish := func() (Resumed, error) {
		if ev.Details == nil {
			ev.Details = map[string]any{}
		}
		ev.Details["resumed"] = true
		if err := e.FinishSecret(ctx, tenantID, rec, *ev); err != nil {
			return "", err
		}
		return Finished, nil
	}
	pw, err := e.Open(ctx, tenantID, passwordField, rec.PendingPassword, rec.PendingDataKey)
	if err != nil {
		return "", err
	}
	err = e.cfg.VerifyLogin(ctx, rec.SMTPAddr, rec.PendingUsername, pw)
	switch {
	case err == nil:
		return finish()
	case !errors.Is(err, mailu.ErrAuthFailed):
		return "", Upstream("test the pending password", err)
	}
	if rec.Password != "" {
		cur, err := e.Open(ctx, tenantID, passwordField, rec.Password, rec.DataKey)
		if err != nil {
			return "", err
		}
		err = e.cfg.VerifyLogin(ctx, rec.SMTPAddr, rec.Username, cur)
		switch {
		case err == nil:
			rec.clearPending()
			if err := e.WriteRecord(ctx, tenantID, rec); err != nil {
				return "", err
			}
			e.markState(ctx, tenantID, stateOf(rec))
			e.log.InfoContext(ctx, "rotation rolled back: MailU never took the pending password", "tenant_id", tenantID)
			return RolledBack, nil
		case !errors.Is(err, mailu.ErrAuthFailed):
			return "", Upstream("test the current password", err)
		}
	}
	// MailU accepts neither: the pending password may be half set, or the
	// admin was lost. Roll forward with the recorded password.
	admin, err := e.mailuAdmin(ctx, tenantID)
	if err != nil {
		return "", err
	}
	if err := e.SetSecret(ctx, admin, rec.PendingUsername, pw); err != nil {
		return "", err
	}
	if err := e.TestSecret(ctx, rec.SMTPAddr, rec.PendingUsername, pw); err != nil {
		return "", err
	}
	return finish()
}

// ReadRecord reads a tenant's admin record; ErrNotFound when there is none.
func (e *Engine) ReadRecord(ctx context.Context, tenantID string) (*Record, error) {
	sec, err := e.cfg.Vault.Read(ctx, AdminPath(tenantID))
	if err != nil {
		if errors.Is(err, vault.ErrNotFound) {
			return nil, fmt.Errorf("%w: no credential for tenant %s", ErrNotFound, tenantID)
		}
		return nil, Upstream("read the credential", err)
	}
	return recordFromData(sec.Data, sec.Version), nil
}

// WriteRecord stores rec as the next KV version, with check-and-set on the
// version it was read at.
func (e *Engine) WriteRecord(ctx context.Context, tenantID string, rec *Record) error {
	v, err := e.cfg.Vault.WriteCAS(ctx, AdminPath(tenantID), rec.data(), rec.version)
	if err != nil {
		return Upstream("write the credential", err)
	}
	rec.version = v
	return nil
}
