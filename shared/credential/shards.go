package credential

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"math/bits"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"smtp-vault/shared/vault"
)

// A shard family: tenant -> IndexEntry documents in the index mount that
// split by themselves (extendible hashing), so that no document nears
// Vault's limits whatever the tenant count. A tenant lives in the leaf
// whose depth d and bits b match the low d bits of fnv32a(tenant id).
//
// A write that would take a leaf past Config.IndexLeafBytes of JSON
// splits it first: the leaf's entries as read are written, as drafts,
// into its two children, and then the leaf itself is replaced, with
// check-and-set on the version the drafts were made from, by a tombstone
// naming the depth of its children; the write then goes to its child. The
// tombstone is the commit: a writer that lost the race re-reads, finds it
// and writes into the child instead; a draft only replaces a missing leaf
// or a draft of the same parent from an older or the same version (the
// same content), so a slow splitter never overwrites a child in use. The family's layout
// document lists the leaves (for readers, one read instead of a descent);
// it may lag a split, and a reader that meets a tombstone descends.

// DefaultIndexLeafBytes is the JSON size past which a leaf splits: an
// eighth of Vault's default 1 MiB entry size, so a leaf and the request
// that writes it (the JSON escaped once more) stay far from every limit.
const DefaultIndexLeafBytes = 128 << 10

// leafWriteTries bounds one leaf write's tries when other writers of the
// leaf keep getting there first (a leaf's tens of writers a second at
// most, in a bulk rotation).
const leafWriteTries = 48

// maxLeafDepth: fnv32a has 32 bits; tenants sharing all 32 stay together.
const maxLeafDepth = 32

// leafID is a leaf of a family: the tenants whose hash ends in bits.
type leafID struct {
	depth int
	bits  uint32
}

func (l leafID) name() string { return fmt.Sprintf("%d-%x", l.depth, l.bits) }

func parseLeaf(s string) (leafID, bool) {
	d, b, ok := strings.Cut(s, "-")
	depth, err1 := strconv.Atoi(d)
	v, err2 := strconv.ParseUint(b, 16, 32)
	if !ok || err1 != nil || err2 != nil || depth < 0 || depth > maxLeafDepth || v&^uint64(mask(depth)) != 0 {
		return leafID{}, false
	}
	return leafID{depth, uint32(v)}, true
}

func mask(depth int) uint32 {
	if depth >= 32 {
		return ^uint32(0)
	}
	return 1<<depth - 1
}

// at is the leaf of depth d that holds hash h.
func leafAt(h uint32, d int) leafID { return leafID{d, h & mask(d)} }

func tenantHash(tenantID string) uint32 {
	h := fnv.New32a()
	h.Write([]byte(tenantID))
	return h.Sum32()
}

// rangeKey orders tenants so that every leaf is one contiguous range
// (its bits reversed are the key's prefix): the ranged rebuild walks it.
func rangeKey(tenantID string) string {
	return fmt.Sprintf("%08x/%s", bits.Reverse32(tenantHash(tenantID)), tenantID)
}

// family is one set of leaves: the status index ("leaves") or the
// overview's set of tenants that need attention ("hot", index.go).
type family struct {
	s      *Service
	prefix string

	// legacy, for the status index, reads the index as written before
	// leaves split (migrate).
	legacy func(ctx context.Context) (map[string]IndexEntry, error)

	mu     sync.Mutex
	layout map[leafID]bool // as last read or learnt; nil: not read yet
	// writing holds, for each leaf that one of this process's changes is
	// writing, the changes that arrived meanwhile (commit).
	writing map[leafID][]*leafChange
}

// migrate moves an index written before leaves split into leaves: the
// old shards' entries become a split of the root leaf, committed by its
// tombstone, so concurrent migrators and writers meet as in any split.
// A family with nothing to move gets its layout document, so that later
// processes skip this. It returns the layout.
func (f *family) migrate(ctx context.Context) (map[leafID]bool, error) {
	for range indexCASTries {
		root, err := f.readLeaf(ctx, leafID{})
		if err != nil {
			return nil, err
		}
		if root.version == 0 {
			old, err := f.legacy(ctx)
			if err != nil {
				return nil, err
			}
			if len(old) > 0 {
				d := bits.Len(uint(f.s.cfg.LegacyIndexShards - 1)) // the old shards' own split
				if err := f.split(ctx, leafID{}, 0, old, min(max(d, 1), 16)); errors.Is(err, vault.ErrCASConflict) {
					continue
				} else if err != nil {
					return nil, err
				}
				f.s.log.InfoContext(ctx, "status index: migrated the fixed shards into leaves", "tenants", len(old))
			}
		}
		lay, version, err := f.readLayout(ctx)
		if err == nil && version == 0 {
			if _, werr := f.writeLayout(ctx, lay, 0); werr != nil && !errors.Is(werr, vault.ErrCASConflict) {
				f.s.log.WarnContext(ctx, "status index: write the layout", "error", werr)
			}
		}
		return lay, err
	}
	return nil, upstream("migrate the status index", vault.ErrCASConflict)
}

