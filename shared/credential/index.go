package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"smtp-vault/shared/vault"
)

// The status index: every tenant's place in the rotation cycle, in leaves
// of their own KV v2 mount (Config.IndexMount) that split by themselves
// as the platform grows (shards.go), so that the sweep reads a few hundred
// documents instead of one metadata record per tenant, and beside it the
// set of tenants that need attention (overdue, due soon, compromised,
// failing), from which the overview answers its first pages without
// reading the index whole. It holds nothing secret: what custom_metadata
// holds, plus the username and webmail URL that the overview shows.
//
// The KV data stays authoritative and the index trails it by design:
//   - before a change writes a pending password, its tenant is marked
//     pending in the index, failing closed; so a crash anywhere in the
//     change leaves the tenant pending in the index, and the sweep, which
//     resumes every pending tenant, repairs the entry when it resumes;
//   - after each change, the entry is rewritten from the record (best
//     effort, like custom_metadata);
//   - the sweep adds tenants the index lacks, drops entries with no
//     tenant, re-reads a rolling range from metadata each night within
//     Config.RepairBudget, and refreshes the set needing attention;
//     RebuildIndex rewrites it all from metadata, in ranges that resume
//     across invocations (rebuild.go).
//
// docs/architecture.md has the arithmetic for 1,000,000 tenants.

// Defaults of the index.
const (
	DefaultIndexMount = "smtp-index"
	// DefaultLegacyIndexShards is the shard count of an index written
	// before leaves split, unless INDEX_SHARDS said otherwise.
	DefaultLegacyIndexShards = 16
	// DefaultIndexCacheTTL is how old a read of the index the overview may
	// answer from in the functions (Config.IndexCacheTTL).
	DefaultIndexCacheTTL = 2 * time.Second
	// indexOrphanAge: a pending entry with no tenant behind it is younger
	// than this while its store is still writing the first record; a
	// marker of a tenant gone from the set needing attention is kept as
	// long, so that a late write of an older state cannot bring it back.
	indexOrphanAge = time.Hour
	indexCASTries  = 12
)

// IndexEntry is one tenant in the status index. Short JSON names keep
// leaves small.
type IndexEntry struct {
	LastRotated string `json:"r,omitempty"` // RFC 3339, as in the record
	State       string `json:"s,omitempty"` // StateCurrent or StatePending
	Compromised string `json:"c,omitempty"` // the incident, when marked
	// Failing is when the last rotation failed, and its error class, until
	// a change succeeds: "2026-01-02T03:04:05Z unavailable".
	Failing    string `json:"f,omitempty"`
	NoticeFor  string `json:"n,omitempty"`
	Username   string `json:"u,omitempty"`
	WebmailURL string `json:"w,omitempty"`
	// Updated is when a pending entry was written: one of a tenant with
	// no record yet is kept for indexOrphanAge. Empty once current, to
	// keep entries small.
	Updated string `json:"t,omitempty"`
	// Q counts the entry's writes: in the set needing attention, a write
	// never replaces one of a higher Q.
	Q int `json:"q,omitempty"`
	// Gone, in the set needing attention only, marks a tenant that left
	// it (when); its Q stays, to refuse late writes of older states.
	Gone string `json:"g,omitempty"`
}

// status is the entry as the sweep and the overview decide with it.
func (e IndexEntry) status(tenantID string) Status {
	last, _ := time.Parse(time.RFC3339, e.LastRotated)
	return Status{TenantID: tenantID, LastRotated: last, State: e.State, NoticeFor: e.NoticeFor, Compromised: e.Compromised != ""}
}

// fromRecord sets what the record is authoritative for: the cycle, the
// endpoints, and a compromise mark it holds (one it does not hold is kept).
func (e *IndexEntry) fromRecord(rec *Record) {
	e.LastRotated, e.State, e.Username, e.WebmailURL = rec.LastRotated, StateCurrent, rec.Username, rec.WebmailURL
	if rec.Pending() {
		e.State = StatePending
	}
	if e.Username == "" {
		e.Username = rec.PendingUsername
	}
	if rec.CompromisedIncident != "" {
		e.Compromised = rec.CompromisedIncident
	}
}

// indexEntryFrom is the entry of a tenant from its custom_metadata (the
// sweep's repair, which reads no KV data) or, when rec is given, from its
// record, authoritative for the cycle and the endpoints (RebuildIndex).
// What neither names is kept from old.
func indexEntryFrom(md map[string]string, rec *Record, old IndexEntry, now time.Time) IndexEntry {
	e := IndexEntry{LastRotated: md[MetaLastRotated], State: md[MetaState], Compromised: md[MetaCompromised],
		Failing: md[MetaRotationFailed], NoticeFor: md[MetaNoticeFor],
		Username: md[MetaUsername], WebmailURL: md[MetaWebmailURL], Updated: FormatTime(now)}
	if rec != nil {
		e.fromRecord(rec)
		if c := md[MetaCompromised]; c != "" {
			e.Compromised = c // the metadata's mark is the newer one
		}
	}
	if e.Username == "" {
		e.Username = old.Username
	}
	if e.WebmailURL == "" {
		e.WebmailURL = old.WebmailURL
	}
	if e.State != StatePending {
		e.Updated = ""
	}
	return e
}

