package crypto_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"errors"
	"strings"
	"testing"

	"smtp-vault/shared/crypto"
)

const (
	tenantA = "550e8400-e29b-41d4-a716-446655440000"
	tenantB = "6fa459ea-ee8a-4ca4-894e-db77e160355e"

	// password44 has the shape of a stored password: NewPassword(32).
	password44 = "76Xk/zZKEjyWLK5ikc2DBKEEdpyVzR0LPZGGcHUJ37U="
)

// testKey returns a fixed 32-byte key; seed varies it so tests can hold two.
func testKey(seed byte) []byte {
	k := make([]byte, crypto.KeySize)
	for i := range k {
		k[i] = seed + byte(i)
	}
	return k
}

var plaintexts = []struct {
	name string
	text string
}{
	{"empty", ""},
	{"ascii", "hunter2"},
	{"unicode", "pässwörd 🔐 日本語 — ñ"},
	{"base64 password 44 chars", password44},
	{"long", strings.Repeat("The quick brown fox jumps over the lazy dog. ", 2000)},
}

func TestSealOpenRoundTrip(t *testing.T) {
	key := testKey(1)
	aad := crypto.AAD(tenantA, "password")
	for _, tc := range plaintexts {
		t.Run(tc.name, func(t *testing.T) {
			stored, err := crypto.Seal(key, []byte(tc.text), aad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			got, err := crypto.Open(key, stored, aad)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if string(got) != tc.text {
				t.Fatalf("Open = %q, want %q", got, tc.text)
			}
		})
	}
}

func TestSealFreshIV(t *testing.T) {
	const n = 2000
	key := testKey(1)
	aad := crypto.AAD(tenantA, "password")
	ivs := make(map[string]bool, n)
	for range n {
		stored, err := crypto.Seal(key, []byte("same password"), aad)
		if err != nil {
			t.Fatalf("Seal: %v", err)
		}
		raw, err := base64.StdEncoding.DecodeString(stored)
		if err != nil {
			t.Fatalf("stored value is not standard base64: %v", err)
		}
		iv := string(raw[:16])
		if ivs[iv] {
			t.Fatalf("IV repeated after %d seals", len(ivs))
		}
		ivs[iv] = true
	}
}

// TestSealLayout checks IV(16) || tag(16) || ciphertext by reassembling the
// pieces for a plain GCM instance built here, independent of Open.
func TestSealLayout(t *testing.T) {
	key := testKey(1)
	aad := crypto.AAD(tenantA, "password")
	for _, tc := range plaintexts {
		t.Run(tc.name, func(t *testing.T) {
			stored, err := crypto.Seal(key, []byte(tc.text), aad)
			if err != nil {
				t.Fatalf("Seal: %v", err)
			}
			raw, err := base64.StdEncoding.DecodeString(stored)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if want := 16 + 16 + len(tc.text); len(raw) != want {
				t.Fatalf("decoded length = %d, want %d", len(raw), want)
			}
			iv, tag, ct := raw[:16], raw[16:32], raw[32:]
			block, err := aes.NewCipher(key)
			if err != nil {
				t.Fatal(err)
			}
			gcm, err := cipher.NewGCMWithNonceSize(block, 16)
			if err != nil {
				t.Fatal(err)
			}
			got, err := gcm.Open(nil, iv, append(bytes.Clone(ct), tag...), aad)
			if err != nil {
				t.Fatalf("manual GCM open of IV||tag||ct failed: %v", err)
			}
			if string(got) != tc.text {
				t.Fatalf("manual open = %q, want %q", got, tc.text)
			}
		})
	}
}

func TestOpenRejects(t *testing.T) {
	key := testKey(1)
	aad := crypto.AAD(tenantA, "password")
	stored, err := crypto.Seal(key, []byte(password44), aad)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	raw, _ := base64.StdEncoding.DecodeString(stored)
	flip := func(i int) string {
		b := bytes.Clone(raw)
		b[i] ^= 0x01
		return base64.StdEncoding.EncodeToString(b)
	}
	enc := base64.StdEncoding.EncodeToString

	tests := []struct {
		name   string
		key    []byte
		stored string
		aad    []byte
	}{
		{"IV first byte", key, flip(0), aad},
		{"IV last byte", key, flip(15), aad},
		{"tag first byte", key, flip(16), aad},
		{"tag last byte", key, flip(31), aad},
		{"ciphertext first byte", key, flip(32), aad},
		{"ciphertext last byte", key, flip(len(raw) - 1), aad},
		{"truncated ciphertext", key, enc(raw[:len(raw)-1]), aad},
		{"extra byte", key, enc(append(bytes.Clone(raw), 0)), aad},
		{"IV and tag only", key, enc(raw[:32]), aad},
		{"shorter than IV and tag", key, enc(raw[:31]), aad},
		{"empty", key, "", aad},
		{"not base64", key, "not*base64!", aad},
		{"URL-safe base64", key, base64.URLEncoding.EncodeToString(raw) + "-_", aad},
		{"non-canonical padding bits", key, nonCanonical(t, stored), aad},
		{"wrong key", testKey(2), stored, aad},
		{"other tenant", key, stored, crypto.AAD(tenantB, "password")},
		{"other field", key, stored, crypto.AAD(tenantA, "username")},
		{"no AAD", key, stored, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := crypto.Open(tc.key, tc.stored, tc.aad)
			// Identity, not errors.Is: nothing may be wrapped around it.
			if err != crypto.ErrDecrypt {
				t.Fatalf("Open error = %v, want exactly ErrDecrypt", err)
			}
			if got != nil {
				t.Fatalf("Open returned %d bytes alongside an error", len(got))
			}
		})
	}
}