func (f *family) layoutPath() string       { return f.prefix + "/layout" }
func (f *family) leafPath(l leafID) string { return f.prefix + "/" + l.name() }

// leafDoc is one leaf as read.
type leafDoc struct {
	entries  map[string]IndexEntry
	version  int
	from     string // "<parent>@<version>" of a draft; "" once written
	children int    // depth of the children of a split leaf; 0 otherwise
	size     int    // bytes of the entries' JSON
	ok       bool
}

func (f *family) readLeaf(ctx context.Context, l leafID) (leafDoc, error) {
	sec, err := f.s.cfg.Vault.ReadKV(ctx, f.s.cfg.IndexMount, f.leafPath(l))
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return leafDoc{entries: map[string]IndexEntry{}, ok: true}, nil
	case err != nil:
		return leafDoc{}, upstream("read the status index", err)
	}
	doc := leafDoc{entries: map[string]IndexEntry{}, version: sec.Version, ok: true}
	if c := sec.Data["split"]; c != "" {
		doc.children, _ = strconv.Atoi(c)
		if doc.children <= l.depth || doc.children > maxLeafDepth {
			doc.children = l.depth + 1
		}
		return doc, nil
	}
	doc.from = sec.Data["from"]
	raw := sec.Data["tenants"]
	doc.size = len(raw)
	if raw != "" {
		if doc.entries, doc.ok = decodeLeaf(l, raw); !doc.ok {
			f.s.log.WarnContext(ctx, "status index: a leaf does not decode; it is rebuilt", "leaf", f.leafPath(l))
		}
	}
	return doc, nil
}

// decodeLeaf reads a leaf's document: a JSON object of entries by tenant
// id. It decodes only if every id is a tenant id that this leaf holds,
// since the sweep and the overview take the ids for tenants (and paths);
// otherwise it is empty with ok false (the next write replaces it, the
// sweep refills it). The map is never nil.
func decodeLeaf(l leafID, doc string) (map[string]IndexEntry, bool) {
	var entries map[string]IndexEntry
	if err := json.Unmarshal([]byte(doc), &entries); err != nil || entries == nil {
		return map[string]IndexEntry{}, false
	}
	for id := range entries {
		if ValidateTenantID(id) != nil || leafAt(tenantHash(id), l.depth) != l {
			return map[string]IndexEntry{}, false
		}
	}
	return entries, true
}

// leaves is the family's layout, read once per Service and then kept up
// to date by what this process learns (its splits, tombstones it meets).
func (f *family) leaves(ctx context.Context) (map[leafID]bool, error) {
	f.mu.Lock()
	lay := f.layout
	f.mu.Unlock()
	if lay != nil {
		return lay, nil
	}
	lay, version, err := f.readLayout(ctx)
	if err != nil {
		return nil, err
	}
	if version == 0 && f.legacy != nil {
		if lay, err = f.migrate(ctx); err != nil {
			return nil, err
		}
	}
	f.mu.Lock()
	f.layout = lay
	f.mu.Unlock()
	return lay, nil
}

// readLayout reads the layout document; a family without one is a single
// root leaf (a new index), or, for the status index, the layout of an
// index written before leaves split, which migrate moves.
func (f *family) readLayout(ctx context.Context) (map[leafID]bool, int, error) {
	sec, err := f.s.cfg.Vault.ReadKV(ctx, f.s.cfg.IndexMount, f.layoutPath())
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return map[leafID]bool{{}: true}, 0, nil
	case err != nil:
		return nil, 0, upstream("read the status index layout", err)
	}
	lay := map[leafID]bool{}
	for _, n := range strings.Split(sec.Data["leaves"], ",") {
		if l, ok := parseLeaf(n); ok {
			lay[l] = true
		}
	}
	if len(lay) == 0 {
		lay[leafID{}] = true
	}
	return lay, sec.Version, nil
}

