package credential

import (
	"context"
	"errors"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/mailu"
)

// Resumed is what resume did with a change an earlier run left behind.
type Resumed string

const (
	// Finished: MailU accepted the pending password; it is now current.
	Finished Resumed = "finished"
	// RolledBack: MailU still accepts the current password; the pending
	// one, which it never took, is dropped.
	RolledBack Resumed = "rolled_back"
)

// resume finishes or undoes a change that an earlier run left behind. It
// asks MailU with SMTP logins which password it holds: the pending one is
// promoted; if MailU holds the current one, the pending one is dropped;
// if it accepts neither, the pending password is set again (setSecret is
// idempotent) and the change finished. When MailU cannot be asked,
// nothing changes and the error says so. An endpoint change is asked at
// its new endpoints for the pending password and at the old ones for the
// current password, so a new host that cannot be reached is rolled back
// while the old one still takes the current password. ev is the event to
// audit when the change is finished; nil builds it from the change's
// purpose.
func (s *Service) resume(ctx context.Context, tenantID string, rec *Record, ev *audit.Event) (Resumed, error) {
	if ev == nil {
		ev = &audit.Event{Event: audit.CredentialsStored, Details: map[string]any{"action": "resumed"}}
		switch rec.PendingPurpose {
		case PurposeRotate:
			ev = &audit.Event{Event: audit.CredentialsRotated, UserID: "system:resume", Details: map[string]any{"trigger": "resume"}}
		case PurposeReset:
			ev = &audit.Event{Event: audit.CredentialsEmergencyReset, UserID: "system:resume", Severity: audit.Critical,
				Details: map[string]any{"incident_id": rec.CompromisedIncident, "compromised_version": rec.CompromisedVersion}}
		case PurposeEndpoint:
			ev = &audit.Event{Event: audit.CredentialsStored, UserID: "system:resume", Details: map[string]any{"action": "endpoint_changed"}}
		}
	}
	moving := rec.PendingMailUURL != ""
	finish := func() (Resumed, error) {
		if ev.Details == nil {
			ev.Details = map[string]any{}
		}
		ev.Details["resumed"] = true
		if moving {
			if err := s.recordEndpointChanged(ctx, tenantID, s.pendingChange(ctx, tenantID, rec), *ev); err != nil {
				return "", err
			}
		}
		if err := s.finishSecret(ctx, tenantID, rec, *ev); err != nil {
			return "", err
		}
		return Finished, nil
	}
	pw, err := s.open(ctx, tenantID, passwordField, rec.PendingPassword, rec.PendingDataKey)
	if err != nil {
		return "", err
	}
	pendingErr := s.cfg.VerifyLogin(ctx, rec.pendingSMTPAddr(), rec.PendingUsername, pw)
	switch {
	case pendingErr == nil:
		return finish()
	case !errors.Is(pendingErr, mailu.ErrAuthFailed) && !moving:
		return "", upstream("test the pending password", pendingErr)
	}
	if rec.Password != "" {
		cur, err := s.open(ctx, tenantID, passwordField, rec.Password, rec.DataKey)
		if err != nil {
			return "", err
		}
		err = s.cfg.VerifyLogin(ctx, rec.SMTPAddr, rec.Username, cur)
		switch {
		case err == nil:
			rec.clearPending()
			if err := s.writeRecord(ctx, tenantID, rec); err != nil {
				return "", err
			}
			s.markState(ctx, tenantID, rec, stateOf(rec))
			s.log.InfoContext(ctx, "rotation rolled back: MailU never took the pending password", "tenant_id", tenantID)
			return RolledBack, nil
		case !errors.Is(err, mailu.ErrAuthFailed):
			return "", upstream("test the current password", err)
		}
	}
	// MailU accepts neither: the pending password may be half set, or the
	// admin was lost. Roll forward with the recorded password.
	if !errors.Is(pendingErr, mailu.ErrAuthFailed) {
		return "", upstream("test the pending password at the new endpoint", pendingErr)
	}
	admin, err := s.mailuAdmin(ctx, tenantID)
	if moving {
		admin, err = s.pendingMailUAdmin(ctx, tenantID, rec)
	}
	if err != nil {
		return "", err
	}
	if err := s.recordChangeStarted(ctx, tenantID, rec, *ev); err != nil {
		return "", err
	}
	if err := s.setSecret(ctx, admin, rec.PendingUsername, pw); err != nil {
		return "", err
	}
	if err := s.testSecret(ctx, rec.pendingSMTPAddr(), rec.PendingUsername, pw); err != nil {
		return "", err
	}
	return finish()
}