// nonCanonical sets unused low bits of the last base64 character before the
// padding; lenient decoders map it to the same bytes, Open must not.
func nonCanonical(t *testing.T, stored string) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	trimmed := strings.TrimRight(stored, "=")
	if len(trimmed) == len(stored) {
		t.Fatal("test value needs padding; change the plaintext length")
	}
	last := strings.IndexByte(alphabet, trimmed[len(trimmed)-1])
	out := trimmed[:len(trimmed)-1] + string(alphabet[last|1]) + stored[len(trimmed):]
	if raw, err := base64.StdEncoding.DecodeString(out); err != nil || base64.StdEncoding.EncodeToString(raw) != stored {
		t.Fatal("nonCanonical did not produce an alias of stored")
	}
	return out
}

func TestKeySize(t *testing.T) {
	aad := crypto.AAD(tenantA, "password")
	valid, err := crypto.Seal(testKey(1), []byte("x"), aad)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	for _, n := range []int{0, 1, 16, 24, 31, 33, 64} {
		key := make([]byte, n)
		if _, err := crypto.Seal(key, []byte("x"), aad); !errors.Is(err, crypto.ErrKeySize) {
			t.Errorf("Seal with %d-byte key: error = %v, want ErrKeySize", n, err)
		}
		if _, err := crypto.Open(key, valid, aad); !errors.Is(err, crypto.ErrKeySize) {
			t.Errorf("Open with %d-byte key: error = %v, want ErrKeySize", n, err)
		}
	}
	if _, err := crypto.Seal(nil, []byte("x"), aad); !errors.Is(err, crypto.ErrKeySize) {
		t.Errorf("Seal with nil key: error = %v, want ErrKeySize", err)
	}
}

func TestAAD(t *testing.T) {
	got := crypto.AAD(tenantA, "password")
	want := []byte("550e8400-e29b-41d4-a716-446655440000/password")
	if !bytes.Equal(got, want) {
		t.Fatalf("AAD = %q, want %q", got, want)
	}
}

