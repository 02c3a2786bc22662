package credential

import "errors"

// Domain errors. The HTTP layer maps each to one status in one place; the
// message after the sentinel is safe to show to the caller.
var (
	ErrInvalidInput = errors.New("invalid input")
	ErrNotFound     = errors.New("credential not found")
	ErrConflict     = errors.New("conflicting change in progress")
	ErrUnavailable  = errors.New("upstream unavailable")
	ErrRejected     = errors.New("rejected by MailU")
	ErrAudit        = errors.New("audit record could not be written")
)
