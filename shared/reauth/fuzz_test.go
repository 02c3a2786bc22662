package reauth

import (
	"errors"
	"strings"
	"testing"
)

// FuzzSplitToken: any string is either refused as malformed or missing,
// never panics, or splits into a head that re-encodes the payload and a
// Transit signature, with nothing lost or added.
func FuzzSplitToken(f *testing.F) {
	f.Add("")
	f.Add(".")
	f.Add("eyJzdWIiOiJhbGljZSJ9.dmF1bHQ6djE6c2lnbmF0dXJl")
	f.Add("eyJzdWIiOiJhbGljZSJ9.dmF1bHQ6djE6c2lnbmF0dXJl.extra")
	f.Add("eyJzdWIiOiJhbGljZSJ9.bm90LXZhdWx0")
	f.Add(strings.Repeat("A", maxTokenBytes+1))
	f.Fuzz(func(t *testing.T, token string) {
		head, payload, sig, err := splitToken(token)
		if err != nil {
			if !errors.Is(err, ErrRequired) {
				t.Fatalf("refusal %v is not ErrRequired", err)
			}
			return
		}
		if !strings.HasPrefix(sig, "vault:v") {
			t.Fatalf("accepted signature %q is not a Transit signature", sig)
		}
		if head+"."+b64.EncodeToString([]byte(sig)) != token || b64.EncodeToString(payload) != head {
			t.Fatalf("split of %q does not round-trip", token)
		}
	})
}