// hotHorizon: the overview's set needing attention holds every tenant
// due within this of when its entry was last written or the sweep last
// ran, so that it holds every overdue and due-soon tenant for
// hotHorizon - NoticeAhead (two days) after a sweep.
const hotHorizon = NoticeAhead + 2*24*time.Hour

// hot reports whether e belongs in the set needing attention at now:
// compromised, failing, of unknown age, or due within hotHorizon.
func (e IndexEntry) hot(now time.Time) bool {
	if e.Compromised != "" || e.Failing != "" {
		return true
	}
	last, err := time.Parse(time.RFC3339, e.LastRotated)
	return err != nil || last.IsZero() || !last.Add(RotationInterval).After(now.Add(hotHorizon))
}

// legacyShards reads an index written before leaves split: the
// LegacyIndexShards documents shards-<N>/<i>.
func (s *Service) legacyShards(ctx context.Context) (map[string]IndexEntry, error) {
	n := s.cfg.LegacyIndexShards
	parts := make([]map[string]IndexEntry, n)
	errs := make([]error, n)
	s.forEach(n, func(i int) {
		sec, err := s.cfg.Vault.ReadKV(ctx, s.cfg.IndexMount, fmt.Sprintf("shards-%d/%04d", n, i))
		switch {
		case errors.Is(err, vault.ErrNotFound):
		case err != nil:
			errs[i] = upstream("read the status index", err)
		default:
			// One that does not decode, or holds what is not a tenant of
			// it, is left out: the sweep refills it.
			var m map[string]IndexEntry
			if json.Unmarshal([]byte(sec.Data["tenants"]), &m) == nil {
				for id := range m {
					if ValidateTenantID(id) != nil || int(tenantHash(id)%uint32(n)) != i {
						return
					}
				}
				parts[i] = m
			}
		}
	})
	out := map[string]IndexEntry{}
	for _, p := range parts {
		for id, e := range p {
			out[id] = e
		}
	}
	return out, errors.Join(errs...)
}

// An entry change: given a tenant's entry (and whether it exists), what
// to do with it.
type entryOp int

const (
	opKeep entryOp = iota
	opPut
	opDelete
)

// changeEntries applies change to the entries of ids in the status index,
// then brings the set needing attention in line with each changed entry.
// Every written entry's Q goes up by one, so that of two writes of the
// set needing attention, the older never replaces the newer. An error
// means the index may not have changed; one of the set is logged only
// when best is set, and returned otherwise.
func (s *Service) changeEntries(ctx context.Context, ids []string, change func(id string, e *IndexEntry, exists bool) entryOp, best bool) error {
	type diff struct {
		old, new      IndexEntry
		had, gone, ch bool
	}
	var mu sync.Mutex
	diffs := make(map[string]*diff, len(ids))
	err := s.index.update(ctx, ids, func(m map[string]IndexEntry, ids []string) {
		for _, id := range ids {
			e, ok := m[id]
			d := &diff{old: e, had: ok}
			switch change(id, &e, ok) {
			case opPut:
				e.Q = d.old.Q + 1
				m[id], d.new, d.ch = e, e, true
			case opDelete:
				if ok {
					delete(m, id)
					d.new, d.gone, d.ch = IndexEntry{Q: d.old.Q + 1}, true, true
				}
			}
			mu.Lock()
			diffs[id] = d
			mu.Unlock()
		}
	})
	if err != nil {
		return err
	}
	now := s.Now()
	var hotIDs []string
	added := 0
	for id, d := range diffs {
		if !d.ch {
			continue
		}
		if !d.had {
			added++
		}
		if (d.had && d.old.hot(now)) || (!d.gone && d.new.hot(now)) {
			hotIDs = append(hotIDs, id)
		}
	}
	if len(hotIDs) > 0 {
		stamp := FormatTime(now)
		err = s.hot.update(ctx, hotIDs, func(m map[string]IndexEntry, ids []string) {
			for _, id := range ids {
				d := diffs[id]
				if cur, ok := m[id]; ok && cur.Q > d.new.Q {
					continue // a later change got there first
				}
				if !d.gone && d.new.hot(now) {
					m[id] = d.new
				} else {
					m[id] = IndexEntry{Q: d.new.Q, Gone: stamp}
				}
			}
		})
		if err != nil && best {
			s.log.WarnContext(ctx, "update the status index's set needing attention", "tenants", len(hotIDs), "error", err)
			err = nil
		}
	}
	if added > 0 {
		s.countTenants(ctx, added)
	}
	return err
}

