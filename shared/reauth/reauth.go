// Package reauth makes platform staff prove who they are a second time
// before a secret is shown or changed: Vault checks their password and
// TOTP code (userpass auth with login MFA), failed attempts are counted
// where every function instance sees them, and the proof is a short-lived
// token signed by Transit that the guarded routes verify.
package reauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/notify"
	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/vault"
)

// MaxTTL is the longest a re-auth token may live (SPEC section 5); a
// token claiming a longer life is refused.
const MaxTTL = 15 * time.Minute

// Vault is what re-authentication needs from Vault; *vault.Client
// implements it.
type Vault interface {
	LoginUserpass(ctx context.Context, mount, username, password string) (*vault.UserpassLogin, error)
	ValidateMFA(ctx context.Context, requestID string, passcodes map[string]string) (string, error)
	RevokeSelf(ctx context.Context, token string) error
	Sign(ctx context.Context, key string, input []byte) (string, error)
	Verify(ctx context.Context, key string, input []byte, signature string) (bool, error)
	ReadSigningKey(ctx context.Context, key string) (vault.SigningKey, error)
	ReadKV(ctx context.Context, mount, path string) (*vault.Secret, error)
	WriteKVCAS(ctx context.Context, mount, path string, data map[string]string, cas int) (int, error)
}

// Recorder records audit events.
type Recorder interface {
	Record(ctx context.Context, e audit.Event) error
}

// Config wires a Service. Empty fields get the defaults of the local stack.
type Config struct {
	Vault         Vault
	UserpassMount string        // Vault userpass mount of the staff; "userpass"
	AttemptsMount string        // KV v2 mount of the attempt records; "smtp-access"
	SigningKey    string        // Transit key that signs tokens; "reauth-signing"
	TTL           time.Duration // token lifetime; MaxTTL
	Audit         Recorder
	Alerts        notify.Notifier // gets the lockout alert; nil: audit event only
	Now           func() time.Time
	Log           *slog.Logger
}

// Service re-authenticates staff and verifies their re-auth tokens.
type Service struct {
	cfg      Config
	attempts attempts
	keys     *signingKeys
}

