package credential_test

import (
	"errors"
	"fmt"
	"testing"

	"smtp-vault/shared/credential"
)

func TestCode(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{credential.ErrNotFound, "not_found"},
		{fmt.Errorf("read: %w", credential.ErrConflict), "conflict"},
		{fmt.Errorf("%w: tenant_id must be a UUID", credential.ErrInvalidInput), "invalid_request"},
		// The specific error wins over the general one beside it.
		{fmt.Errorf("%w: %w; the stored token is only ever sent to x", credential.ErrInvalidInput, credential.ErrTokenRequired), "mailu_api_token_required"},
		{fmt.Errorf("%w: bad host", credential.ErrEndpointNotAllowed), "endpoint_not_allowed"},
		{&credential.CooldownError{}, "rotation_cooldown"},
		{credential.ErrTrailUnreadable, "audit_unavailable"},
		{errors.New("dial tcp: connection refused"), "upstream_unavailable"},
		{fmt.Errorf("%w: vault sealed", credential.ErrUnavailable), "upstream_unavailable"},
	}
	for _, tt := range tests {
		if got := credential.Code(tt.err); got != tt.want {
			t.Errorf("Code(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
