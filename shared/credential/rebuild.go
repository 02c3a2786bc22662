package credential

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"sync"
	"time"

	"smtp-vault/shared/vault"
)

// Repairs of the status index: the sweep's nightly one, and RebuildIndex,
// which rewrites every entry from the tenants' metadata and records in
// ranges that resume across invocations.

const (
	// DefaultRebuildBudget is one invocation's share of a rebuild: the
	// next invocation goes on from the progress record.
	DefaultRebuildBudget = 50 * time.Second
	// DefaultRepairBudget bounds the sweep's nightly re-reading of
	// tenants' metadata in a rolling range: a seventh of the tenants
	// (IndexRepairNights), so every entry is checked weekly, while that
	// fits (up to about 35,000 tenants here), then what this allows.
	DefaultRepairBudget = 5 * time.Second
	IndexRepairNights   = 7
	// rebuildChunk tenants (in leaf order, rangeKey) are read and written
	// between two progress records.
	rebuildChunk = 1000
)

// IndexRepair is what a repair of the status index changed.
type IndexRepair struct {
	Checked int `json:"checked"` // tenants whose metadata was read
	Added   int `json:"added"`   // tenants the index lacked
	Fixed   int `json:"fixed"`   // entries that disagreed with metadata
	Removed int `json:"removed"` // entries with no tenant
	Failed  int `json:"failed"`  // tenants that could not be read
	// A rebuild's progress: Done once every range is written; Remaining
	// tenants are left for the next invocation.
	Done      bool `json:"done,omitempty"`
	Remaining int  `json:"remaining,omitempty"`
}

// sameEntry compares what the overview and sweep decide with.
func sameEntry(a, b IndexEntry) bool {
	a.Updated, b.Updated, a.Q, b.Q, a.Gone, b.Gone = "", "", 0, 0, "", ""
	return a == b
}

// tenantsByRange is every tenant in the order of the index's leaves.
func (s *Service) tenantsByRange(ctx context.Context) ([]string, error) {
	ids, err := s.tenantIDs(ctx)
	if err != nil {
		return nil, err
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = rangeKey(id)
	}
	sort.Strings(keys)
	return keys, nil
}

func idOfKey(k string) string { return k[9:] }

// reread re-reads the metadata (and with records, the KV data, never
// decrypted) of ids and rewrites the entries that disagree or are
// missing, counting into rep.
func (s *Service) reread(ctx context.Context, ids []string, records bool, rep *IndexRepair) error {
	fresh := make([]*IndexEntry, len(ids))
	mds := make([]map[string]string, len(ids))
	recs := make([]*Record, len(ids))
	failed := make([]bool, len(ids))
	s.forEach(len(ids), func(i int) {
		md, err := s.cfg.Vault.ReadMetadata(ctx, AdminPath(ids[i]))
		if errors.Is(err, vault.ErrNotFound) {
			return // a folder with no admin record: not a tenant
		}
		if err == nil && records {
			recs[i], err = s.readRecord(ctx, ids[i])
		}
		if err != nil {
			failed[i] = true
			return
		}
		mds[i] = md.CustomMetadata
		fresh[i] = &IndexEntry{}
	})
	pos := make(map[string]int, len(ids))
	var write []string
	for i, id := range ids {
		rep.Checked++
		switch {
		case failed[i]:
			rep.Failed++
		case fresh[i] != nil:
			pos[id] = i
			write = append(write, id)
		}
	}
	now := s.Now()
	var (
		mu     sync.Mutex
		result = map[string]string{} // tenant -> added, fixed (the last try's)
	)
	err := s.changeEntries(ctx, write, func(id string, e *IndexEntry, ok bool) entryOp {
		i := pos[id]
		n := indexEntryFrom(mds[i], recs[i], *e, now)
		verdict := ""
		switch {
		case !ok:
			verdict = "added"
		case !sameEntry(*e, n):
			verdict = "fixed"
		}
		mu.Lock()
		result[id] = verdict
		mu.Unlock()
		if verdict == "" {
			return opKeep
		}
		*e = n
		return opPut
	}, true)
	for _, v := range result {
		switch v {
		case "added":
			rep.Added++
		case "fixed":
			rep.Fixed++
		}
	}
	return err
}

