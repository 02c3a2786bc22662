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
// nothing changes and the error says so. ev is the event to audit when the
// change is finished; nil builds it from the change's purpose.
func (s *Service) resume(ctx context.Context, tenantID string, rec *Record, ev *audit.Event) (Resumed, error) {
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
		if err := s.finishSecret(ctx, tenantID, rec, *ev); err != nil {
			return "", err
		}
		return Finished, nil
	}
	pw, err := s.open(ctx, tenantID, passwordField, rec.PendingPassword, rec.PendingDataKey)
	if err != nil {
		return "", err
	}
	err = s.cfg.VerifyLogin(ctx, rec.SMTPAddr, rec.PendingUsername, pw)
	switch {
	case err == nil:
		return finish()
	case !errors.Is(err, mailu.ErrAuthFailed):
		return "", upstream("test the pending password", err)
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
			s.markState(ctx, tenantID, stateOf(rec))
			s.log.InfoContext(ctx, "rotation rolled back: MailU never took the pending password", "tenant_id", tenantID)
			return RolledBack, nil
		case !errors.Is(err, mailu.ErrAuthFailed):
			return "", upstream("test the current password", err)
		}
	}
	// MailU accepts neither: the pending password may be half set, or the
	// admin was lost. Roll forward with the recorded password.
	admin, err := s.mailuAdmin(ctx, tenantID)
	if err != nil {
		return "", err
	}
	if err := s.setSecret(ctx, admin, rec.PendingUsername, pw); err != nil {
		return "", err
	}
	if err := s.testSecret(ctx, rec.SMTPAddr, rec.PendingUsername, pw); err != nil {
		return "", err
	}
	return finish()
}