// New returns a Service. A TTL above MaxTTL is an error.
func New(cfg Config) (*Service, error) {
	if cfg.UserpassMount == "" {
		cfg.UserpassMount = "userpass"
	}
	if cfg.AttemptsMount == "" {
		cfg.AttemptsMount = "smtp-access"
	}
	if cfg.SigningKey == "" {
		cfg.SigningKey = "reauth-signing"
	}
	if cfg.TTL == 0 {
		cfg.TTL = MaxTTL
	}
	if cfg.TTL < 0 || cfg.TTL > MaxTTL {
		return nil, fmt.Errorf("reauth: token lifetime %v is not within (0, %v]", cfg.TTL, MaxTTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Service{
		cfg:      cfg,
		attempts: attempts{vault: cfg.Vault, mount: cfg.AttemptsMount},
		keys:     &signingKeys{vault: cfg.Vault, name: cfg.SigningKey, now: time.Now},
	}, nil
}

// TTL is how long the tokens this service issues live.
func (s *Service) TTL() time.Duration { return s.cfg.TTL }

func (s *Service) now() time.Time { return s.cfg.Now() }

// Actor is who is re-authenticating, for the audit trail. UserID is the
// bearer token's subject.
type Actor struct {
	UserID    string
	IP        string
	UserAgent string
}

// vaultUser is the userpass username of a subject, which becomes part of
// a Vault path and of a KV path (pathseg.StaffName). Vault's userpass
// lower-cases usernames, so the attempt records do too.
func vaultUser(subject string) (string, bool) {
	user := strings.ToLower(subject)
	return user, pathseg.Check(pathseg.StaffName, user) == nil
}

// Authenticate checks the password and TOTP code of who (the userpass user
// named by the bearer token's subject) with Vault and, if both are right,
// returns a re-auth token bound to that subject. Wrong ones give an *Error
// of kind ErrFailed, or ErrLocked once the failures exceed the limit (and
// then even right ones, until the lock ends). The password and code are
// sent to Vault only, never logged or recorded.
func (s *Service) Authenticate(ctx context.Context, who Actor, password, code string) (Issued, error) {
	user, ok := vaultUser(who.UserID)
	if !ok {
		return Issued{}, failed("subject_not_a_vault_user")
	}
	stamp, lockedNow, err := s.attempts.begin(ctx, user, s.now())
	if err != nil {
		var re *Error
		if errors.As(err, &re) {
			if lockedNow {
				s.recordLocked(ctx, who, re.Failures, re.RetryAfter, errors.Is(err, ErrHeld))
			}
			return Issued{}, err
		}
		return Issued{}, unavailable("read the attempts record", err)
	}
	if err := s.prove(ctx, user, password, code); err != nil {
		var fe *Error
		if errors.As(err, &fe) {
			return Issued{}, s.countFailure(ctx, who, user, stamp, fe)
		}
		if rerr := s.attempts.release(context.WithoutCancel(ctx), user, stamp, s.now()); rerr != nil {
			s.cfg.Log.WarnContext(ctx, "reauth: release an attempt Vault did not judge", "user", user, "error", rerr)
		}
		return Issued{}, err
	}
	if err := s.attempts.succeed(context.WithoutCancel(ctx), user, stamp, s.now()); err != nil {
		// The failures stay counted; they expire with the window.
		s.cfg.Log.WarnContext(ctx, "reauth: clear failed attempts", "user", user, "error", err)
	}
	issued, err := s.issue(ctx, who.UserID, s.now())
	if err != nil {
		return Issued{}, err
	}
	if err := s.cfg.Audit.Record(ctx, audit.Event{
		Event:     audit.AdminReauthenticated,
		UserID:    who.UserID,
		IP:        who.IP,
		UserAgent: who.UserAgent,
		Severity:  audit.Info,
		Details:   map[string]any{"reauth_id": issued.Claims.ID, "expires_at": issued.Claims.Expiry().Format(time.RFC3339)},
	}); err != nil {
		return Issued{}, fmt.Errorf("reauth: record %s: %w: %w", audit.AdminReauthenticated, ErrAudit, err)
	}
	return issued, nil
}

// Lift ends the daily hold of a member of staff (and forgets their failed
// attempts), so they may re-authenticate again; wasHeld says whether they
// were held. The caller (scripts/staff unlock, a platform-admin's tool)
// audits it.
func Lift(ctx context.Context, kv KV, attemptsMount, user string, now time.Time) (wasHeld bool, err error) {
	u, ok := vaultUser(user)
	if !ok {
		return false, fmt.Errorf("reauth: %q cannot name a Vault user", user)
	}
	if attemptsMount == "" {
		attemptsMount = "smtp-access"
	}
	a := attempts{vault: kv, mount: attemptsMount}
	return a.lift(ctx, u, now)
}

// prove logs user in to Vault with password, completes the login MFA with
// code, and revokes the token Vault issues at once: only the proof is
// needed. It returns an *Error of kind ErrFailed for a wrong password or
// code.
func (s *Service) prove(ctx context.Context, user, password, code string) error {
	v := s.cfg.Vault
	login, err := v.LoginUserpass(ctx, s.cfg.UserpassMount, user, password)
	switch {
	case errors.Is(err, vault.ErrInvalidCredentials):
		return failed("wrong_password")
	case err != nil:
		return unavailable("log in to Vault", err)
	}
	if login.Token != "" {
		// A password alone is not enough: refuse, and say what is wrong.
		s.revoke(ctx, login.Token)
		return unavailable("log in to Vault", errors.New("vault issued a token without login MFA; enforce a TOTP method for the userpass mount"))
	}
	methodID, err := totpMethod(login)
	if err != nil {
		return unavailable("log in to Vault", err)
	}
	token, err := v.ValidateMFA(ctx, login.MFARequestID, map[string]string{methodID: code})
	switch {
	case errors.Is(err, vault.ErrInvalidCredentials):
		return failed("wrong_totp_code")
	case err != nil:
		return unavailable("validate the TOTP code with Vault", err)
	}
	s.revoke(ctx, token)
	return nil
}

// totpMethod is the one TOTP method that satisfies every MFA constraint of
// the login; anything else is a Vault setup this service cannot complete
// with one code.
func totpMethod(l *vault.UserpassLogin) (string, error) {
	var id string
	for name, methods := range l.MFAConstraints {
		found := false
		for _, m := range methods {
			if m.Type == "totp" && (id == "" || id == m.ID) {
				id, found = m.ID, true
				break
			}
		}
		if !found {
			return "", fmt.Errorf("login MFA enforcement %q cannot be met with the one TOTP method", name)
		}
	}
	if id == "" {
		return "", errors.New("login MFA asks for no TOTP method")
	}
	return id, nil
}

// revoke revokes a token Vault issued for the proof. A failure is only
// logged: the demo users' tokens live one minute, and the token is never
// used or kept.
func (s *Service) revoke(ctx context.Context, token string) {
	if err := s.cfg.Vault.RevokeSelf(context.WithoutCancel(ctx), token); err != nil {
		s.cfg.Log.WarnContext(ctx, "reauth: revoke the proof's Vault token", "error", err)
	}
}

// countFailure keeps a failed attempt counted and locks the user once the
// failures exceed the limit; the attempt that sets the lock, and every one
// while it lasts, is answered ErrLocked.
func (s *Service) countFailure(ctx context.Context, who Actor, user string, stamp time.Time, fe *Error) error {
	n, lockedFor, lockedNow, held, err := s.attempts.fail(context.WithoutCancel(ctx), user, stamp, s.now())
	if err != nil {
		// The attempt was recorded by begin and stays counted; the next
		// begin applies the limit.
		s.cfg.Log.ErrorContext(ctx, "reauth: count a failed attempt", "user", user, "error", err)
		return fe
	}
	fe.Failures = n
	if lockedFor <= 0 && !held {
		return fe
	}
	if lockedNow {
		s.recordLocked(ctx, who, n, lockedFor, held)
	}
	if held {
		return &Error{Kind: ErrHeld, Reason: fe.Reason, Failures: n, attemptFailed: true}
	}
	return &Error{Kind: ErrLocked, Reason: fe.Reason, RetryAfter: lockedFor, Failures: n, attemptFailed: true}
}

// recordLocked writes the reauth_locked event and sends the security
// alert of a locked user, or of a held one (the daily cap: until a
// platform-admin lifts it). The lock holds whether or not either gets
// out; a failure is logged.
func (s *Service) recordLocked(ctx context.Context, who Actor, failures int, lockedFor time.Duration, held bool) {
	until, window := s.now().Add(lockedFor).UTC().Format(time.RFC3339), FailureWindow
	if held {
		until, window = "lifted by a platform-admin (scripts/staff unlock)", DailyWindow
	}
	if s.cfg.Alerts != nil {
		err := s.cfg.Alerts.Notify(ctx, notify.Message{
			Kind:    notify.KindSecurityAlert,
			Subject: "smtp-vault: re-authentication locked for " + who.UserID,
			Body: fmt.Sprintf("%d failed re-authentications of %s within %v (from %s); their re-authentication is locked until %s.",
				failures, who.UserID, window, who.IP, until),
			Attrs: map[string]string{"rule": audit.ReauthLocked, "user_id": who.UserID},
		})
		if err != nil {
			s.cfg.Log.ErrorContext(ctx, "reauth: send the lockout alert", "user", who.UserID, "error", err)
		}
	}
	err := s.cfg.Audit.Record(ctx, audit.Event{
		Event:     audit.ReauthLocked,
		UserID:    who.UserID,
		IP:        who.IP,
		UserAgent: who.UserAgent,
		Severity:  audit.Critical,
		Details: map[string]any{
			"failures":     failures,
			"window":       window.String(),
			"locked_until": until,
			"held":         held,
		},
	})
	if err != nil {
		s.cfg.Log.ErrorContext(ctx, "reauth: record "+audit.ReauthLocked, "user", who.UserID, "error", err)
	}
}
