package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"time"

	"smtp-vault/shared/vault"
)

// The status index: every tenant's place in the rotation cycle, in a few
// KV v2 shards of their own mount (Config.IndexMount), so that the overview
// and the sweep read IndexShards documents instead of one metadata record
// per tenant. It holds nothing secret: what custom_metadata holds, plus
// the username and webmail URL that the overview shows.
//
// The KV data stays authoritative and the index trails it by design:
//   - before a change writes a pending password, its tenant is marked
//     pending in the index, failing closed; so a crash anywhere in the
//     change leaves the tenant pending in the index, and the sweep, which
//     resumes every pending tenant, repairs the entry when it resumes;
//   - after each change, the entry is rewritten from the record (best
//     effort, like custom_metadata);
//   - the sweep adds tenants the index lacks, drops entries with no tenant,
//     and re-reads a slice of the shards every night (IndexRepairSlices);
//     RebuildIndex rewrites it all from metadata.
//
// docs/architecture.md has the arithmetic for 1,000,000 tenants.

// Defaults of the index.
const (
	DefaultIndexMount  = "smtp-index"
	DefaultIndexShards = 16
	// DefaultIndexCacheTTL is how old a read of the index the overview may
	// answer from in the functions (Config.IndexCacheTTL).
	DefaultIndexCacheTTL = 2 * time.Second
	// IndexRepairSlices: the sweep re-reads the metadata of one shard in
	// this many each night, so every entry is checked within a week.
	IndexRepairSlices = 7
	// indexOrphanAge: a pending entry with no tenant behind it is younger
	// than this while its store is still writing the first record.
	indexOrphanAge = time.Hour
	indexCASTries  = 12
)

// IndexEntry is one tenant in the status index. Short JSON names keep a
// shard of a million-tenant index under Vault's entry size.
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

// indexShard is the shard that holds tenantID.
func (s *Service) indexShard(tenantID string) int {
	h := fnv.New32a()
	h.Write([]byte(tenantID))
	return int(h.Sum32() % uint32(s.cfg.IndexShards))
}

// indexPath is a shard's KV path; the shard count is part of it, so a
// change of IndexShards starts a new layout that RebuildIndex fills.
func (s *Service) indexPath(shard int) string {
	return fmt.Sprintf("shards-%d/%04d", s.cfg.IndexShards, shard)
}

// readShard reads one shard and its KV version (0 when it does not exist
// yet). A shard that does not decode reads as empty with ok false: the
// next write replaces it and the sweep refills it.
func (s *Service) readShard(ctx context.Context, shard int) (entries map[string]IndexEntry, version int, ok bool, err error) {
	sec, err := s.cfg.Vault.ReadKV(ctx, s.cfg.IndexMount, s.indexPath(shard))
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return map[string]IndexEntry{}, 0, true, nil
	case err != nil:
		return nil, 0, false, upstream("read the status index", err)
	}
	entries, ok = s.decodeShard(shard, sec.Data["tenants"])
	if !ok {
		s.log.WarnContext(ctx, "status index: a shard does not decode; it is rebuilt", "shard", shard)
	}
	return entries, sec.Version, ok, nil
}

// decodeShard reads a shard's document: a JSON object of entries by
// tenant id. It decodes only if every id is a tenant id that this shard
// holds, since the sweep and the overview take the ids for tenants (and
// paths); otherwise it is empty with ok false. The map is never nil.
func (s *Service) decodeShard(shard int, doc string) (map[string]IndexEntry, bool) {
	var entries map[string]IndexEntry
	if err := json.Unmarshal([]byte(doc), &entries); err != nil || entries == nil {
		return map[string]IndexEntry{}, false
	}
	for id := range entries {
		if ValidateTenantID(id) != nil || s.indexShard(id) != shard {
			return map[string]IndexEntry{}, false
		}
	}
	return entries, true
}

// updateShard applies change to a shard with check-and-set, retrying when
// another writer got there first.
func (s *Service) updateShard(ctx context.Context, shard int, change func(map[string]IndexEntry)) error {
	var err error
	for try := range indexCASTries {
		var (
			entries map[string]IndexEntry
			version int
		)
		if entries, version, _, err = s.readShard(ctx, shard); err != nil {
			return err
		}
		change(entries)
		b, merr := json.Marshal(entries)
		if merr != nil {
			return fmt.Errorf("encode the status index: %w", merr)
		}
		_, err = s.cfg.Vault.WriteKVCAS(ctx, s.cfg.IndexMount, s.indexPath(shard), map[string]string{"tenants": string(b)}, version)
		if !errors.Is(err, vault.ErrCASConflict) {
			break
		}
		// Spread the writers of one shard apart: 1, 2, 4 .. ms, jittered.
		wait := time.Duration(1<<min(try, 6)) * time.Millisecond
		select {
		case <-time.After(wait/2 + rand.N(wait)):
		case <-ctx.Done():
			return upstream("update the status index", ctx.Err())
		}
	}
	if err != nil {
		return upstream("update the status index", err)
	}
	return nil
}

