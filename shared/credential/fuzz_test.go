package credential

import (
	"encoding/json"
	"maps"
	"testing"
)

// FuzzIndexShard: whatever a shard of the status index holds in Vault,
// decodeShard either refuses it (empty, never nil, so the next write
// replaces it) or returns entries keyed by tenant ids that this shard
// holds, which encode and decode again unchanged. The sweep and the
// overview take those keys for tenants.
func FuzzIndexShard(f *testing.F) {
	s := New(Config{IndexShards: 4})
	id := "550e8400-e29b-41d4-a716-446655440000"
	shard := s.indexShard(id)
	good, _ := json.Marshal(map[string]IndexEntry{id: {LastRotated: "2026-06-01T02:00:00Z", State: StateCurrent, Username: "admin@example.test", WebmailURL: "https://mail.example.test/webmail"}})
	f.Add(shard, string(good))
	f.Add(shard, `{}`)
	f.Add(shard, `null`)
	f.Add(shard, ``)
	f.Add(shard, `{"../../other/admin":{"s":"pending"}}`)
	f.Add(shard, `{"550E8400-E29B-41D4-A716-446655440000":{}}`)
	f.Add((shard+1)%4, string(good))
	f.Add(shard, `{"`+id+`":null}`)
	f.Add(shard, `[]`)
	f.Fuzz(func(t *testing.T, shard int, doc string) {
		entries, ok := s.decodeShard(shard, doc)
		if entries == nil {
			t.Fatal("decodeShard returned a nil map")
		}
		if !ok {
			if len(entries) != 0 {
				t.Fatalf("a refused shard has %d entries", len(entries))
			}
			return
		}
		for tid := range entries {
			if ValidateTenantID(tid) != nil || s.indexShard(tid) != shard {
				t.Fatalf("shard %d holds %q", shard, tid)
			}
		}
		again, err := json.Marshal(entries)
		if err != nil {
			t.Fatal(err)
		}
		back, ok := s.decodeShard(shard, string(again))
		if !ok || !maps.Equal(back, entries) {
			t.Fatalf("shard does not survive encoding: %v, then %v", entries, back)
		}
	})
}
