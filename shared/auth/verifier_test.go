package auth

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	testIssuer   = "https://idp.example.test/"
	testAudience = "smtp-vault"
)

var t0 = time.Unix(1_800_000_000, 0)

// testKey is an RSA key with its kid; generating 2048-bit keys is slow, so
// each name is generated once per test binary.
type testKey struct {
	kid  string
	priv *rsa.PrivateKey
}

var (
	keysMu sync.Mutex
	keys   = map[string]testKey{}
)

func key(t testing.TB, kid string) testKey {
	t.Helper()
	keysMu.Lock()
	defer keysMu.Unlock()
	if k, ok := keys[kid]; ok {
		return k
	}
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	keys[kid] = testKey{kid: kid, priv: priv}
	return keys[kid]
}

func (k testKey) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: string(jose.RS256), Use: "sig"}
}

func jwks(ks ...testKey) jose.JSONWebKeySet {
	var s jose.JSONWebKeySet
	for _, k := range ks {
		s.Keys = append(s.Keys, k.public())
	}
	return s
}

// claims returns valid claims at t0; edit the map to break them.
func claims() map[string]any {
	return map[string]any{
		"iss":   testIssuer,
		"sub":   "alice",
		"aud":   []string{"other", testAudience},
		"iat":   t0.Add(-time.Minute).Unix(),
		"nbf":   t0.Add(-time.Minute).Unix(),
		"exp":   t0.Add(time.Hour).Unix(),
		"roles": []string{"support-team", "platform-admin"},
	}
}

