package credential

import (
	"context"
	"fmt"

	"smtp-vault/shared/audit"
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

// resume finishes or undoes a change that an earlier run left behind.
// It asks MailU's admin API which password it holds (the hash, holds.go),
// never failed logins: if it holds the pending one, that is proven with
// an SMTP login and promoted; if it holds the current one, the pending
// one, which it never took, is dropped; if it holds neither, the pending
// password is set again (setSecret is idempotent) and the change
// finished. A pending password MailU holds but whose login it refuses
// stays pending (ErrLoginRefused): nothing is set on the strength of the
// refusal. When MailU cannot be asked, nothing changes and the error
// says so. An endpoint change is asked at its new endpoints for the
// pending password and at the old ones for the current password, so a
// new host that cannot be reached is rolled back while the old one still
// holds the current password. ev is the event to audit when the change
// is finished; nil builds it from the change's purpose.
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
	admin, err := s.mailuAdmin(ctx, tenantID)
	if moving {
		admin, err = s.pendingMailUAdmin(ctx, tenantID, rec)
	}
	if err != nil {
		return "", err
	}
	pendingHeld, pendingErr := s.holds(ctx, admin, rec.PendingUsername, pw)
	switch {
	case pendingErr == nil && pendingHeld:
		if err := s.proveLogin(ctx, rec.pendingSMTPAddr(), rec.PendingUsername, pw); err != nil {
			return "", err
		}
		return finish()
	case pendingErr != nil && !moving:
		return "", pendingErr
	}
	if rec.Password != "" {
		cur, err := s.open(ctx, tenantID, passwordField, rec.Password, rec.DataKey)
		if err != nil {
			return "", err
		}
		curAdmin := admin
		if moving {
			if curAdmin, err = s.mailuAdmin(ctx, tenantID); err != nil {
				return "", err
			}
		}
		held, err := s.holds(ctx, curAdmin, rec.Username, cur)
		if err != nil {
			return "", err
		}
		if held {
			rec.clearPending()
			if err := s.writeRecord(ctx, tenantID, rec); err != nil {
				return "", err
			}
			s.markState(ctx, tenantID, rec, stateOf(rec))
			s.log.InfoContext(ctx, "rotation rolled back: MailU never took the pending password", "tenant_id", tenantID)
			return RolledBack, nil
		}
	}
	// MailU holds neither: the pending password may be half set, or the
	// admin was lost. Roll forward with the recorded password.
	if pendingErr != nil {
		return "", fmt.Errorf("ask the new endpoint which password it holds: %w", pendingErr)
	}
	if err := s.recordChangeStarted(ctx, tenantID, rec, *ev); err != nil {
		return "", err
	}
	if err := s.setSecret(ctx, admin, rec.PendingUsername, pw); err != nil {
		return "", err
	}
	if err := s.testSecret(ctx, admin, rec.pendingSMTPAddr(), rec.PendingUsername, pw); err != nil {
		return "", err
	}
	return finish()
}