// TestAADBinding: a ciphertext copied to another tenant's path or into
// another field must not open.
func TestAADBinding(t *testing.T) {
	key := testKey(1)
	stored, err := crypto.Seal(key, []byte("secret"), crypto.AAD(tenantA, "password"))
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	tests := []struct {
		name  string
		aad   []byte
		opens bool
	}{
		{"same tenant and field", crypto.AAD(tenantA, "password"), true},
		{"tenant B", crypto.AAD(tenantB, "password"), false},
		{"field username", crypto.AAD(tenantA, "username"), false},
		{"tenant B username", crypto.AAD(tenantB, "username"), false},
		{"uppercase tenant", crypto.AAD(strings.ToUpper(tenantA), "password"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := crypto.Open(key, stored, tc.aad)
			if tc.opens && err != nil {
				t.Fatalf("Open: %v", err)
			}
			if !tc.opens && !errors.Is(err, crypto.ErrDecrypt) {
				t.Fatalf("Open error = %v, want ErrDecrypt", err)
			}
		})
	}
}

func TestNewPassword(t *testing.T) {
	tests := []struct {
		nBytes  int
		wantLen int
	}{
		{32, 44}, // store
		{48, 64}, // emergency reset
		{1, 4},
	}
	for _, tc := range tests {
		pw, err := crypto.NewPassword(tc.nBytes)
		if err != nil {
			t.Fatalf("NewPassword(%d): %v", tc.nBytes, err)
		}
		if len(pw) != tc.wantLen {
			t.Errorf("NewPassword(%d) has %d chars, want %d", tc.nBytes, len(pw), tc.wantLen)
		}
		raw, err := base64.StdEncoding.DecodeString(pw)
		if err != nil || len(raw) != tc.nBytes {
			t.Errorf("NewPassword(%d) decodes to %d bytes (err %v)", tc.nBytes, len(raw), err)
		}
	}
	for _, n := range []int{0, -1} {
		if _, err := crypto.NewPassword(n); err == nil {
			t.Errorf("NewPassword(%d) succeeded, want error", n)
		}
	}
}

// TestNewPasswordEntropy is a sanity check that the bytes come from a
// random source, not a statistical test of crypto/rand.
func TestNewPasswordEntropy(t *testing.T) {
	const n = 500
	seen := make(map[string]bool, n)
	var counts [256]int
	for range n {
		pw, err := crypto.NewPassword(32)
		if err != nil {
			t.Fatalf("NewPassword: %v", err)
		}
		if seen[pw] {
			t.Fatal("NewPassword repeated a value")
		}
		seen[pw] = true
		raw, _ := base64.StdEncoding.DecodeString(pw)
		for _, b := range raw {
			counts[b]++
		}
	}
	// 16,000 bytes: every value is expected ~62 times; any missing byte
	// value or one above 3x the mean means something is badly wrong.
	for v, c := range counts {
		if c == 0 || c > 3*n*32/256 {
			t.Fatalf("byte value %d seen %d times in %d random bytes", v, c, n*32)
		}
	}
}

func TestWipe(t *testing.T) {
	for _, n := range []int{0, 1, 32, 1000} {
		b := bytes.Repeat([]byte{0xA5}, n)
		crypto.Wipe(b)
		if !bytes.Equal(b, make([]byte, n)) {
			t.Errorf("Wipe left non-zero bytes in a %d-byte buffer", n)
		}
	}
	crypto.Wipe(nil) // must not panic
}

func FuzzOpen(f *testing.F) {
	key := testKey(1)
	aad := crypto.AAD(tenantA, "password")
	valid, err := crypto.Seal(key, []byte(password44), aad)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(key, valid, aad)
	f.Add(key, valid, []byte(nil))
	f.Add(key, "", aad)
	f.Add(key, "====", aad)
	f.Add(key, strings.Repeat("A", 43)+"=", aad)
	f.Add([]byte("short"), valid, aad)
	f.Fuzz(func(t *testing.T, key []byte, stored string, aad []byte) {
		pt, err := crypto.Open(key, stored, aad)
		switch {
		case len(key) != crypto.KeySize:
			if !errors.Is(err, crypto.ErrKeySize) {
				t.Fatalf("key of %d bytes: error = %v, want ErrKeySize", len(key), err)
			}
		case err != nil:
			if err != crypto.ErrDecrypt {
				t.Fatalf("error = %v, want exactly ErrDecrypt", err)
			}
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
		}
	})
}