func sign(t testing.TB, alg jose.SignatureAlgorithm, signingKey any, kid string, c map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: signingKey}, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func signRS(t testing.TB, k testKey, c map[string]any) string {
	return sign(t, jose.RS256, k.priv, k.kid, c)
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func with(edit func(map[string]any)) map[string]any {
	c := claims()
	edit(c)
	return c
}

func TestVerify(t *testing.T) {
	good := key(t, "good")
	other := key(t, "other")
	v := NewVerifier(VerifierConfig{
		Issuer: testIssuer, Audience: testAudience,
		JWKS: ptr(jwks(good)), Now: func() time.Time { return t0 },
	})

	valid := signRS(t, good, claims())
	parts := strings.Split(valid, ".")
	pubDER, err := x509.MarshalPKIXPublicKey(&good.priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	tests := []struct {
		name   string
		token  string
		reason string // in the error; empty means the token is accepted
	}{
		{"valid", valid, ""},
		{"audience as a string", signRS(t, good, with(func(c map[string]any) { c["aud"] = testAudience })), ""},
		{"nbf within leeway", signRS(t, good, with(func(c map[string]any) { c["nbf"] = t0.Add(10 * time.Second).Unix() })), ""},
		{"expired", signRS(t, good, with(func(c map[string]any) { c["exp"] = t0.Add(-time.Second).Unix() })), "expired"},
		{"expires now", signRS(t, good, with(func(c map[string]any) { c["exp"] = t0.Unix() })), "expired"},
		{"no exp", signRS(t, good, with(func(c map[string]any) { delete(c, "exp") })), "no exp"},
		{"not yet valid", signRS(t, good, with(func(c map[string]any) { c["nbf"] = t0.Add(5 * time.Minute).Unix() })), "not yet valid"},
		{"issued in the future", signRS(t, good, with(func(c map[string]any) { c["iat"] = t0.Add(5 * time.Minute).Unix() })), "future"},
		{"wrong issuer", signRS(t, good, with(func(c map[string]any) { c["iss"] = "https://evil.example.test/" })), "issuer"},
		{"wrong audience", signRS(t, good, with(func(c map[string]any) { c["aud"] = "someone-else" })), "audience"},
		{"no audience", signRS(t, good, with(func(c map[string]any) { delete(c, "aud") })), "audience"},
		{"second issuer's key and kid", signRS(t, other, claims()), "unknown kid"},
		{"second issuer's key, trusted kid", sign(t, jose.RS256, other.priv, good.kid, claims()), "bad signature"},
		{"no kid", sign(t, jose.RS256, good.priv, "", claims()), "no kid"},
		{"tampered payload", parts[0] + "." + b64(with(func(c map[string]any) { c["sub"] = "mallory" })) + "." + parts[2], "bad signature"},
		{"signature stripped", parts[0] + "." + parts[1] + ".", "bad signature"},
		{"alg none", b64(map[string]string{"alg": "none", "kid": good.kid, "typ": "JWT"}) + "." + parts[1] + ".", "RS256"},
		{"HS256 keyed with the public key", sign(t, jose.HS256, pubPEM, good.kid, claims()), "RS256"},
		{"RS512", sign(t, jose.RS512, good.priv, good.kid, claims()), "RS256"},
		{"PS256", sign(t, jose.PS256, good.priv, good.kid, claims()), "RS256"},
		{"garbage", "not.a.jwt", "malformed"},
		{"empty", "", "empty"},
		{"too large", strings.Repeat("a", maxTokenBytes+1), "too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, got, err := v.Verify(context.Background(), tt.token)
			if tt.reason == "" {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if p.Subject != "alice" || got["sub"] != "alice" || got["iss"] != testIssuer {
					t.Fatalf("principal %+v, claims %v", p, got)
				}
				return
			}
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("err = %v, want ErrUnauthenticated", err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("err = %q, want it to mention %q", err, tt.reason)
			}
			if len(tt.token) > 20 && strings.Contains(err.Error(), tt.token[:20]) {
				t.Errorf("error echoes the token: %q", err)
			}
		})
	}
}

func TestVerifyPrincipalAndClaims(t *testing.T) {
	good := key(t, "good")
	v := NewVerifier(VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, RolesClaim: "cognito:groups",
		JWKS: ptr(jwks(good)), Now: func() time.Time { return t0 },
	})
	c := with(func(c map[string]any) {
		c["cognito:groups"] = []string{"platform-admin", "billing"}
		c["email_verified"] = true
		c["exp"] = json.Number("1800003600")
		c["big"] = json.Number("1.7e9")
		c["address"] = map[string]any{"country": "NL"}
		c["nothing"] = nil
		c["mixed"] = []any{"a", 1, true}
	})
	p, got, err := v.Verify(context.Background(), signRS(t, good, c))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"iss":            testIssuer,
		"sub":            "alice",
		"aud":            "[other smtp-vault]",
		"iat":            "1799999940",
		"nbf":            "1799999940",
		"exp":            "1800003600",
		"roles":          "[support-team platform-admin]",
		"cognito:groups": "[platform-admin billing]",
		"email_verified": "true",
		"big":            "1700000000",
		"address":        `{"country":"NL"}`,
		"mixed":          "[a 1 true]",
	}
	if len(got) != len(want) {
		t.Errorf("claims %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Errorf("claim %q = %q, want %q", k, got[k], w)
		}
	}
	if p.Subject != "alice" || len(p.Roles) != 1 || p.Roles[0] != RolePlatformAdmin {
		t.Errorf("principal %+v", p)
	}

	// A verified token without a subject satisfies the authorizer but
	// names no principal.
	noSub := signRS(t, good, with(func(c map[string]any) { delete(c, "sub") }))
	if _, _, err := v.Verify(context.Background(), noSub); !errors.Is(err, ErrUnauthenticated) {
		t.Errorf("Verify without sub: %v", err)
	}
	if _, err := v.Authorize(context.Background(), "Bearer "+noSub); err != nil {
		t.Errorf("Authorize without sub: %v", err)
	}
}

// jwksServer serves whatever set currently holds and counts the requests.
type jwksServer struct {
	*httptest.Server
	hits atomic.Int32
	mu   sync.Mutex
	set  jose.JSONWebKeySet
}

func newJWKSServer(t *testing.T, set jose.JSONWebKeySet) *jwksServer {
	s := &jwksServer{set: set}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		defer s.mu.Unlock()
		_ = json.NewEncoder(w).Encode(s.set)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(set jose.JSONWebKeySet) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.set = set
}

// cognitoAccessClaims are shaped like the access token Amazon Cognito
// issues after the hosted sign-in: no "aud", the app client in
// "client_id", "token_use" "access", the groups in "cognito:groups".
func cognitoAccessClaims() map[string]any {
	return map[string]any{
		"sub":            "alice",
		"cognito:groups": []string{"platform-admin"},
		"iss":            testIssuer,
		"version":        2,
		"client_id":      testAudience,
		"origin_jti":     "0c1e0f5e-4a1b-4c3e-9a55-6f0d3c2b1a00",
		"event_id":       "6b0e3b8e-2f6c-4d5d-8a39-3f0f3e0c9d11",
		"token_use":      "access",
		"scope":          "openid",
		"auth_time":      t0.Add(-time.Minute).Unix(),
		"exp":            t0.Add(time.Hour).Unix(),
		"iat":            t0.Add(-time.Minute).Unix(),
		"jti":            "5f3b9d1e-8c2a-4e7f-b6d4-2a1c0e9f8b77",
		"username":       "alice",
	}
}