// indexPending marks tenantID pending before its change writes anything:
// the change fails without it (see the comment at the top). An emergency
// reset's incident (compromised) is marked in the same write.
func (s *Service) indexPending(ctx context.Context, tenantID, username, compromised string) error {
	now := FormatTime(s.Now())
	return s.updateShard(ctx, s.indexShard(tenantID), func(m map[string]IndexEntry) {
		e := m[tenantID]
		e.State, e.Updated = StatePending, now
		if e.Username == "" {
			e.Username = username
		}
		if compromised != "" {
			e.Compromised = compromised
		}
		m[tenantID] = e
	})
}

// indexRecord rewrites tenantID's entry from rec and the metadata md just
// written, keeping what only the index and metadata know (the notice).
// Best effort: a failure leaves the entry trailing, and the sweep repairs.
func (s *Service) indexRecord(ctx context.Context, tenantID string, rec *Record, md map[string]string) {
	err := s.updateShard(ctx, s.indexShard(tenantID), func(m map[string]IndexEntry) {
		e := m[tenantID]
		e.fromRecord(rec)
		// A mark stays until a change clears it in md (finishSecret).
		if v, ok := md[MetaCompromised]; ok {
			e.Compromised = v
		}
		if v, ok := md[MetaRotationFailed]; ok {
			e.Failing = v
		}
		e.Updated = ""
		if e.State == StatePending {
			e.Updated = FormatTime(s.Now())
		}
		m[tenantID] = e
	})
	if err != nil {
		s.log.WarnContext(ctx, "update the status index", "tenant_id", tenantID, "error", err)
	}
}

// indexSet changes one entry that exists (the notice, a failure mark);
// best effort like indexRecord.
func (s *Service) indexSet(ctx context.Context, tenantID string, change func(*IndexEntry)) {
	err := s.updateShard(ctx, s.indexShard(tenantID), func(m map[string]IndexEntry) {
		e, ok := m[tenantID]
		if !ok {
			return // the sweep adds it from metadata
		}
		change(&e)
		m[tenantID] = e
	})
	if err != nil {
		s.log.WarnContext(ctx, "update the status index", "tenant_id", tenantID, "error", err)
	}
}

// indexed is every entry of the index, by tenant, and the shards that did
// not decode.
type indexed struct {
	entries map[string]IndexEntry
	shardOf map[string]int
	broken  []int
}

