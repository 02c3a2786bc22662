package credential

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/crypto"
	"smtp-vault/shared/mailu"
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
// resume on the next run (resume.go). Store (a tenant's first password),
// Rotate and the emergency reset run the same steps through runSteps.

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

// passwordField is the field name in the AAD of a sealed password.
const passwordField = "password"

// The entropy of a generated password: 32 bytes (SPEC section 4), 48 for
// an emergency reset (section 6).
const (
	passwordBytes      = 32
	resetPasswordBytes = 48
)

func (s *Service) hook(ctx context.Context, tenantID string, at Boundary) error {
	if s.cfg.Hook == nil {
		return nil
	}
	return s.cfg.Hook(ctx, tenantID, at)
}

// runSteps changes the password of a tenant whose record holds no pending
// change: the four steps with the hook between them. admin is the tenant's
// MailU admin API. It returns the new password, for the one-time display
// of an emergency reset; other callers drop it.
func (s *Service) runSteps(ctx context.Context, tenantID string, rec *Record, admin MailU, username, purpose string, ev audit.Event) (string, error) {
	if err := s.hook(ctx, tenantID, BeforeCreate); err != nil {
		return "", err
	}
	pw, err := s.createSecret(ctx, tenantID, rec, username, purpose)
	if err != nil {
		return "", err
	}
	if err := s.hook(ctx, tenantID, AfterCreate); err != nil {
		return "", err
	}
	if err := s.recordChangeStarted(ctx, tenantID, rec, ev); err != nil {
		return "", err
	}
	if err := s.setSecret(ctx, admin, username, pw); err != nil {
		return "", err
	}
	if err := s.hook(ctx, tenantID, AfterSet); err != nil {
		return "", err
	}
	if err := s.testSecret(ctx, admin, rec.pendingSMTPAddr(), username, pw); err != nil {
		return "", err
	}
	if err := s.hook(ctx, tenantID, AfterTest); err != nil {
		return "", err
	}
	if err := s.finishSecret(ctx, tenantID, rec, ev); err != nil {
		return "", err
	}
	return pw, s.hook(ctx, tenantID, AfterFinish)
}

// createSecret generates a password and records it as pending in a new
// version of the record. It returns the plaintext, which the caller keeps
// only for the rest of the request.
func (s *Service) createSecret(ctx context.Context, tenantID string, rec *Record, username, purpose string) (string, error) {
	size := passwordBytes
	if purpose == PurposeReset {
		size = resetPasswordBytes
	}
	pw, err := crypto.NewPassword(size)
	if err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	return pw, s.recordPending(ctx, tenantID, rec, username, purpose, pw)
}

// recordPending records pw as the pending password of rec in a new
// version (check-and-set): createSecret's write, also used by a recovery
// that sets the stored password on a new MailU.
func (s *Service) recordPending(ctx context.Context, tenantID string, rec *Record, username, purpose, pw string) error {
	sealed, wrapped, err := s.seal(ctx, tenantID, passwordField, pw)
	if err != nil {
		return err
	}
	rec.PendingUsername = username
	rec.PendingPassword = sealed
	rec.PendingDataKey = wrapped
	rec.PendingSince = FormatTime(s.Now())
	rec.PendingPurpose = purpose
	// The index learns of the change before anything is written: a crash
	// from here on leaves the tenant pending there, where the sweep finds
	// it. A compromise response's chunk may have marked it already.
	if rec.indexMarked {
		rec.index.start(tenantID)
	} else if err := s.indexPending(ctx, tenantID, username, rec.CompromisedIncident); err != nil {
		return err
	}
	if err := s.writeRecord(ctx, tenantID, rec); err != nil {
		return err
	}
	if !rec.stateMarked {
		s.patchState(ctx, tenantID, map[string]string{MetaState: StatePending})
	}
	return nil
}

// recordChangeStarted audits that the pending password of rec is about to
// be set in MailU, with the actor of ev. It fails closed: without the
// record MailU is not touched, and the next run rolls the pending password
// back (MailU never took it).
func (s *Service) recordChangeStarted(ctx context.Context, tenantID string, rec *Record, ev audit.Event) error {
	err := s.cfg.Audit.Record(ctx, audit.Event{
		Event:     audit.CredentialsChangeStarted,
		TenantID:  tenantID,
		UserID:    ev.UserID,
		IP:        ev.IP,
		UserAgent: ev.UserAgent,
		Details:   map[string]any{"purpose": rec.PendingPurpose, "kv_version": rec.version, "for_event": ev.Event},
	})
	return upstream("record "+audit.CredentialsChangeStarted, err)
}