// leafOf is the leaf the layout says holds h.
func leafOf(lay map[leafID]bool, h uint32) leafID {
	for d := 0; d <= maxLeafDepth; d++ {
		if l := leafAt(h, d); lay[l] {
			return l
		}
	}
	return leafID{}
}

// learnSplit records that parent split into children of depth d: in this
// process at once, and in the layout document (best effort: a reader that
// meets the tombstone descends, and the sweep rewrites the layout).
func (f *family) learnSplit(ctx context.Context, parent leafID, d int, persist bool) {
	apply := func(lay map[leafID]bool) map[leafID]bool {
		out := make(map[leafID]bool, len(lay)+1<<(d-parent.depth))
		for l := range lay {
			if l != parent {
				out[l] = true
			}
		}
		for i := uint32(0); i < 1<<(d-parent.depth); i++ {
			out[leafID{d, parent.bits | i<<parent.depth}] = true
		}
		return out
	}
	f.mu.Lock()
	if f.layout != nil && f.layout[parent] {
		f.layout = apply(f.layout)
	}
	f.mu.Unlock()
	if !persist {
		return
	}
	for range indexCASTries {
		lay, version, err := f.readLayout(ctx)
		if err != nil || !lay[parent] {
			return
		}
		if _, err = f.writeLayout(ctx, apply(lay), version); !errors.Is(err, vault.ErrCASConflict) {
			return
		}
	}
}

func (f *family) writeLayout(ctx context.Context, lay map[leafID]bool, version int) (int, error) {
	names := make([]string, 0, len(lay))
	for l := range lay {
		names = append(names, l.name())
	}
	sort.Strings(names)
	return f.s.cfg.Vault.WriteKVCAS(ctx, f.s.cfg.IndexMount, f.layoutPath(), map[string]string{"leaves": strings.Join(names, ",")}, version)
}

// update applies change to the entries of ids, leaf by leaf, each leaf
// with check-and-set and retried when another writer got there first;
// change must touch only the ids it is given. A leaf that would grow past
// the limit is split first.
func (f *family) update(ctx context.Context, ids []string, change func(m map[string]IndexEntry, ids []string)) error {
	lay, err := f.leaves(ctx)
	if err != nil {
		return err
	}
	groups := map[leafID][]string{}
	for _, id := range ids {
		l := leafOf(lay, tenantHash(id))
		groups[l] = append(groups[l], id)
	}
	if len(groups) == 1 {
		for l, g := range groups {
			return f.commit(ctx, l, g, change)
		}
	}
	list := make([]leafID, 0, len(groups))
	for l := range groups {
		list = append(list, l)
	}
	errs := make([]error, len(list))
	f.s.forEach(len(list), func(i int) { errs[i] = f.commit(ctx, list[i], groups[list[i]], change) })
	return errors.Join(errs...)
}

// A leaf's changes in one process share its writes (group commit): while
// one change writes a leaf, the changes that arrive for it wait, and the
// first of them then writes them all at once and answers each. So many
// changes at once (a compromise response's resets, 16 to a chunk job,
// each writing its tenant's entry twice) cost a leaf one read and one
// write per round instead of one each, with check-and-set conflicts and
// back-off between them. Processes still meet through check-and-set.
type leafChange struct {
	ids    []string
	change func(map[string]IndexEntry, []string)
	// done answers the change: its error, or, with lead set, that it is
	// to write batch (itself first).
	done chan leafTurn
}

type leafTurn struct {
	err   error
	lead  bool
	batch []*leafChange
}