// TestVerifyCognitoAccessToken: API Gateway's authorizer checks
// "client_id" when "aud" is absent, and so must each function, or the
// console's Cognito sign-in (which sends the access token) is refused
// everywhere. Only an access token may stand on client_id.
func TestVerifyCognitoAccessToken(t *testing.T) {
	good := key(t, "good")
	v := NewVerifier(VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, RolesClaim: "cognito:groups",
		JWKS: ptr(jwks(good)), Now: func() time.Time { return t0 },
	})
	edit := func(f func(map[string]any)) string {
		c := cognitoAccessClaims()
		f(c)
		return signRS(t, good, c)
	}
	tests := []struct {
		name  string
		token string
		ok    bool
	}{
		{"cognito access token", edit(func(map[string]any) {}), true},
		{"access token for another app client", edit(func(c map[string]any) { c["client_id"] = "another-client" }), false},
		{"access token without client_id", edit(func(c map[string]any) { delete(c, "client_id") }), false},
		{"access token with an empty client_id", edit(func(c map[string]any) { c["client_id"] = "" }), false},
		{"client_id not a string", edit(func(c map[string]any) { c["client_id"] = []string{testAudience} }), false},
		{"id token without aud", edit(func(c map[string]any) { c["token_use"] = "id" }), false},
		{"no token_use", edit(func(c map[string]any) { delete(c, "token_use") }), false},
		{"token_use in another case", edit(func(c map[string]any) { c["token_use"] = "Access" }), false},
		// "aud" decides when present, as in API Gateway: a matching
		// client_id does not rescue a wrong aud.
		{"wrong aud, right client_id", edit(func(c map[string]any) { c["aud"] = "someone-else" }), false},
		{"right aud, other client_id", edit(func(c map[string]any) { c["aud"] = testAudience; c["client_id"] = "x" }), true},
		{"cognito id token", edit(func(c map[string]any) {
			delete(c, "client_id")
			c["token_use"] = "id"
			c["aud"] = testAudience
		}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := v.Verify(context.Background(), tt.token)
			if !tt.ok {
				if !errors.Is(err, ErrUnauthenticated) {
					t.Fatalf("Verify = %+v, %v; want ErrUnauthenticated", p, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Subject != "alice" || !p.Has(RolePlatformAdmin) {
				t.Fatalf("principal %+v", p)
			}
		})
	}
}

func TestVerifyFetchesJWKS(t *testing.T) {
	k1, k2, k3 := key(t, "k1"), key(t, "k2"), key(t, "k3")
	srv := newJWKSServer(t, jwks(k1))
	now := t0
	v := NewVerifier(VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL,
		Now: func() time.Time { return now },
	})
	ctx := context.Background()

	step := func(name string, tok string, wantOK bool, wantHits int32) {
		t.Helper()
		_, _, err := v.Verify(ctx, tok)
		if (err == nil) != wantOK {
			t.Errorf("%s: err = %v, want ok=%v", name, err, wantOK)
		}
		if got := srv.hits.Load(); got != wantHits {
			t.Errorf("%s: JWKS hits = %d, want %d", name, got, wantHits)
		}
	}
	c := with(func(c map[string]any) { c["exp"] = t0.Add(24 * time.Hour).Unix() })

	step("first token fetches", signRS(t, k1, c), true, 1)
	step("known kid is cached", signRS(t, k1, c), true, 1)
	step("unknown kid within 30s of the fetch", signRS(t, k2, c), false, 1)

	now = now.Add(31 * time.Second)
	srv.serve(jwks(k1, k2)) // the issuer rotates in a new key
	step("unknown kid refetches", signRS(t, k2, c), true, 2)
	step("second unknown kid within 30s does not refetch", signRS(t, k3, c), false, 2)
	step("and again", signRS(t, k3, c), false, 2)
	step("known keys still work", signRS(t, k1, c), true, 2)

	now = now.Add(31 * time.Second)
	srv.serve(jwks(k2)) // k1 retired
	step("forged kid after 30s refetches once", signRS(t, k3, c), false, 3)
	step("retired key is gone", signRS(t, k1, c), false, 3)
}

func TestVerifyJWKSDown(t *testing.T) {
	k := key(t, "good")
	tok := signRS(t, k, claims())
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "boom", http.StatusInternalServerError)
	}))
	defer failing.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("{not json"))
	}))
	defer garbage.Close()

	for name, url := range map[string]string{
		"500":           failing.URL,
		"refused":       closed.URL,
		"not JSON":      garbage.URL,
		"malformed url": "://nope",
	} {
		t.Run(name, func(t *testing.T) {
			v := NewVerifier(VerifierConfig{
				Issuer: testIssuer, Audience: testAudience, JWKSURL: url,
				Now: func() time.Time { return t0 },
			})
			_, _, err := v.Verify(context.Background(), tok)
			if !errors.Is(err, ErrUnauthenticated) || !strings.Contains(err.Error(), "signing keys") {
				t.Fatalf("err = %v", err)
			}
		})
	}
}