// indexPending marks tenantID pending before its change writes anything:
// the change fails without it (see the comment at the top). An emergency
// reset's incident (compromised) is marked in the same write.
func (s *Service) indexPending(ctx context.Context, tenantID, username, compromised string) error {
	now := FormatTime(s.Now())
	return s.changeEntries(ctx, []string{tenantID}, func(_ string, e *IndexEntry, _ bool) entryOp {
		e.State, e.Updated = StatePending, now
		if e.Username == "" {
			e.Username = username
		}
		if compromised != "" {
			e.Compromised = compromised
		}
		return opPut
	}, false)
}

// indexRecord rewrites tenantID's entry from rec and the metadata md just
// written, keeping what only the index and metadata know (the notice).
// Best effort: a failure leaves the entry trailing, and the sweep repairs.
func (s *Service) indexRecord(ctx context.Context, tenantID string, rec *Record, md map[string]string) {
	r := *rec
	compromised, markCompromised := md[MetaCompromised]
	failing, markFailing := md[MetaRotationFailed]
	updated := ""
	if r.Pending() {
		updated = FormatTime(s.Now())
	}
	change := func(e *IndexEntry) {
		e.fromRecord(&r)
		// A mark stays until a change clears it in md (finishSecret).
		if markCompromised {
			e.Compromised = compromised
		}
		if markFailing {
			e.Failing = failing
		}
		e.Updated = ""
		if e.State == StatePending {
			e.Updated = updated
		}
	}
	if rec.indexMarked {
		rec.index.keep(ctx, tenantID, change)
		return
	}
	err := s.changeEntries(ctx, []string{tenantID}, func(_ string, e *IndexEntry, _ bool) entryOp {
		change(e)
		return opPut
	}, true)
	if err != nil {
		s.log.WarnContext(ctx, "update the status index", "tenant_id", tenantID, "error", err)
	}
}

// indexSet changes one entry that exists (the notice, a failure mark);
// best effort like indexRecord.
func (s *Service) indexSet(ctx context.Context, tenantID string, change func(*IndexEntry)) {
	err := s.changeEntries(ctx, []string{tenantID}, func(_ string, e *IndexEntry, ok bool) entryOp {
		if !ok {
			return opKeep // the sweep adds it from metadata
		}
		change(e)
		return opPut
	}, true)
	if err != nil {
		s.log.WarnContext(ctx, "update the status index", "tenant_id", tenantID, "error", err)
	}
}

// indexed is every entry of the index, by tenant, and the leaves that did
// not decode.
type indexed struct {
	entries map[string]IndexEntry
	leaves  map[leafID]bool
	broken  []leafID
	list    []*listed // entries in listing order: the overview's reads only
}

// cachedIndex is readIndex, or its answer of less than
// Config.IndexCacheTTL ago: the overview's read, so that paging through a
// listing reads the leaves once. The sweep and the bulk rotation always
// read afresh.
func (s *Service) cachedIndex(ctx context.Context) (indexed, error) {
	if s.cfg.IndexCacheTTL <= 0 {
		idx, err := s.readIndex(ctx)
		idx.list = listing(idx.entries)
		return idx, err
	}
	s.cache.Lock()
	defer s.cache.Unlock() // one reader fills it; the others wait for that read
	if s.cache.idx.entries != nil && time.Since(s.cache.at) < s.cfg.IndexCacheTTL {
		return s.cache.idx, nil
	}
	idx, err := s.readIndex(ctx)
	if err != nil {
		return indexed{}, err
	}
	idx.list = listing(idx.entries)
	s.cache.idx, s.cache.at = idx, time.Now()
	return idx, nil
}

// readIndex reads every leaf, Concurrency at a time.
func (s *Service) readIndex(ctx context.Context) (indexed, error) {
	entries, leaves, broken, err := s.index.readAll(ctx)
	if err != nil {
		return indexed{}, err
	}
	return indexed{entries: entries, leaves: leaves, broken: broken}, nil
}

// sorted is the index's statuses in tenant order.
func (x indexed) sorted() []Status {
	out := make([]Status, 0, len(x.entries))
	for id, e := range x.entries {
		out = append(out, e.status(id))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TenantID < out[j].TenantID })
	return out
}

// failureMark is the MetaRotationFailed value of a failed rotation.
func failureMark(now time.Time, class string) string {
	return FormatTime(now) + " " + class
}
