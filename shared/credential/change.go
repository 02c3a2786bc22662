package credential

import (
	"context"
	"errors"
	"fmt"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/crypto"
	"smtp-vault/shared/mailu"
)

// A password change follows AWS Secrets Manager's four rotation steps, each
// safe to repeat, with its state in the KV record itself:
//
//	createPending  record the new password as pending (check-and-set)
//	setInMailU     create the MailU admin or set its password
//	testLogin      prove the password with a real SMTP AUTH login
//	finish         promote pending to current (check-and-set), after the
//	               audit event is written
//
// At every instant MailU accepts either the current password or the pending
// one that Vault records, so a crash anywhere is finished or undone by
// resolvePending on the next run.

const passwordField = "password"

// passwordBytes is the entropy of a generated password (SPEC section 4).
const passwordBytes = 32

// createPending generates a password and records it as pending in a new
// version of the record. It returns the plaintext, which the caller keeps
// only for the rest of the request.
func (s *Service) createPending(ctx context.Context, tenantID string, rec *record, username string) (string, error) {
	pw, err := crypto.NewPassword(passwordBytes)
	if err != nil {
		return "", fmt.Errorf("generate password: %w", err)
	}
	sealed, wrapped, err := s.seal(ctx, tenantID, passwordField, pw)
	if err != nil {
		return "", err
	}
	rec.PendingUsername = username
	rec.PendingPassword = sealed
	rec.PendingDataKey = wrapped
	rec.PendingSince = formatTime(s.now())
	if err := s.write(ctx, tenantID, rec); err != nil {
		return "", err
	}
	s.markState(ctx, tenantID, map[string]string{"rotation_state": "pending"})
	return pw, nil
}

// setInMailU makes MailU's admin user accept pw, creating the user when the
// tenant's MailU does not have it yet.
func (s *Service) setInMailU(ctx context.Context, admin MailU, username, pw string) error {
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

// testLogin proves pw with an SMTP AUTH login to the tenant's MailU.
func (s *Service) testLogin(ctx context.Context, addr, username, pw string) error {
	if err := s.cfg.VerifyLogin(ctx, addr, username, pw); err != nil {
		if errors.Is(err, mailu.ErrAuthFailed) {
			return fmt.Errorf("%w: MailU did not accept the new password over SMTP AUTH: %w", ErrUnavailable, err)
		}
		return upstream("test the password over SMTP AUTH", err)
	}
	return nil
}

// finish writes ev to the audit trail and then promotes the pending
// password to current. Without the audit record nothing is promoted; the
// pending password stays recorded and the next run finishes it.
func (s *Service) finish(ctx context.Context, tenantID string, rec *record, ev audit.Event) error {
	now := s.now()
	ev.TenantID = tenantID
	if ev.Details == nil {
		ev.Details = map[string]any{}
	}
	ev.Details["kv_version"] = rec.version + 1
	if err := s.cfg.Audit.Record(ctx, ev); err != nil {
		return upstream("record "+ev.Event, err)
	}
	rec.Username = rec.PendingUsername
	rec.Password = rec.PendingPassword
	rec.DataKey = rec.PendingDataKey
	rec.LastRotated = formatTime(now)
	if rec.CreatedAt == "" {
		rec.CreatedAt = rec.LastRotated
	}
	rec.RotationPolicy = RotationPolicy
	rec.clearPending()
	if err := s.write(ctx, tenantID, rec); err != nil {
		return err
	}
	s.markState(ctx, tenantID, map[string]string{"rotation_state": "current", "last_rotated": rec.LastRotated})
	return nil
}

// resolvePending finishes or undoes a change that an earlier run left
// behind: a pending password MailU accepts is promoted, one it refuses is
// dropped. When MailU cannot be asked, nothing changes.
func (s *Service) resolvePending(ctx context.Context, tenantID string, rec *record, ev audit.Event) error {
	pw, err := s.open(ctx, tenantID, passwordField, rec.PendingPassword, rec.PendingDataKey)
	if err != nil {
		return err
	}
	err = s.cfg.VerifyLogin(ctx, rec.SMTPAddr, rec.PendingUsername, pw)
	switch {
	case err == nil:
		if ev.Details == nil {
			ev.Details = map[string]any{}
		}
		ev.Details["resumed"] = true
		return s.finish(ctx, tenantID, rec, ev)
	case errors.Is(err, mailu.ErrAuthFailed):
		rec.clearPending()
		if err := s.write(ctx, tenantID, rec); err != nil {
			return err
		}
		s.markState(ctx, tenantID, map[string]string{"rotation_state": "current"})
		s.log.InfoContext(ctx, "dropped a pending password MailU never accepted", "tenant_id", tenantID)
		return nil
	default:
		return upstream("test the pending password", err)
	}
}

// write stores rec as the next KV version, with check-and-set on the
// version it was read at.
func (s *Service) write(ctx context.Context, tenantID string, rec *record) error {
	v, err := s.cfg.Vault.WriteCAS(ctx, AdminPath(tenantID), rec.data(), rec.version)
	if err != nil {
		return upstream("write the credential", err)
	}
	rec.version = v
	return nil
}

// markState updates custom_metadata for readers that must not decrypt (the
// sweep). The KV data is authoritative, so a failure here is logged and
// corrected by the next change.
func (s *Service) markState(ctx context.Context, tenantID string, md map[string]string) {
	if err := s.cfg.Vault.PatchCustomMetadata(ctx, AdminPath(tenantID), md); err != nil {
		s.log.WarnContext(ctx, "update credential metadata", "tenant_id", tenantID, "error", err)
	}
}
