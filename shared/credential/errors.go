package credential

import (
	"errors"
	"fmt"
	"time"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/vault"
)

// Domain errors, each with its one name, its code: the API answers with it
// (shared/api maps each error to a status in one table) and the audit
// trail and the status index record it. The message after the sentinel is
// safe to show to the caller.
var (
	ErrInvalidInput = codedError("invalid input", "invalid_request")
	ErrNotFound     = codedError("credential not found", "not_found")
	ErrConflict     = codedError("conflicting change in progress", "conflict")
	ErrUnavailable  = codedError("upstream unavailable", "upstream_unavailable")
	ErrRejected     = codedError("rejected by MailU", "mailu_rejected")
	ErrAudit        = codedError("audit record could not be written", "audit_unavailable")
	// ErrCooldown refuses a rotation that would change MailU's password
	// less than Config.Cooldown after the previous change (the readers'
	// guarantee in docs/architecture.md rests on it).
	ErrCooldown = codedError("rotated too recently", "rotation_cooldown")
	// ErrLoginRefused: MailU holds the password (its hash says so) but
	// refuses it over SMTP AUTH; nothing was overwritten and a change in
	// flight stays pending (holds.go).
	ErrLoginRefused = codedError("MailU refuses the SMTP login of the password it holds", "smtp_login_refused")
	// ErrMailURateLimited: MailU's admin API answered 429 (this service's
	// network is over AUTH_RATELIMIT_IP).
	ErrMailURateLimited = codedError("MailU's admin API is rate-limiting this service", "mailu_rate_limited")
	// ErrMailUMisconfigured: the tenant's MailU has no admin API token
	// configured; retrying cannot help until it has.
	ErrMailUMisconfigured = codedError("the tenant's MailU admin API is not configured", "mailu_misconfigured")
	// ErrDomainFull: MailU refuses to create the admin user because the
	// domain has its maximum of users.
	ErrDomainFull = codedError("the tenant's MailU domain has its maximum of users", "mailu_domain_full")
	// ErrCompromised refuses to serve or redeploy a password an emergency
	// reset declared compromised and did not replace (it failed and was
	// rolled back): reset the credential again.
	ErrCompromised = codedError("the stored password is compromised", "credential_compromised")
)

// Coded is a domain error that names itself with a code.
type Coded struct {
	msg  string
	code string
}

func codedError(msg, code string) error { return &Coded{msg: msg, code: code} }

func (e *Coded) Error() string { return e.msg }

// Code is the error's code.
func (e *Coded) Code() string { return e.code }

// Code is the code of the first domain error in err's tree other than
// ErrInvalidInput, which only says the input was bad where a more
// specific error (ErrTokenRequired, wrapped beside it) says how; then
// ErrInvalidInput's; and upstream_unavailable when there is none: an
// adapter's failure.
func Code(err error) string {
	var found *Coded
	var walk func(error) bool
	walk = func(e error) bool {
		if c, ok := e.(*Coded); ok {
			if c != ErrInvalidInput {
				found = c
				return true
			}
			if found == nil {
				found = c
			}
		}
		switch u := e.(type) {
		case interface{ Unwrap() error }:
			if next := u.Unwrap(); next != nil {
				return walk(next)
			}
		case interface{ Unwrap() []error }:
			for _, next := range u.Unwrap() {
				if walk(next) {
					return true
				}
			}
		}
		return false
	}
	if err != nil {
		walk(err)
	}
	if found == nil {
		return ErrUnavailable.(*Coded).code
	}
	return found.code
}

// errorClass is the class of err recorded in audit details and the status
// index: its code, never its text, which may name upstream hosts.
func errorClass(err error) string { return Code(err) }

// Retryable says whether a failed job may succeed if delivered again:
// not when its input is bad, its tenant does not exist, or its MailU's
// API is not configured (the sweep tries again daily; an operator fixes
// MailU).
func Retryable(err error) bool {
	return err != nil && !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrMailUMisconfigured)
}

// CooldownError is ErrCooldown with the time the next rotation may start.
type CooldownError struct {
	Until time.Time
	Wait  time.Duration // from now, on the service's clock
}

func (e *CooldownError) Error() string {
	return fmt.Sprintf("%v: the next rotation of this tenant may start at %s", ErrCooldown, e.Until.Format(time.RFC3339))
}

func (e *CooldownError) Unwrap() error { return ErrCooldown }

// upstream maps adapter errors to domain errors, keeping the cause.
func upstream(doing string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, vault.ErrNotFound):
		return fmt.Errorf("%s: %w: %w", doing, ErrNotFound, err)
	case errors.Is(err, vault.ErrCASConflict):
		return fmt.Errorf("%s: %w: %w", doing, ErrConflict, err)
	case errors.Is(err, mailu.ErrRateLimited):
		return fmt.Errorf("%s: %w: %w", doing, ErrMailURateLimited, err)
	case errors.Is(err, mailu.ErrMisconfigured):
		return fmt.Errorf("%s: %w: %w", doing, ErrMailUMisconfigured, err)
	case errors.Is(err, mailu.ErrDomainFull):
		return fmt.Errorf("%s: %w: %w", doing, ErrDomainFull, err)
	case errors.Is(err, mailu.ErrConflict):
		return fmt.Errorf("%s: %w: %w", doing, ErrConflict, err)
	case errors.Is(err, mailu.ErrRejected), errors.Is(err, mailu.ErrNotFound):
		return fmt.Errorf("%s: %w: %w", doing, ErrRejected, err)
	case errors.Is(err, audit.ErrNotRecorded):
		return fmt.Errorf("%s: %w: %w", doing, ErrAudit, err)
	default:
		// Sealed, down, forbidden, timeouts, MailU auth failures: the caller
		// can do nothing but retry later.
		return fmt.Errorf("%s: %w: %w", doing, ErrUnavailable, err)
	}
}