func TestVerifyRespectsContext(t *testing.T) {
	k := key(t, "good")
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-block:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(block)
	v := NewVerifier(VerifierConfig{
		Issuer: testIssuer, Audience: testAudience, JWKSURL: srv.URL,
		Now: func() time.Time { return t0 },
	})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, _, err := v.Verify(ctx, signRS(t, k, claims()))
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("err = %v", err)
	}
}

func TestIndexKeysSkipsUnusableKeys(t *testing.T) {
	k := key(t, "good")
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	enc := k.public()
	enc.KeyID, enc.Use = "enc", "enc"
	ps := k.public()
	ps.KeyID, ps.Algorithm = "ps", string(jose.PS256)
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		k.public(), enc, ps,
		{Key: &small.PublicKey, KeyID: "small"},
		{Key: []byte("0123456789abcdef0123456789abcdef"), KeyID: "hmac"},
	}}
	got := indexKeys(set)
	if len(got) != 1 || got["good"] == nil {
		t.Fatalf("indexKeys kept %v", got)
	}
}

func TestBearerToken(t *testing.T) {
	tests := []struct {
		header, want string
		ok           bool
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", true},
		{"bearer abc", "abc", true},
		{"BEARER   abc  ", "abc", true},
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic dXNlcjpwYXNz", "", false},
		{"abc.def.ghi", "", false},
	}
	for _, tt := range tests {
		got, err := BearerToken(tt.header)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("BearerToken(%q) = %q, %v", tt.header, got, err)
		}
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Errorf("BearerToken(%q) error %v is not ErrUnauthenticated", tt.header, err)
			}
			if strings.Contains(err.Error(), "dXNlcjpwYXNz") {
				t.Errorf("error echoes the credential: %v", err)
			}
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestVerifyRolesOnlyFromJSONArray: a roles claim that is a string, even
// one that reads like a list, grants nothing; only a JSON array does.
func TestVerifyRolesOnlyFromJSONArray(t *testing.T) {
	good := key(t, "good")
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, JWKS: ptr(jwks(good)), Now: func() time.Time { return t0 }})
	for _, tt := range []struct {
		name  string
		roles any
		want  []Role
	}{
		{"array", []string{"platform-admin"}, []Role{RolePlatformAdmin}},
		{"array with unknown", []any{"x", "support-team", 7}, nil},
		{"space-separated string", "x platform-admin", nil},
		{"rendered array string", "[support-team platform-admin]", nil},
		{"JSON text in a string", `["platform-admin"]`, nil},
		{"object", map[string]any{"platform-admin": true}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, _, err := v.Verify(context.Background(), signRS(t, good, with(func(c map[string]any) { c["roles"] = tt.roles })))
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(p.Roles) != fmt.Sprint(tt.want) {
				t.Fatalf("roles %v, want %v", p.Roles, tt.want)
			}
		})
	}
}

// TestVerifyCacheNeverOutlivesTheToken: a token served from the cache of
// verified tokens is refused once it expires, like a fresh one.
func TestVerifyCacheNeverOutlivesTheToken(t *testing.T) {
	good := key(t, "good")
	now := t0
	v := NewVerifier(VerifierConfig{Issuer: testIssuer, Audience: testAudience, JWKS: ptr(jwks(good)), Now: func() time.Time { return now }})
	tok := signRS(t, good, with(func(c map[string]any) { c["exp"] = t0.Add(time.Minute).Unix() }))
	for range 2 {
		if p, _, err := v.Verify(context.Background(), tok); err != nil || p.Subject != "alice" {
			t.Fatalf("fresh token: %+v, %v", p, err)
		}
	}
	now = t0.Add(time.Minute)
	if _, _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("expired token answered from the cache: %v", err)
	}
}
