package credential

import (
	"errors"
	"fmt"
	"time"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/vault"
)

// Domain errors. shared/api maps each to one status and code in one table;
// the message after the sentinel is safe to show to the caller.
var (
	ErrInvalidInput = errors.New("invalid input")
	ErrNotFound     = errors.New("credential not found")
	ErrConflict     = errors.New("conflicting change in progress")
	ErrUnavailable  = errors.New("upstream unavailable")
	ErrRejected     = errors.New("rejected by MailU")
	ErrAudit        = errors.New("audit record could not be written")
	// ErrCooldown refuses a rotation that would change MailU's password
	// less than Config.Cooldown after the previous change (the readers'
	// guarantee in docs/architecture.md rests on it).
	ErrCooldown = errors.New("rotated too recently")
	// ErrLoginRefused: MailU holds the password (its hash says so) but
	// refuses it over SMTP AUTH; nothing was overwritten and a change in
	// flight stays pending (holds.go).
	ErrLoginRefused = errors.New("MailU refuses the SMTP login of the password it holds")
	// ErrMailURateLimited: MailU's admin API answered 429 (this service's
	// network is over AUTH_RATELIMIT_IP).
	ErrMailURateLimited = errors.New("MailU's admin API is rate-limiting this service")
	// ErrMailUMisconfigured: the tenant's MailU has no admin API token
	// configured; retrying cannot help until it has.
	ErrMailUMisconfigured = errors.New("the tenant's MailU admin API is not configured")
	// ErrDomainFull: MailU refuses to create the admin user because the
	// domain has its maximum of users.
	ErrDomainFull = errors.New("the tenant's MailU domain has its maximum of users")
)

// errorClasses names each domain error for the audit trail, in the order
// they are tested; the names are the API's error codes.
var errorClasses = []struct {
	err  error
	name string
}{
	{ErrTokenRequired, "mailu_api_token_required"},
	{ErrEndpointNotAllowed, "endpoint_not_allowed"},
	{ErrLoginRefused, "smtp_login_refused"},
	{ErrMailURateLimited, "mailu_rate_limited"},
	{ErrMailUMisconfigured, "mailu_misconfigured"},
	{ErrDomainFull, "mailu_domain_full"},
	{ErrConflict, "conflict"},
	{ErrNotFound, "not_found"},
	{ErrRejected, "mailu_rejected"},
	{ErrAudit, "audit_unavailable"},
	{ErrInvalidInput, "invalid_request"},
}

// errorClass is the class of err recorded in audit details: never its
// text, which may name upstream hosts.
func errorClass(err error) string {
	for _, c := range errorClasses {
		if errors.Is(err, c.err) {
			return c.name
		}
	}
	return "unavailable"
}

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
