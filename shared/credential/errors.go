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
	// ErrCompromised refuses to serve or redeploy a password an emergency
	// reset declared compromised and did not replace (it failed and was
	// rolled back): reset the credential again.
	ErrCompromised = errors.New("the stored password is compromised")
)

// errorClasses names each domain error for the audit trail, in the order
// they are tested; the names are the API's error codes.
var errorClasses = []struct {
	err  error
	name string
}{
	{ErrTokenRequired, "mailu_api_token_required"},
	{ErrEndpointNotAllowed, "endpoint_not_allowed"},
	{ErrCompromised, "credential_compromised"},
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
// not when its input is bad or its tenant does not exist.
func Retryable(err error) bool {
	return err != nil && !errors.Is(err, ErrInvalidInput) && !errors.Is(err, ErrNotFound)
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
