package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"smtp-vault/shared/vault"
)

// FuzzSeqOfKey: whatever object key the bucket lists, SeqOfKey either
// refuses it or names a slot whose ChainKey is exactly that key.
func FuzzSeqOfKey(f *testing.F) {
	for _, k := range []string{"tenants/x/999999999998.json", "platform/000000000001.json", "platform/!x", "platform/0000000000000.json", "platform/-00000000001.json", "platform/+99999999999.json", "platform/999999999999.json", ""} {
		f.Add(k)
	}
	f.Fuzz(func(t *testing.T, key string) {
		seq, ok := SeqOfKey("platform/", key)
		if !ok {
			return
		}
		if seq == 0 || seq > MaxSeq || ChainKey(PlatformChain, seq) != key {
			t.Fatalf("SeqOfKey(%q) = %d, whose key is %q", key, seq, ChainKey(PlatformChain, seq))
		}
	})
}

// staticTransit hands out one fixed data key and unwraps only its own
// wrapped form, as Transit would for a forged ciphertext.
type staticTransit struct{}

const staticWrapped = "vault:v1:static"

var staticKey = bytes.Repeat([]byte{7}, 32)

func (staticTransit) DataKey(context.Context, string, string) ([]byte, string, error) {
	return staticKey, staticWrapped, nil
}

func (staticTransit) Decrypt(_ context.Context, _, _, wrapped string) ([]byte, error) {
	if wrapped != staticWrapped {
		return nil, vault.ErrBadRequest
	}
	return staticKey, nil
}

// FuzzRecordBody: an object read back from the bucket is either a valid
// record (it carries the MAC of the key Vault issued, so it must be one
// the writer signed, byte for byte) or refused with a problem; it never
// panics, and never needs Vault to say something it cannot.
func FuzzRecordBody(f *testing.F) {
	k := NewKeys(staticTransit{}, "audit-mac")
	ctx := context.Background()
	signed, err := k.sign(ctx, Record{Seq: 1, PrevHash: GenesisHash, Event: Event{ID: "e", Event: CredentialsAccessed, Details: map[string]any{"n": 1, "s": "<&>"}}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"seq":1,"mac":"` + strings.Repeat("0", 64) + `"}`))
	f.Add(bytes.Replace(signed, []byte(`"n":1`), []byte(`"n":2`), 1))
	f.Add([]byte("not json"))
	b := &Bucket{keys: k}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec, brk, err := b.examine(ctx, PlatformChain, "platform/999999999998.json", 1, body)
		if err != nil {
			t.Fatalf("examine returned an error (only Vault outages may): %v", err)
		}
		if brk != nil {
			if brk.Kind == "" || brk.Problem == "" {
				t.Fatalf("a refusal without a kind or reason: %+v", brk)
			}
			return
		}
		// Accepted: the MAC verified, so the bytes are a writer's. They
		// re-encode to themselves (the canonical form) and say seq 1.
		again, err := k.sign(ctx, rec)
		if err != nil || rec.Seq != 1 {
			t.Fatalf("accepted %q: seq %d, %v", body, rec.Seq, err)
		}
		if !bytes.Equal(again, body) {
			var v any
			t.Fatalf("accepted a body that is not what the writer would sign:\n%q\n%q (%v)", body, again, json.Unmarshal(body, &v))
		}
	})
}

// FuzzSplitMAC: splitting never panics, and joining back gives the input.
func FuzzSplitMAC(f *testing.F) {
	f.Add([]byte(`{"a":1,"mac":"` + strings.Repeat("ab", 32) + `"}`))
	f.Add([]byte(`"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		unsigned, tag, ok := splitMAC(body)
		if !ok {
			return
		}
		joined := append(bytes.TrimSuffix(bytes.Clone(unsigned), []byte("}")), macPrefix+tag+`"}`...)
		if !bytes.Equal(joined, body) || len(tag) != 64 {
			t.Fatalf("split %q into %q and %q", body, unsigned, tag)
		}
	})
}

// FuzzAnchor: whatever an anchor path in Vault holds, decodeAnchor either
// refuses it or returns an anchor Anchor could have written: a record's
// sequence number, a record hash and a time, that encodes back to exactly
// what was read.
func FuzzAnchor(f *testing.F) {
	f.Add("12", Hash([]byte("record")), "2026-12-01T02:00:00.123456789Z")
	f.Add("0", GenesisHash, "2026-12-01T02:00:00Z")
	f.Add("012", Hash([]byte("record")), "2026-12-01T02:00:00Z")
	f.Add("1000000000000", Hash([]byte("record")), "2026-12-01T02:00:00Z")
	f.Add("5", strings.ToUpper(Hash([]byte("record"))), "2026-12-01T02:00:00Z")
	f.Add("5", strings.Repeat("g", 64), "2026-12-01T02:00:00Z")
	f.Add("5", Hash([]byte("record")), "2026-12-01T04:00:00+02:00")
	f.Add("5", Hash([]byte("record")), "")
	f.Fuzz(func(t *testing.T, seq, hash, at string) {
		data := map[string]string{"seq": seq, "hash": hash, "anchored_at": at}
		an, ok := decodeAnchor(data)
		if !ok {
			return
		}
		if an.Seq == 0 || an.Seq > MaxSeq || !validHash(an.Hash) || an.At.Location() != time.UTC {
			t.Fatalf("accepted anchor %+v", an)
		}
		if got := an.encode(); got["seq"] != seq || got["hash"] != hash || got["anchored_at"] != at {
			t.Fatalf("anchor %v encodes as %v", data, got)
		}
	})
}