// cachedIndex is readIndex, or its answer of less than
// Config.IndexCacheTTL ago: the overview's read, so that paging through a
// listing reads the shards once. The sweep and the bulk rotation always
// read afresh.
func (s *Service) cachedIndex(ctx context.Context) (indexed, error) {
	if s.cfg.IndexCacheTTL <= 0 {
		return s.readIndex(ctx)
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
	s.cache.idx, s.cache.at = idx, time.Now()
	return idx, nil
}

// readIndex reads every shard, Concurrency at a time. One shard that
// cannot be read fails it: a partial list would hide tenants.
func (s *Service) readIndex(ctx context.Context) (indexed, error) {
	n := s.cfg.IndexShards
	shards := make([]map[string]IndexEntry, n)
	oks := make([]bool, n)
	errs := make([]error, n)
	s.forEach(n, func(i int) { shards[i], _, oks[i], errs[i] = s.readShard(ctx, i) })
	out := indexed{entries: map[string]IndexEntry{}, shardOf: map[string]int{}}
	for i := range n {
		if errs[i] != nil {
			return indexed{}, errs[i]
		}
		if !oks[i] {
			out.broken = append(out.broken, i)
		}
		for id, e := range shards[i] {
			out.entries[id], out.shardOf[id] = e, i
		}
	}
	return out, nil
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

// IndexRepair is what a repair of the status index changed.
type IndexRepair struct {
	Checked int `json:"checked"` // tenants whose metadata was read
	Added   int `json:"added"`   // tenants the index lacked
	Fixed   int `json:"fixed"`   // entries that disagreed with metadata
	Removed int `json:"removed"` // entries with no tenant
	Failed  int `json:"failed"`  // tenants that could not be read
}

// RebuildIndex rewrites every entry of the status index from the tenants'
// metadata and records: the operator's repair after a restore or when the
// shard count changes (scripts/index-rebuild), and the test of the
// sweep's repair. Entries of tenants that no longer exist are dropped.
func (s *Service) RebuildIndex(ctx context.Context) (IndexRepair, error) {
	_, rep, err := s.repairIndex(ctx, func(int) bool { return true }, true)
	return rep, err
}

// repairIndex brings the index in line with KV: every tenant is listed
// (one LIST), tenants missing from the index and every tenant of a shard
// that recheck selects (or that did not decode) are re-read from
// metadata, and with records their KV data too (never decrypted), and
// entries with no tenant behind them are dropped. It returns the index as
// repaired.
func (s *Service) repairIndex(ctx context.Context, recheck func(shard int) bool, records bool) (indexed, IndexRepair, error) {
	var rep IndexRepair
	idx, err := s.readIndex(ctx)
	if err != nil {
		return indexed{}, rep, err
	}
	ids, err := s.tenantIDs(ctx)
	if err != nil {
		return indexed{}, rep, err
	}
	broken := map[int]bool{}
	for _, b := range idx.broken {
		broken[b] = true
	}
	exists := make(map[string]bool, len(ids))
	var read []string
	for _, id := range ids {
		exists[id] = true
		if _, ok := idx.entries[id]; !ok || broken[s.indexShard(id)] || recheck(s.indexShard(id)) {
			read = append(read, id)
		}
	}
	fresh := make([]*IndexEntry, len(read))
	failed := make([]bool, len(read))
	now := s.Now()
	s.forEach(len(read), func(i int) {
		md, err := s.cfg.Vault.ReadMetadata(ctx, AdminPath(read[i]))
		if errors.Is(err, vault.ErrNotFound) {
			return // a folder with no admin record: not a tenant
		}
		var rec *Record
		if err == nil && records {
			rec, err = s.readRecord(ctx, read[i])
		}
		if err != nil {
			failed[i] = true
			return
		}
		e := indexEntryFrom(md.CustomMetadata, rec, idx.entries[read[i]], now)
		fresh[i] = &e
	})
	changes := map[int]map[string]*IndexEntry{} // shard -> tenant -> entry (nil: remove)
	put := func(id string, e *IndexEntry) {
		sh := s.indexShard(id)
		if changes[sh] == nil {
			changes[sh] = map[string]*IndexEntry{}
		}
		changes[sh][id] = e
	}
	for i, id := range read {
		rep.Checked++
		old, had := idx.entries[id]
		switch {
		case failed[i]:
			rep.Failed++
		case fresh[i] == nil:
		case !had:
			rep.Added++
			put(id, fresh[i])
		case !sameEntry(old, *fresh[i]):
			rep.Fixed++
			put(id, fresh[i])
		}
	}
	for id, e := range idx.entries {
		if exists[id] {
			continue
		}
		if upd, err := time.Parse(time.RFC3339, e.Updated); err == nil && e.State == StatePending && now.Sub(upd) < indexOrphanAge {
			continue // its store is writing the first record
		}
		rep.Removed++
		put(id, nil)
	}
	shards := make([]int, 0, len(changes))
	for sh := range changes {
		shards = append(shards, sh)
	}
	errs := make([]error, len(shards))
	s.forEach(len(shards), func(i int) {
		errs[i] = s.updateShard(ctx, shards[i], func(m map[string]IndexEntry) {
			for id, e := range changes[shards[i]] {
				if e == nil {
					delete(m, id)
				} else {
					m[id] = *e
				}
			}
		})
	})
	if err := errors.Join(errs...); err != nil {
		return indexed{}, rep, err
	}
	for _, m := range changes {
		for id, e := range m {
			if e == nil {
				delete(idx.entries, id)
			} else {
				idx.entries[id] = *e
			}
		}
	}
	return idx, rep, nil
}

// sameEntry compares what the overview and sweep decide with.
func sameEntry(a, b IndexEntry) bool {
	a.Updated, b.Updated = "", ""
	return a == b
}

// repairSlice is the nightly share of shards whose every entry the sweep
// re-reads: the shards whose number matches the day, modulo
// IndexRepairSlices.
func repairSlice(now time.Time) func(shard int) bool {
	day := int(now.Unix() / 86400)
	return func(shard int) bool { return shard%IndexRepairSlices == day%IndexRepairSlices }
}

// failureMark is the MetaRotationFailed value of a failed rotation.
func failureMark(now time.Time, class string) string {
	return FormatTime(now) + " " + class
}
