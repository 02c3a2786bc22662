package devissuer

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"smtp-vault/shared/auth"
)

func TestDevIssuerPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "dev-jwt-key.json")
	first, err := LoadOrCreateDevIssuer(path, testIssuer, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode %o, want 600", mode)
	}
	tok, err := first.Sign("alice", []auth.Role{auth.RolePlatformAdmin}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}

	second, err := LoadOrCreateDevIssuer(path, testIssuer, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	k1, k2 := first.JWKS().Keys[0], second.JWKS().Keys[0]
	if k1.KeyID == "" || k1.KeyID != k2.KeyID {
		t.Fatalf("kid changed across loads: %q, %q", k1.KeyID, k2.KeyID)
	}
	// A token issued before the restart verifies against the key after it.
	v := auth.NewVerifier(auth.VerifierConfig{Issuer: testIssuer, Audience: testAudience, JWKS: ptr(second.JWKS())})
	if _, _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("token from before the restart: %v", err)
	}

	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Errorf("stray files next to the key: %v", entries)
	}
}

func TestDevIssuerConcurrentCreateAgrees(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.json")
	kids := make([]string, 4)
	var wg sync.WaitGroup
	for i := range kids {
		wg.Go(func() {
			d, err := LoadOrCreateDevIssuer(path, testIssuer, testAudience)
			if err != nil {
				t.Error(err)
				return
			}
			kids[i] = d.JWKS().Keys[0].KeyID
		})
	}
	wg.Wait()
	for _, kid := range kids[1:] {
		if kid != kids[0] {
			t.Fatalf("processes disagree on the key: %v", kids)
		}
	}
}

func TestDevIssuerRejectsBadKeyFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"garbage.json": "{nope",
		"public.json":  publicKeyJSON(t),
	} {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreateDevIssuer(path, testIssuer, testAudience); err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestDevIssuerJWKSAndSign(t *testing.T) {
	d, err := LoadOrCreateDevIssuer(filepath.Join(t.TempDir(), "key.json"), testIssuer, testAudience)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.JWKSHandler())
	defer srv.Close()

	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
		t.Fatal(err)
	}
	if len(raw.Keys) != 1 {
		t.Fatalf("keys: %v", raw.Keys)
	}
	k := raw.Keys[0]
	if k["kty"] != "RSA" || k["alg"] != "RS256" || k["use"] != "sig" || k["kid"] == "" {
		t.Errorf("public JWK %v", k)
	}
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := k[private]; ok {
			t.Errorf("JWKS leaks private parameter %q", private)
		}
	}
	if r, _ := http.Post(srv.URL, "text/plain", nil); r != nil {
		r.Body.Close()
		if r.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("POST: %d", r.StatusCode)
		}
	}

	tok, err := d.Sign("bob", []auth.Role{auth.RoleSupport, auth.RolePlatformAdmin}, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v := auth.NewVerifier(auth.VerifierConfig{Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL})
	p, claims, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if p.Subject != "bob" || !slices.Equal(p.Roles, []auth.Role{auth.RoleSupport, auth.RolePlatformAdmin}) {
		t.Errorf("principal %+v", p)
	}
	for _, c := range []string{"iss", "aud", "sub", "iat", "nbf", "exp", "jti", "roles"} {
		if claims[c] == "" {
			t.Errorf("claim %q missing from %v", c, claims)
		}
	}
	if claims["roles"] != "[support-team platform-admin]" {
		t.Errorf("roles claim %q", claims["roles"])
	}

	// The roles claim is a JSON array in the token itself.
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(jws.UnsafePayloadWithoutVerification()), `"roles":["support-team","platform-admin"]`) {
		t.Errorf("payload %s", jws.UnsafePayloadWithoutVerification())
	}
	if h := jws.Signatures[0].Header; h.KeyID != k["kid"] || h.Algorithm != "RS256" {
		t.Errorf("header %+v", h)
	}

	if _, err := d.Sign("", nil, time.Minute); err == nil {
		t.Error("signed with an empty subject")
	}
	if _, err := d.Sign("bob", nil, 0); err == nil {
		t.Error("signed with no lifetime")
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const (
	testIssuer   = "https://idp.example.test/"
	testAudience = "smtp-vault"
)

func ptr[T any](v T) *T { return &v }

// publicKeyJSON is a JWK file holding only a public key, which an issuer
// cannot sign with.
func publicKeyJSON(t *testing.T) string {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "good", Algorithm: string(jose.RS256), Use: "sig"})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