// setSecret makes MailU's admin user accept pw, creating the user when the
// tenant's MailU does not have it yet. Setting the same password again
// changes nothing, so a resumed run repeats it safely.
func (s *Service) setSecret(ctx context.Context, admin MailU, username, pw string) error {
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
			// A full domain (ErrDomainFull) is no user created meanwhile.
			return upstream("create the MailU admin", err)
		}
		// Created by someone else meanwhile: set the password below.
	} else if err != nil {
		return upstream("look up the MailU admin", err)
	}
	if err := admin.SetPassword(ctx, username, pw); err != nil {
		return upstream("set the MailU admin password", err)
	}
	return nil
}

// testSecret proves pw with an SMTP AUTH login to the tenant's MailU.
// A refused login is looked up in MailU's hash (holds.go): if MailU holds
// pw, the refusal is MailU's (ErrLoginRefused) and the change stays
// pending for the next run, which never sets another password on it.
func (s *Service) testSecret(ctx context.Context, admin MailU, addr, username, pw string) error {
	err := s.cfg.VerifyLogin(ctx, addr, username, pw)
	if err == nil {
		return nil
	}
	if !errors.Is(err, mailu.ErrAuthFailed) {
		return upstream("test the password over SMTP AUTH", err)
	}
	held, herr := s.holds(ctx, admin, username, pw)
	switch {
	case herr != nil:
		return fmt.Errorf("%w: MailU refused the new password over SMTP AUTH and its hash cannot be read: %w", ErrUnavailable, herr)
	case held:
		return fmt.Errorf("%w: MailU's hash says the new password is set, but its SMTP login was refused; the change stays pending: %w", ErrLoginRefused, err)
	default:
		return fmt.Errorf("%w: MailU did not take the new password (its hash differs): %w", ErrUnavailable, err)
	}
}

// finishSecret writes ev to the audit trail and then promotes the pending
// password to current. Without the audit record nothing is promoted; the
// pending password stays recorded and the next run finishes it.
func (s *Service) finishSecret(ctx context.Context, tenantID string, rec *Record, ev audit.Event) error {
	now := s.Now()
	ev.TenantID = tenantID
	if ev.Details == nil {
		ev.Details = map[string]any{}
	}
	ev.Details["kv_version"] = rec.version + 1
	if err := s.cfg.Audit.Record(ctx, ev); err != nil {
		return upstream("record "+ev.Event, err)
	}
	if rec.PendingMailUURL != "" {
		if err := s.promoteEndpoints(ctx, tenantID, rec); err != nil {
			return err
		}
	}
	rec.Username = rec.PendingUsername
	rec.Password = rec.PendingPassword
	rec.DataKey = rec.PendingDataKey
	rec.LastRotated = FormatTime(now)
	if rec.CreatedAt == "" {
		rec.CreatedAt = rec.LastRotated
	}
	rec.RotationPolicy = RotationPolicy
	rec.CurrentCompromised = "" // a new password is current
	if rec.PendingPurpose == PurposeReset {
		// Only now does the incident count as reset for this tenant: a
		// reset rolled back never promoted a password.
		if !slices.Contains(strings.Split(rec.ResetIncidents, ","), rec.CompromisedIncident) {
			rec.ResetIncidents = appendIncident(rec.ResetIncidents, rec.CompromisedIncident)
		}
		rec.ResetResponse = rec.PendingResetResponse
	}
	md := map[string]string{MetaRotationFailed: ""} // a change went through
	if rec.PendingPurpose == PurposeRotate && rec.CompromisedIncident != "" {
		// A normal rotation ends the compromise's display; the per-version
		// marks in custom_metadata and the audit trail keep it.
		rec.CompromisedIncident, rec.CompromisedAt, rec.CompromisedVersion = "", "", ""
		md[MetaCompromised] = ""
	}
	rec.clearPending()
	if err := s.writeRecord(ctx, tenantID, rec); err != nil {
		return err
	}
	maps.Copy(md, stateOf(rec))
	s.markState(ctx, tenantID, rec, md)
	return nil
}
