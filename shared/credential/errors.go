package credential

import "smtp-vault/shared/rotation"

// Domain errors: the rotation engine's, so that one errors.Is works for
// both. The HTTP layer maps each to one status in one place; the message
// after the sentinel is safe to show to the caller.
var (
	ErrInvalidInput = rotation.ErrInvalidInput
	ErrNotFound     = rotation.ErrNotFound
	ErrConflict     = rotation.ErrConflict
	ErrUnavailable  = rotation.ErrUnavailable
	ErrRejected     = rotation.ErrRejected
	ErrAudit        = rotation.ErrAudit
)
