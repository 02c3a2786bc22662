package credential

import "context"

// What the black-box tests (package credential_test) inspect beyond the
// Service's API.

const PasswordField = passwordField

func (s *Service) ReadRecord(ctx context.Context, tenantID string) (*Record, error) {
	return s.readRecord(ctx, tenantID)
}

func (s *Service) Open(ctx context.Context, tenantID, field, sealed, wrapped string) (string, error) {
	return s.open(ctx, tenantID, field, sealed, wrapped)
}

// SetInline changes how many jobs the sweep runs itself, as a smaller
// invocation budget would.
func (s *Service) SetInline(n int) { s.cfg.Inline = n }

// RecordWithoutVersion is r with its KV version cleared, to compare data.
func RecordWithoutVersion(r Record) Record { r.version = 0; return r }