// commit applies change to the ids of leaf l, in a write shared with the
// other changes of l that this process has waiting. The write is not cut
// short by one caller's cancellation, since it carries the others' changes;
// it is bounded by leafWriteTries and Vault's timeouts.
func (f *family) commit(ctx context.Context, l leafID, ids []string, change func(map[string]IndexEntry, []string)) error {
	me := &leafChange{ids: ids, change: change, done: make(chan leafTurn, 1)}
	f.mu.Lock()
	if f.writing == nil {
		f.writing = map[leafID][]*leafChange{}
	}
	batch := []*leafChange{me}
	if queue, busy := f.writing[l]; busy {
		f.writing[l] = append(queue, me)
		f.mu.Unlock()
		turn := <-me.done
		if !turn.lead {
			return turn.err
		}
		batch = turn.batch
	} else {
		f.writing[l] = nil
		f.mu.Unlock()
	}
	all, merged := mergeChanges(batch)
	err := f.updateLeaf(context.WithoutCancel(ctx), l, all, merged)
	for _, c := range batch[1:] {
		c.done <- leafTurn{err: err}
	}
	f.mu.Lock()
	if next := f.writing[l]; len(next) > 0 {
		f.writing[l] = nil
		next[0].done <- leafTurn{lead: true, batch: next}
	} else {
		delete(f.writing, l)
	}
	f.mu.Unlock()
	return err
}

// mergeChanges is one change made of a batch's: each applied, in order,
// to those of its ids that the leaf being written holds (a leaf split
// since the batch was made writes its children apart).
func mergeChanges(batch []*leafChange) ([]string, func(map[string]IndexEntry, []string)) {
	if len(batch) == 1 {
		return batch[0].ids, batch[0].change
	}
	var all []string
	for _, c := range batch {
		all = append(all, c.ids...)
	}
	return all, func(m map[string]IndexEntry, ids []string) {
		here := make(map[string]bool, len(ids))
		for _, id := range ids {
			here[id] = true
		}
		for _, c := range batch {
			var mine []string
			for _, id := range c.ids {
				if here[id] {
					mine = append(mine, id)
				}
			}
			if len(mine) > 0 {
				c.change(m, mine)
			}
		}
	}
}

