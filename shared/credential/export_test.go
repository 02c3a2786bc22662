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
	idx, err := s.readIndex(ctx)
	if err != nil {
		return IndexEntry{}, false, err
	}
	e, ok := idx.entries[tenantID]
	return e, ok, nil
}

// IndexPath is the KV path, in Config.IndexMount, of the leaf that holds
// tenantID now.
func (s *Service) IndexPath(tenantID string) string {
	_, leaves, _, _ := s.index.readAll(context.Background())
	return s.index.leafPath(leafOf(leaves, tenantHash(tenantID)))
}

// IndexLeaves is how many leaves the status index has, and the largest
// one's JSON size.
func (s *Service) IndexLeaves(ctx context.Context) (n, largest int, err error) {
	_, leaves, _, err := s.index.readAll(ctx)
	if err != nil {
		return 0, 0, err
	}
	for l := range leaves {
		doc, err := s.index.readLeaf(ctx, l)
		if err != nil {
			return 0, 0, err
		}
		largest = max(largest, doc.size)
	}
	return len(leaves), largest, nil
}

// SetRebuildChunk makes RebuildIndex write chunks of n tenants.
func (s *Service) SetRebuildChunk(n int) { s.testRebuildChunk = n }

// IndexTenant writes tenantID's entry from its record and metadata, as
// the end of every change does.
func (s *Service) IndexTenant(ctx context.Context, tenantID string) error {
	rec, err := s.readRecord(ctx, tenantID)
	if err != nil {
		return err
	}
	md, err := s.cfg.Vault.ReadMetadata(ctx, AdminPath(tenantID))
	if err != nil {
		return err
	}
	s.indexRecord(ctx, tenantID, rec, md.CustomMetadata)
	return nil
}

// WriteIndexEntries writes entries into the status index through the
// writers' path (changeEntries), a batch of ids at a time.
func (s *Service) WriteIndexEntries(ctx context.Context, ids []string, entries map[string]IndexEntry) error {
	return s.changeEntries(ctx, ids, func(id string, e *IndexEntry, _ bool) entryOp {
		*e = entries[id]
		return opPut
	}, false)
}

// RefreshAttention makes the set needing attention and the summary whole
// from the index as it is, as the sweep's last step does.
func (s *Service) RefreshAttention(ctx context.Context) error {
	idx, err := s.readIndex(ctx)
	if err != nil {
		return err
	}
	return s.refreshHot(ctx, idx.entries, s.Now())
}

// ReadIndexSize reads the whole index and says how many entries it holds.
func (s *Service) ReadIndexSize(ctx context.Context) (int, error) {
	idx, err := s.readIndex(ctx)
	return len(idx.entries), err
}

// RangeKey is the rebuild's order of tenantID.
func RangeKey(tenantID string) string { return rangeKey(tenantID) }

// Upstream and ErrorClass are the one mapping of adapter errors to domain
// errors and of domain errors to their audit and failing-mark names.
var (
	Upstream   = upstream
	ErrorClass = errorClass
)