// dropOrphans removes the entries of idx that no tenant in exists
// stands behind, but a young pending one (a store writing its first
// record), and returns the index without them.
func (s *Service) dropOrphans(ctx context.Context, entries map[string]IndexEntry, exists map[string]bool, rep *IndexRepair) error {
	now := s.Now()
	var gone []string
	for id, e := range entries {
		if exists[id] {
			continue
		}
		if upd, err := time.Parse(time.RFC3339, e.Updated); err == nil && e.State == StatePending && now.Sub(upd) < indexOrphanAge {
			continue
		}
		gone = append(gone, id)
	}
	if len(gone) == 0 {
		return nil
	}
	err := s.changeEntries(ctx, gone, func(id string, e *IndexEntry, ok bool) entryOp {
		if !ok {
			return opKeep
		}
		if upd, err := time.Parse(time.RFC3339, e.Updated); err == nil && e.State == StatePending && now.Sub(upd) < indexOrphanAge {
			return opKeep // it became a store's first write since the read
		}
		return opDelete
	}, true)
	if err == nil {
		rep.Removed += len(gone)
		for _, id := range gone {
			delete(entries, id)
		}
	}
	return err
}

// repairIndex is the sweep's repair: one LIST finds the tenants the index
// lacks (added from metadata) and entries with no tenant (dropped); the
// tenants of a leaf that did not decode are re-read; then, within
// Config.RepairBudget, the next range of tenants (a cursor in the
// "repair" document, wrapping around), a seventh of the tenants, is
// re-read from metadata. The set
// needing attention and the summary are made whole from the result. It
// reads no KV data and returns the index as repaired.
func (s *Service) repairIndex(ctx context.Context) (indexed, IndexRepair, error) {
	var rep IndexRepair
	idx, err := s.readIndex(ctx)
	if err != nil {
		return indexed{}, rep, err
	}
	s.index.saveLayout(ctx, idx.leaves)
	keys, err := s.tenantsByRange(ctx)
	if err != nil {
		return indexed{}, rep, err
	}
	broken := map[leafID]bool{}
	for _, b := range idx.broken {
		broken[b] = true
	}
	exists := make(map[string]bool, len(keys))
	var read []string
	for _, k := range keys {
		id := idOfKey(k)
		exists[id] = true
		if _, ok := idx.entries[id]; !ok || broken[leafOf(idx.leaves, tenantHash(id))] {
			read = append(read, id)
		}
	}
	if err := s.reread(ctx, read, false, &rep); err != nil {
		return indexed{}, rep, err
	}
	if err := s.dropOrphans(ctx, idx.entries, exists, &rep); err != nil {
		return indexed{}, rep, err
	}
	// The rolling range, a chunk at a time while the budget lasts.
	cursor, version, err := s.readCursor(ctx, "repair")
	if err != nil {
		return indexed{}, rep, err
	}
	at := sort.SearchStrings(keys, cursor)
	if at < len(keys) && keys[at] == cursor {
		at++
	}
	share := (len(keys) + IndexRepairNights - 1) / IndexRepairNights
	rolling := time.Now()
	for done := 0; done < share && time.Since(rolling) < s.cfg.RepairBudget && !s.outOfTime(ctx); {
		if at >= len(keys) {
			at = 0
		}
		end := min(at+rebuildChunk/4, at+share-done, len(keys))
		ids := make([]string, 0, end-at)
		for _, k := range keys[at:end] {
			ids = append(ids, idOfKey(k))
		}
		if err := s.reread(ctx, ids, false, &rep); err != nil {
			return indexed{}, rep, err
		}
		done += end - at
		at, cursor = end, keys[end-1]
	}
	if _, err := s.writeCursor(ctx, "repair", cursor, version); err != nil && !errors.Is(err, vault.ErrCASConflict) {
		s.log.WarnContext(ctx, "status index: record the repair's range", "error", err)
	}
	// The entries as they now are, for the sweep's decisions and the set
	// needing attention.
	if rep.Added+rep.Fixed+rep.Removed > 0 {
		if idx, err = s.readIndex(ctx); err != nil {
			return indexed{}, rep, err
		}
	}
	if err := s.refreshHot(ctx, idx.entries, s.Now()); err != nil {
		s.log.WarnContext(ctx, "status index: refresh the set needing attention", "error", err)
	}
	return idx, rep, nil
}

func (s *Service) readCursor(ctx context.Context, name string) (string, int, error) {
	sec, err := s.cfg.Vault.ReadKV(ctx, s.cfg.IndexMount, "progress/"+name)
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return "", 0, nil
	case err != nil:
		return "", 0, upstream("read the status index's progress", err)
	}
	return sec.Data["cursor"], sec.Version, nil
}

func (s *Service) writeCursor(ctx context.Context, name, cursor string, version int) (int, error) {
	return s.cfg.Vault.WriteKVCAS(ctx, s.cfg.IndexMount, "progress/"+name, map[string]string{"cursor": cursor}, version)
}

// rebuildProgress is the "rebuild" progress record: where the running
// rebuild is (the last tenant written, in rangeKey order) and its counts.
type rebuildProgress struct {
	Cursor string
	Rep    IndexRepair
}

