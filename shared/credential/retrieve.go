package credential

import (
	"context"
	"fmt"
	"log/slog"
	"strconv"
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
	// Compromise is the last emergency reset, until the next normal
	// rotation; nil when none.
	Compromise *Compromise
}

// Compromise says that an earlier credential of a tenant was declared
// compromised, by which incident, when, and which KV version.
type Compromise struct {
	IncidentID string    `json:"incident_id"`
	At         time.Time `json:"at"`
	KVVersion  int       `json:"kv_version"`
}

// compromiseOf reads the compromise an emergency reset left on rec.
func compromiseOf(rec *Record) *Compromise {
	if rec.CompromisedIncident == "" {
		return nil
	}
	at, _ := time.Parse(time.RFC3339, rec.CompromisedAt)
	v, _ := strconv.Atoi(rec.CompromisedVersion)
	return &Compromise{IncidentID: rec.CompromisedIncident, At: at, KVVersion: v}
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

// Retrieve decrypts a tenant's credential for a member of staff. The
// access is written to the audit trail first; if that fails, no password is
// returned.
//
// While a change is in flight MailU holds either the current password or
// the pending one (SPEC section 6), and after setSecret it refuses the
// current one. So when a pending password is recorded, Retrieve tries it
// with one SMTP AUTH login and serves it if MailU accepts it; otherwise
// (MailU refuses it or cannot be asked) it serves the current one. Either
// way the password served is one MailU accepted when it was read, and the
// rotation cool-down keeps it accepted for a while (docs/architecture.md,
// "Readers during a rotation").
func (s *Service) Retrieve(ctx context.Context, tenantID string, actor Actor) (View, error) {
	if err := ValidateTenantID(tenantID); err != nil {
		return View{}, err
	}
	rec, err := s.readRecord(ctx, tenantID)
	if err != nil {
		return View{}, err
	}
	username, served := rec.Username, "current"
	var pw string
	if rec.Pending() {
		if p, ok := s.pendingAccepted(ctx, tenantID, rec); ok {
			pw, username, served = p, rec.PendingUsername, "pending"
		}
	}
	if pw == "" {
		if rec.Password == "" {
			return View{}, fmt.Errorf("%w: the credential of tenant %s is still being created", ErrNotFound, tenantID)
		}
		if rec.CurrentCompromised != "" {
			return View{}, compromisedError(tenantID, rec)
		}
		if pw, err = s.open(ctx, tenantID, passwordField, rec.Password, rec.DataKey); err != nil {
			return View{}, err
		}
	}
	if err := s.cfg.Audit.Record(ctx, audit.Event{
		Event:     audit.CredentialsAccessed,
		TenantID:  tenantID,
		UserID:    actor.UserID,
		IP:        actor.IP,
		UserAgent: actor.UserAgent,
		Details:   map[string]any{"kv_version": rec.Version(), "served": served},
	}); err != nil {
		return View{}, upstream("record "+audit.CredentialsAccessed, err)
	}
	last := rec.LastRotatedTime()
	return View{
		TenantID:     tenantID,
		Username:     username,
		Password:     pw,
		WebmailURL:   rec.WebmailURL,
		LastRotated:  last,
		NextRotation: last.Add(RotationInterval),
		Compromise:   compromiseOf(rec),
	}, nil
}

// compromisedError refuses a password that rec says is compromised.
func compromisedError(tenantID string, rec *Record) error {
	return fmt.Errorf("%w: incident %s declared the password of tenant %s compromised and its reset did not finish; run the emergency reset again",
		ErrCompromised, rec.CurrentCompromised, tenantID)
}

// pendingAccepted opens the pending password and says whether MailU takes
// it now. Any failure means "serve the current one".
func (s *Service) pendingAccepted(ctx context.Context, tenantID string, rec *Record) (string, bool) {
	pw, err := s.open(ctx, tenantID, passwordField, rec.PendingPassword, rec.PendingDataKey)
	if err != nil {
		s.log.WarnContext(ctx, "open the pending password", "tenant_id", tenantID, "error", err)
		return "", false
	}
	if err := s.cfg.VerifyLogin(ctx, rec.pendingSMTPAddr(), rec.PendingUsername, pw); err != nil {
		s.log.InfoContext(ctx, "pending password not accepted by MailU yet; serving the current one", "tenant_id", tenantID, "error", err)
		return "", false
	}
	return pw, true
}
