package crypto_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"smtp-vault/shared/crypto"
)

// nodeVector is the JSON exchanged with scripts/crypto-vectors/vectors.js.
type nodeVector struct {
	KeyB64    string `json:"key_b64"`
	AAD       string `json:"aad"`
	Plaintext string `json:"plaintext"`
	Stored    string `json:"stored,omitempty"`
	Error     string `json:"error,omitempty"`
}

// TestNodeInterop checks the seed's Node.js layout both ways: Go opens what
// Node seals, Node opens what Go seals, and neither opens a value under
// another tenant's AAD.
func TestNodeInterop(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatalf("node not found on PATH (%v): TestNodeInterop needs Node.js to check compatibility with the seed implementation; install Node.js 20+", err)
	}
	script := filepath.Join(repoRoot(t), "scripts", "crypto-vectors", "vectors.js")

	keyA, keyB := testKey(10), testKey(20)
	aadA := string(crypto.AAD(tenantA, "password"))
	aadB := string(crypto.AAD(tenantB, "password"))
	var vectors []nodeVector
	for i, p := range plaintexts {
		key, aad := keyA, aadA
		if i%2 == 1 {
			key, aad = keyB, aadB
		}
		vectors = append(vectors, nodeVector{
			KeyB64:    base64.StdEncoding.EncodeToString(key),
			AAD:       aad,
			Plaintext: p.text,
		})
	}
	otherTenant := func(aad string) string {
		if aad == aadA {
			return aadB
		}
		return aadA
	}

	t.Run("Go opens Node", func(t *testing.T) {
		sealed := runNode(t, node, script, "seal", vectors)
		for i, v := range sealed {
			key := mustKey(t, v.KeyB64)
			got, err := crypto.Open(key, v.Stored, []byte(v.AAD))
			if err != nil {
				t.Errorf("%s: Open of Node value: %v", plaintexts[i].name, err)
			} else if string(got) != vectors[i].Plaintext {
				t.Errorf("%s: Open of Node value = %q, want %q", plaintexts[i].name, got, vectors[i].Plaintext)
			}
			if _, err := crypto.Open(key, v.Stored, []byte(otherTenant(v.AAD))); !errors.Is(err, crypto.ErrDecrypt) {
				t.Errorf("%s: Node value opened under the other tenant's AAD (err %v)", plaintexts[i].name, err)
			}
		}
	})

	t.Run("Node opens Go", func(t *testing.T) {
		var good, wrongAAD []nodeVector
		for _, v := range vectors {
			stored, err := crypto.Seal(mustKey(t, v.KeyB64), []byte(v.Plaintext), []byte(v.AAD))
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			good = append(good, nodeVector{KeyB64: v.KeyB64, AAD: v.AAD, Stored: stored})
			wrongAAD = append(wrongAAD, nodeVector{KeyB64: v.KeyB64, AAD: otherTenant(v.AAD), Stored: stored})
		}
		for i, v := range runNode(t, node, script, "open", good) {
			if v.Error != "" || v.Plaintext != vectors[i].Plaintext {
				t.Errorf("%s: Node open of Go value = %q (error %q), want %q", plaintexts[i].name, v.Plaintext, v.Error, vectors[i].Plaintext)
			}
		}
		for i, v := range runNode(t, node, script, "open", wrongAAD) {
			if v.Error == "" || v.Plaintext != "" {
				t.Errorf("%s: Node opened a Go value under the other tenant's AAD", plaintexts[i].name)
			}
		}
	})
}

func runNode(t *testing.T, node, script, mode string, in []nodeVector) []nodeVector {
	t.Helper()
	input, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, mode)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node vectors.js %s: %v\n%s", mode, err, stderr.Bytes())
	}
	var got []nodeVector
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("node vectors.js %s: parsing output: %v", mode, err)
	}
	if len(got) != len(in) {
		t.Fatalf("node vectors.js %s: %d results for %d vectors", mode, len(got), len(in))
	}
	return got
}

func mustKey(t *testing.T, b64 string) []byte {
	t.Helper()
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatalf("decoding key: %v", err)
	}
	return key
}

// repoRoot walks up from the package directory to the directory holding go.mod.
func repoRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found above the test directory")
		}
		dir = parent
	}
}
