package vault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// Sentinel errors. Every error returned by this package wraps one of them
// (or a context error), so callers decide with errors.Is and never parse
// Vault's message text.
var (
	ErrNotFound    = errors.New("vault: not found")
	ErrCASConflict = errors.New("vault: check-and-set version mismatch")
	ErrSealed      = errors.New("vault: sealed")
	ErrForbidden   = errors.New("vault: permission denied")
	ErrUnavailable = errors.New("vault: unavailable")
	ErrBadRequest  = errors.New("vault: request rejected")
	// ErrInvalidCredentials: a login or an MFA validation refused what it
	// was given (wrong username or password, a user Vault has locked out,
	// a wrong or reused one-time code).
	ErrInvalidCredentials = errors.New("vault: invalid credentials")
)

// classify turns an error from the vault/api client into one of the
// sentinels above. op names what was being done, for the message; Vault's
// own error text is kept because it never contains request bodies.
func classify(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("vault: %s: %w: %w", op, ErrUnavailable, err)
	}
	if errors.Is(err, vaultapi.ErrSecretNotFound) {
		return fmt.Errorf("vault: %s: %w", op, ErrNotFound)
	}
	var re *vaultapi.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		switch {
		case re.StatusCode == http.StatusServiceUnavailable && strings.Contains(msg, "sealed"):
			return fmt.Errorf("vault: %s: %w", op, ErrSealed)
		case re.StatusCode == http.StatusNotFound:
			return fmt.Errorf("vault: %s: %w", op, ErrNotFound)
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("vault: %s: %w", op, ErrForbidden)
		case re.StatusCode == http.StatusBadRequest && strings.Contains(msg, "check-and-set"):
			return fmt.Errorf("vault: %s: %w", op, ErrCASConflict)
		case re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("vault: %s: %w: status %d: %s", op, ErrUnavailable, re.StatusCode, msg)
		default:
			return fmt.Errorf("vault: %s: %w: status %d: %s", op, ErrBadRequest, re.StatusCode, msg)
		}
	}
	var ne net.Error
	var ue *url.Error
	if errors.As(err, &ne) || errors.As(err, &ue) {
		return fmt.Errorf("vault: %s: %w: %w", op, ErrUnavailable, err)
	}
	return fmt.Errorf("vault: %s: %w: %w", op, ErrUnavailable, err)
}
