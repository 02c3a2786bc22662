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

// IndexEntryOf is tenantID's entry in the status index.
func (s *Service) IndexEntryOf(ctx context.Context, tenantID string) (IndexEntry, bool, error) {
	m, _, _, err := s.readShard(ctx, s.indexShard(tenantID))
	if err != nil {
		return IndexEntry{}, false, err
	}
	e, ok := m[tenantID]
	return e, ok, nil
}

// IndexPath is the KV path, in Config.IndexMount, of tenantID's shard.
func (s *Service) IndexPath(tenantID string) string { return s.indexPath(s.indexShard(tenantID)) }

// Upstream and ErrorClass are the one mapping of adapter errors to domain
// errors and of domain errors to their audit and failing-mark names.
var (
	Upstream   = upstream
	ErrorClass = errorClass
)