func (f *family) updateLeaf(ctx context.Context, l leafID, ids []string, change func(map[string]IndexEntry, []string)) error {
	limit := f.s.cfg.IndexLeafBytes
	var err error
	for try := range leafWriteTries {
		var doc leafDoc
		if doc, err = f.readLeaf(ctx, l); err != nil {
			return err
		}
		if doc.children > 0 { // split since the layout was read: write below
			f.learnSplit(ctx, l, doc.children, false)
			sub := map[leafID][]string{}
			for _, id := range ids {
				c := leafAt(tenantHash(id), doc.children)
				sub[c] = append(sub[c], id)
			}
			var errs []error
			for c, g := range sub {
				errs = append(errs, f.updateLeaf(ctx, c, g, change))
			}
			return errors.Join(errs...)
		}
		before := maps.Clone(doc.entries)
		change(doc.entries, ids)
		b, merr := json.Marshal(doc.entries)
		if merr != nil {
			return fmt.Errorf("encode the status index: %w", merr)
		}
		if len(b) > limit && l.depth < maxLeafDepth {
			// Split the leaf as read; the next try writes the change
			// into its child (and splits that too if need be).
			if err = f.split(ctx, l, doc.version, before, l.depth+1); err == nil {
				continue
			}
		} else {
			_, err = f.s.cfg.Vault.WriteKVCAS(ctx, f.s.cfg.IndexMount, f.leafPath(l), map[string]string{"tenants": string(b)}, doc.version)
		}
		if !errors.Is(err, vault.ErrCASConflict) {
			break
		}
		// Spread the writers of one leaf apart: 1, 2, 4 .. 128 ms,
		// jittered (up to about 5 s in all before giving up).
		wait := time.Duration(1<<min(try, 7)) * time.Millisecond
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

// split moves the entries of l, as read at version, into its children at
// depth d (l.depth+1 but for a migration), and commits with a tombstone
// on l. The drafts hold only what l held at version, so every splitter of
// one version writes the same drafts. ErrCASConflict: l or a child
// changed; re-read.
func (f *family) split(ctx context.Context, l leafID, version int, entries map[string]IndexEntry, d int) error {
	groups := map[leafID]map[string]IndexEntry{}
	for i := uint32(0); i < 1<<(d-l.depth); i++ {
		groups[leafID{d, l.bits | i<<l.depth}] = map[string]IndexEntry{}
	}
	for id, e := range entries {
		groups[leafAt(tenantHash(id), d)][id] = e
	}
	parts := map[leafID][]byte{}
	for c, m := range groups {
		b, err := json.Marshal(m)
		if err != nil {
			return fmt.Errorf("encode the status index: %w", err)
		}
		parts[c] = b
	}
	from := l.name() + "@" + strconv.Itoa(version)
	kids := make([]leafID, 0, len(parts))
	for c := range parts {
		kids = append(kids, c)
	}
	errs := make([]error, len(kids))
	f.s.forEach(len(kids), func(i int) {
		c := kids[i]
		doc, err := f.readLeaf(ctx, c)
		switch {
		case err != nil:
			errs[i] = err
			return
		case doc.version > 0 && !draftOlder(doc.from, l, version):
			errs[i] = vault.ErrCASConflict // committed by another split
			return
		case doc.version == 0 && len(parts[c]) <= 2:
			return // empty and absent: reads as empty, a writer creates it
		}
		_, errs[i] = f.s.cfg.Vault.WriteKVCAS(ctx, f.s.cfg.IndexMount, f.leafPath(c),
			map[string]string{"tenants": string(parts[c]), "from": from}, doc.version)
	})
	if err := errors.Join(errs...); err != nil {
		if errors.Is(err, vault.ErrCASConflict) {
			return vault.ErrCASConflict
		}
		return err
	}
	if _, err := f.s.cfg.Vault.WriteKVCAS(ctx, f.s.cfg.IndexMount, f.leafPath(l), map[string]string{"split": strconv.Itoa(d)}, version); err != nil {
		return err
	}
	f.s.log.InfoContext(ctx, "status index: a leaf split", "leaf", f.leafPath(l), "tenants", len(entries), "children", len(kids))
	f.learnSplit(ctx, l, d, true)
	return nil
}

// draftOlder reports whether a child's draft marker from may be replaced
// by a draft of parent at version: it is a draft of parent made from an
// older version, or from the same one (the same content).
func draftOlder(from string, parent leafID, version int) bool {
	p, v, ok := strings.Cut(from, "@")
	if !ok || p != parent.name() {
		return false // written since its commit, or a tombstone
	}
	n, err := strconv.Atoi(v)
	return err == nil && n <= version
}

// readAll reads every leaf, Concurrency at a time, descending through
// tombstones the layout did not know of; it returns the entries, the
// leaves as found, and those that did not decode. One leaf that cannot
// be read fails it: a partial list would hide tenants.
func (f *family) readAll(ctx context.Context) (map[string]IndexEntry, map[leafID]bool, []leafID, error) {
	lay, version, err := f.readLayout(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	var (
		mu      sync.Mutex
		out     = map[string]IndexEntry{}
		found   = map[leafID]bool{}
		broken  []leafID
		errs    []error
		pending = make([]leafID, 0, len(lay))
	)
	for l := range lay {
		pending = append(pending, l)
	}
	for len(pending) > 0 {
		var next []leafID
		f.s.forEach(len(pending), func(i int) {
			l := pending[i]
			doc, err := f.readLeaf(ctx, l)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, err)
			case doc.children > 0:
				for j := uint32(0); j < 1<<(doc.children-l.depth); j++ {
					next = append(next, leafID{doc.children, l.bits | j<<l.depth})
				}
			default:
				found[l] = true
				if !doc.ok {
					broken = append(broken, l)
				}
				for id, e := range doc.entries {
					out[id] = e
				}
			}
		})
		pending = next
	}
	if err := errors.Join(errs...); err != nil {
		return nil, nil, nil, err
	}
	if version == 0 && f.legacy != nil && len(out) == 0 && len(found) == 1 && found[leafID{}] {
		// Not migrated yet (no writer has run since the upgrade): read
		// the old shards as they are.
		old, err := f.legacy(ctx)
		if err != nil {
			return nil, nil, nil, err
		}
		return old, found, nil, nil
	}
	f.mu.Lock()
	f.layout = found
	f.mu.Unlock()
	return out, found, broken, nil
}

// saveLayout rewrites the layout document when it lags what readAll found
// (a splitter that stopped between its tombstone and the layout write).
func (f *family) saveLayout(ctx context.Context, found map[leafID]bool) {
	lay, version, err := f.readLayout(ctx)
	if err != nil || sameLayout(lay, found) {
		return
	}
	if _, err := f.writeLayout(ctx, found, version); err != nil && !errors.Is(err, vault.ErrCASConflict) {
		f.s.log.WarnContext(ctx, "status index: rewrite the layout", "error", err)
	}
}

func sameLayout(a, b map[leafID]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for l := range a {
		if !b[l] {
			return false
		}
	}
	return true
}
