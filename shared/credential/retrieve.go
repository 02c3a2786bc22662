package credential

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"smtp-vault/shared/audit"
)

// View is a credential as shown to platform staff. It holds the plaintext
// password: it lives for one response and is never logged (LogValue).
type View struct {
	TenantID     string
	Username     string
	Password     string
	WebmailURL   string
	LastRotated  time.Time
	NextRotation time.Time
}

// LogValue keeps the password out of any log line that names a View.
func (v View) LogValue() slog.Value {
	return slog.GroupValue(slog.String("tenant_id", v.TenantID), slog.String("username", v.Username), slog.String("password", "[redacted]"))
}

// String keeps the password out of fmt output.
func (v View) String() string {
	return fmt.Sprintf("credential{tenant_id=%s username=%s password=[redacted]}", v.TenantID, v.Username)
}

// GoString keeps the password out of %#v, which does not use String.
func (v View) GoString() string { return v.String() }

// Retrieve decrypts a tenant's current credential for a member of staff.
// The access is written to the audit trail first; if that fails, no
// password is returned. While a change is in flight the current password is
// served, which MailU keeps accepting until the change is finished.
func (s *Service) Retrieve(ctx context.Context, tenantID string, actor Actor) (View, error) {
	if err := ValidateTenantID(tenantID); err != nil {
		return View{}, err
	}
	rec, err := s.readRecord(ctx, tenantID)
	if err != nil {
		return View{}, err
	}
	if rec.Password == "" {
		return View{}, fmt.Errorf("%w: the credential of tenant %s is still being created", ErrNotFound, tenantID)
	}
	pw, err := s.open(ctx, tenantID, passwordField, rec.Password, rec.DataKey)
	if err != nil {
		return View{}, err
	}
	if err := s.cfg.Audit.Record(ctx, audit.Event{
		Event:     audit.CredentialsAccessed,
		TenantID:  tenantID,
		UserID:    actor.UserID,
		IP:        actor.IP,
		UserAgent: actor.UserAgent,
		Details:   map[string]any{"kv_version": rec.version},
	}); err != nil {
		return View{}, upstream("record "+audit.CredentialsAccessed, err)
	}
	last := rec.lastRotated()
	return View{
		TenantID:     tenantID,
		Username:     rec.Username,
		Password:     pw,
		WebmailURL:   rec.WebmailURL,
		LastRotated:  last,
		NextRotation: last.Add(RotationInterval),
	}, nil
}