func (s *Service) readRebuild(ctx context.Context) (rebuildProgress, int, error) {
	sec, err := s.cfg.Vault.ReadKV(ctx, s.cfg.IndexMount, "progress/rebuild")
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return rebuildProgress{Rep: IndexRepair{Done: true}}, 0, nil
	case err != nil:
		return rebuildProgress{}, 0, upstream("read the status index's progress", err)
	}
	n := func(k string) int { v, _ := strconv.Atoi(sec.Data[k]); return v }
	return rebuildProgress{Cursor: sec.Data["cursor"], Rep: IndexRepair{Checked: n("checked"), Added: n("added"), Fixed: n("fixed"),
		Removed: n("removed"), Failed: n("failed"), Done: sec.Data["done"] == "true"}}, sec.Version, nil
}

func (s *Service) writeRebuild(ctx context.Context, p rebuildProgress, version int) (int, error) {
	return s.cfg.Vault.WriteKVCAS(ctx, s.cfg.IndexMount, "progress/rebuild", map[string]string{
		"cursor": p.Cursor, "checked": strconv.Itoa(p.Rep.Checked), "added": strconv.Itoa(p.Rep.Added), "fixed": strconv.Itoa(p.Rep.Fixed),
		"removed": strconv.Itoa(p.Rep.Removed), "failed": strconv.Itoa(p.Rep.Failed), "done": strconv.FormatBool(p.Rep.Done),
	}, version)
}

// RebuildIndex rewrites every entry of the status index from the tenants'
// metadata and records: the operator's repair after a restore
// (rotate-sweep {"action": "rebuild-index"}, docs/runbook.md).
// It works through the tenants in leaf order, a chunk at a time, and
// records after each chunk where it is ("progress/rebuild"), for at most
// Config.RebuildBudget (and never past the invocation's deadline); the
// next call goes on from there until Done, and then drops the entries
// with no tenant and makes the set needing attention whole. A call that
// dies half-way through a chunk leaves the record before it: the next
// call writes that chunk again (each write sets entries to what KV says,
// so a repeat is harmless). A call after Done starts a new rebuild.
func (s *Service) RebuildIndex(ctx context.Context) (IndexRepair, error) {
	start := time.Now()
	p, version, err := s.readRebuild(ctx)
	if err != nil {
		return IndexRepair{}, err
	}
	if p.Rep.Done {
		p = rebuildProgress{}
		if version, err = s.writeRebuild(ctx, p, version); err != nil {
			return IndexRepair{}, upstream("start the status index rebuild", err)
		}
	}
	keys, err := s.tenantsByRange(ctx)
	if err != nil {
		return p.Rep, err
	}
	at := sort.SearchStrings(keys, p.Cursor)
	if at < len(keys) && keys[at] == p.Cursor {
		at++
	}
	if p.Cursor == "" {
		at = 0
	}
	for chunks := 0; at < len(keys); chunks++ {
		if chunks > 0 && (time.Since(start) >= s.cfg.RebuildBudget || s.outOfTime(ctx)) {
			p.Rep.Remaining = len(keys) - at
			return p.Rep, nil
		}
		end := min(at+s.rebuildChunk(), len(keys))
		ids := make([]string, 0, end-at)
		for _, k := range keys[at:end] {
			ids = append(ids, idOfKey(k))
		}
		next := p
		if err := s.reread(ctx, ids, true, &next.Rep); err != nil {
			return p.Rep, err
		}
		if err := ctx.Err(); err != nil { // reads failed for it: redo the chunk
			return p.Rep, upstream("rebuild the status index", err)
		}
		next.Cursor = keys[end-1]
		if version, err = s.writeRebuild(ctx, next, version); err != nil {
			// Another rebuild moved on meanwhile; it finishes the work.
			return p.Rep, upstream("record the status index rebuild", err)
		}
		p, at = next, end
	}
	idx, err := s.readIndex(ctx)
	if err != nil {
		return p.Rep, err
	}
	exists := make(map[string]bool, len(keys))
	for _, k := range keys {
		exists[idOfKey(k)] = true
	}
	if err := s.dropOrphans(ctx, idx.entries, exists, &p.Rep); err != nil {
		return p.Rep, err
	}
	s.index.saveLayout(ctx, idx.leaves)
	if err := s.refreshHot(ctx, idx.entries, s.Now()); err != nil {
		return p.Rep, err
	}
	p.Rep.Done = true
	if _, err := s.writeRebuild(ctx, p, version); err != nil {
		return p.Rep, upstream("record the status index rebuild", err)
	}
	return p.Rep, nil
}

func (s *Service) rebuildChunk() int {
	if s.testRebuildChunk > 0 {
		return s.testRebuildChunk
	}
	return rebuildChunk
}
