package reauth

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. The HTTP layer maps each to one status in one place.
var (
	// ErrRequired: the request needs a valid re-auth token of the caller
	// and has none (missing, malformed, forged, expired, another admin's).
	ErrRequired = errors.New("re-authentication required")
	// ErrFailed: the password or the TOTP code was wrong.
	ErrFailed = errors.New("re-authentication failed")
	// ErrLocked: too many failed attempts; Error.RetryAfter says how long
	// the lock lasts.
	ErrLocked = errors.New("re-authentication locked")
	// ErrHeld: more than DailyMaxFailures failures within DailyWindow;
	// the hold lasts until a platform-admin lifts it (Lift).
	ErrHeld = errors.New("re-authentication held until a platform-admin lifts it")
	// ErrUnavailable: Vault could not be asked; nothing was decided.
	ErrUnavailable = errors.New("re-authentication unavailable")
	// ErrAudit: the audit record of a successful re-authentication could
	// not be written, so no token was issued.
	ErrAudit = errors.New("audit record could not be written")
)

// Error is a refused re-authentication or re-auth token. The caller is
// told only Kind; Reason is for the audit trail and the logs.
type Error struct {
	Kind       error         // ErrRequired, ErrFailed, ErrLocked or ErrHeld
	Reason     string        // e.g. wrong_password, expired, other_subject
	RetryAfter time.Duration // with ErrLocked
	Failures   int           // failed attempts in the window, when counted
	// attemptFailed marks a locked answer to an attempt that itself
	// failed (the one that set the lock): it is also ErrFailed.
	attemptFailed bool
}

func (e *Error) Error() string {
	msg := fmt.Sprintf("reauth: %v (%s)", e.Kind, e.Reason)
	if e.RetryAfter > 0 {
		msg += fmt.Sprintf(", retry after %v", e.RetryAfter)
	}
	return msg
}

// Unwrap lets errors.Is see Kind, and ErrFailed for the locking attempt.
func (e *Error) Unwrap() []error {
	if e.attemptFailed {
		return []error{e.Kind, ErrFailed}
	}
	return []error{e.Kind}
}

func required(reason string) error { return &Error{Kind: ErrRequired, Reason: reason} }

func failed(reason string) *Error { return &Error{Kind: ErrFailed, Reason: reason} }

func heldErr(dailyFailures int) *Error {
	return &Error{Kind: ErrHeld, Reason: "held", Failures: dailyFailures}
}

func locked(d time.Duration) *Error {
	return &Error{Kind: ErrLocked, Reason: "locked", RetryAfter: d}
}

func unavailable(doing string, err error) error {
	return fmt.Errorf("reauth: %s: %w: %w", doing, ErrUnavailable, err)
}
