package credential

import (
	"encoding/json"
	"maps"
	"testing"
)

// FuzzIndexLeaf: whatever a leaf of the status index holds in Vault,
// decodeLeaf either refuses it (empty, never nil, so the next write
// replaces it) or returns entries keyed by tenant ids that this leaf
// holds, which encode and decode again unchanged. The sweep and the
// overview take those keys for tenants. (It was FuzzIndexShard while the
// index had fixed shards.)
func FuzzIndexLeaf(f *testing.F) {
	id := "550e8400-e29b-41d4-a716-446655440000"
	h := tenantHash(id)
	good, _ := json.Marshal(map[string]IndexEntry{id: {LastRotated: "2026-06-01T02:00:00Z", State: StateCurrent, Username: "admin@example.test", WebmailURL: "https://mail.example.test/webmail"}})
	f.Add(2, int(h&3), string(good))
	f.Add(0, 0, string(good))
	f.Add(2, int(h&3), `{}`)
	f.Add(2, int(h&3), `null`)
	f.Add(2, int(h&3), ``)
	f.Add(2, int(h&3), `{"../../other/admin":{"s":"pending"}}`)
	f.Add(2, int(h&3), `{"550E8400-E29B-41D4-A716-446655440000":{}}`)
	f.Add(2, int((h+1)&3), string(good))
	f.Add(2, int(h&3), `{"`+id+`":null}`)
	f.Add(2, int(h&3), `[]`)
	f.Fuzz(func(t *testing.T, depth, bits int, doc string) {
		if depth < 0 || depth > maxLeafDepth {
			return
		}
		l := leafID{depth, uint32(bits) & mask(depth)}
		entries, ok := decodeLeaf(l, doc)
		if entries == nil {
			t.Fatal("decodeLeaf returned a nil map")
		}
		if !ok {
			if len(entries) != 0 {
				t.Fatalf("a refused leaf has %d entries", len(entries))
			}
			return
		}
		for tid := range entries {
			if ValidateTenantID(tid) != nil || leafAt(tenantHash(tid), depth) != l {
				t.Fatalf("leaf %s holds %q", l.name(), tid)
			}
		}
		again, err := json.Marshal(entries)
		if err != nil {
			t.Fatal(err)
		}
		back, ok := decodeLeaf(l, string(again))
		if !ok || !maps.Equal(back, entries) {
			t.Fatalf("leaf does not survive encoding: %v, then %v", entries, back)
		}
	})
}
