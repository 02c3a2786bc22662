package credential

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"sort"
	"sync"
	"testing"
	"time"

	"smtp-vault/shared/vault"
)

// memKV is KV v2's check-and-set on one mount, in memory: enough for the
// leaf machinery's own tests, which race many writers far more often than
// the real Vault in TestIndexSplitsWhileRotationsRun can.
type memKV struct {
	Vault
	mu   sync.Mutex
	docs map[string]memDoc
	// writes counts the writes that took; delay holds each write, as
	// Vault's raft commit does, so that writers pile up.
	writes int
	delay  time.Duration
}

type memDoc struct {
	version int
	data    map[string]string
}

func (m *memKV) ReadKV(_ context.Context, _, path string) (*vault.Secret, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.docs[path]
	if !ok {
		return nil, vault.ErrNotFound
	}
	return &vault.Secret{Data: maps.Clone(d.data), Version: d.version}, nil
}

func (m *memKV) WriteKVCAS(_ context.Context, _, path string, data map[string]string, cas int) (int, error) {
	time.Sleep(m.delay)
	m.mu.Lock()
	defer m.mu.Unlock()
	d := m.docs[path]
	if d.version != cas {
		return 0, vault.ErrCASConflict
	}
	m.writes++
	m.docs[path] = memDoc{version: d.version + 1, data: maps.Clone(data)}
	return d.version + 1, nil
}

// putEntry changes tenant n's entry through changeEntries; false (the
// error reported) stops the caller.
func putEntry(t *testing.T, svc *Service, n int, set func(*IndexEntry)) bool {
	id := fmt.Sprintf("%08d-0000-4000-8000-000000000000", n)
	err := svc.changeEntries(context.Background(), []string{id}, func(_ string, e *IndexEntry, _ bool) entryOp {
		set(e)
		return opPut
	}, false)
	if err != nil {
		t.Error(err)
	}
	return err == nil
}

// Many writers, each changing its own tenants again and again, through
// leaves of 600 bytes that split under them, some writers with a layout
// read long before: no change is lost and no leaf passes the limit.
func TestLeavesSplitUnderConcurrentWriters(t *testing.T) {
	kv := &memKV{docs: map[string]memDoc{}}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	newSvc := func() *Service {
		return New(Config{Vault: kv, IndexLeafBytes: 600, Concurrency: 4, Now: func() time.Time { return now },
			Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	}
	stale := newSvc()
	if _, err := stale.index.leaves(context.Background()); err != nil { // the root only
		t.Fatal(err)
	}
	const writers, each, rounds = 16, 25, 3
	var wg sync.WaitGroup
	for w := range writers {
		svc := newSvc()
		if w%4 == 0 {
			svc = stale // shared, and its layout is old
		}
		wg.Go(func() {
			for r := range rounds {
				for i := range each {
					if !putEntry(t, svc, w*each+i, func(e *IndexEntry) {
						e.Username, e.LastRotated = fmt.Sprintf("admin@w%d.example", w), fmt.Sprintf("round %d", r)
					}) {
						return
					}
				}
			}
		})
	}
	wg.Wait()
	svc := newSvc()
	entries, leaves, broken, err := svc.index.readAll(context.Background())
	if err != nil || len(broken) != 0 {
		t.Fatalf("read: %v, broken %v", err, broken)
	}
	if len(entries) != writers*each {
		t.Fatalf("%d entries, want %d", len(entries), writers*each)
	}
	for id, e := range entries {
		if e.LastRotated != fmt.Sprintf("round %d", rounds-1) || e.Q != rounds {
			t.Errorf("%s: %+v, want the last round's write, the %dth", id, e, rounds)
		}
	}
	for l := range leaves {
		doc, err := svc.index.readLeaf(context.Background(), l)
		if err != nil || doc.size > 600 || doc.children > 0 {
			t.Errorf("leaf %s: %d bytes, children %d, %v", l.name(), doc.size, doc.children, err)
		}
	}
	if len(leaves) < 32 {
		t.Errorf("%d leaves for %d entries of 600 bytes at most", len(leaves), len(entries))
	}
	// The layout document may lag a split that raced its parent's layout
	// write (a reader meeting the tombstone descends), but every leaf is
	// reached from one it lists, and the sweep's rewrite catches it up.
	lay, _, err := svc.index.readLayout(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for f := range leaves {
		reached := false
		for l := range lay {
			reached = reached || (l.depth <= f.depth && leafAt(f.bits, l.depth) == l)
		}
		if !reached {
			t.Errorf("leaf %s is reached from no leaf the layout lists", f.name())
		}
	}
	svc.index.saveLayout(context.Background(), leaves)
	if lay, _, err = svc.index.readLayout(context.Background()); err != nil || !sameLayout(lay, leaves) {
		t.Errorf("the layout document lags the leaves after its rewrite: %d listed, %d found (%v)", len(lay), len(leaves), err)
	}
}

// Many changes at once through one process share their leaves' writes:
// every change lands, in far fewer writes than changes (one each without
// the group commit, plus the conflicts' retries).
func TestChangesOfOneLeafShareItsWrites(t *testing.T) {
	kv := &memKV{docs: map[string]memDoc{}, delay: 2 * time.Millisecond}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	svc := New(Config{Vault: kv, Concurrency: 4, Now: func() time.Time { return now },
		Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	const writers, each = 32, 8
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if !putEntry(t, svc, w, func(e *IndexEntry) { e.LastRotated = fmt.Sprintf("change %d", i) }) {
					return
				}
			}
		})
	}
	wg.Wait()
	entries, _, _, err := svc.index.readAll(context.Background())
	if err != nil || len(entries) != writers {
		t.Fatalf("%d entries, want %d: %v", len(entries), writers, err)
	}
	for id, e := range entries {
		if e.LastRotated != fmt.Sprintf("change %d", each-1) || e.Q != each {
			t.Errorf("%s: %+v, want the last of %d changes", id, e, each)
		}
	}
	kv.mu.Lock()
	defer kv.mu.Unlock()
	if kv.writes > writers*each/4 {
		t.Errorf("%d changes took %d writes of the one leaf, want at most a quarter", writers*each, kv.writes)
	}
	t.Logf("%d changes in %d writes", writers*each, kv.writes)
}

// Every leaf is one contiguous range of rangeKey, the rebuild's order.
func TestLeavesAreRanges(t *testing.T) {
	for _, d := range []int{0, 1, 3, 7} {
		keys := make([]string, 0, 2000)
		for i := range 2000 {
			keys = append(keys, rangeKey(fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)))
		}
		sort.Strings(keys)
		seen := map[leafID]bool{}
		var prev leafID
		for i, k := range keys {
			l := leafAt(tenantHash(idOfKey(k)), d)
			if i > 0 && l != prev && seen[l] {
				t.Fatalf("depth %d: leaf %s comes back after %s", d, l.name(), prev.name())
			}
			seen[l], prev = true, l
		}
	}
}
