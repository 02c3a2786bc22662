package mailu

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Every error this package returns wraps one of them (and,
// for timeouts, the context error too), so callers decide with errors.Is and
// never parse MailU's message text.
var (
	// ErrNotFound: MailU answered 404, no such user or domain.
	ErrNotFound = errors.New("mailu: not found")
	// ErrConflict: MailU answered 409, the user already exists or the
	// domain is full.
	ErrConflict = errors.New("mailu: conflict")
	// ErrUnauthorized: MailU answered 401 (no token) or 403 (wrong token).
	ErrUnauthorized = errors.New("mailu: unauthorized")
	// ErrRejected: MailU refused the request as malformed (any other 4xx).
	ErrRejected = errors.New("mailu: request rejected")
	// ErrUnavailable: MailU could not be reached or could not answer now
	// (5xx, 408, 429, refused connection, timeout, cancelled context,
	// temporary SMTP failure). Retrying later may succeed.
	ErrUnavailable = errors.New("mailu: unavailable")
	// ErrAuthFailed: the SMTP server rejected the credentials (535).
	ErrAuthFailed = errors.New("mailu: SMTP authentication failed")
)

// APIError is a non-2xx answer of MailU's admin API. It unwraps to the
// sentinel that matches its status.
type APIError struct {
	Status  int    // HTTP status
	Code    int    // "code" of MailU's JSON body, or Status when the body has none
	Message string // "message" of the body (plus field errors), or the status text
}

func (e *APIError) Error() string {
	return fmt.Sprintf("MailU answered %d: %s", e.Status, e.Message)
}

// Unwrap maps the status to a sentinel. 408 and 429 are "try later" (MailU
// rate-limits an IP after failed token checks), not a verdict on the request.
func (e *APIError) Unwrap() error {
	switch {
	case e.Status == http.StatusNotFound:
		return ErrNotFound
	case e.Status == http.StatusConflict:
		return ErrConflict
	case e.Status == http.StatusUnauthorized, e.Status == http.StatusForbidden:
		return ErrUnauthorized
	case e.Status == http.StatusRequestTimeout, e.Status == http.StatusTooManyRequests, e.Status >= 500:
		return ErrUnavailable
	default:
		return ErrRejected
	}
}
