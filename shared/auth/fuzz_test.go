package auth

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// FuzzBearerToken: whatever arrives in an Authorization header and as
// the token, the verifier either accepts a token signed by the JWKS's key
// for this issuer and audience, or refuses with ErrUnauthenticated; it
// never panics. An accepted token is the one the test signed, possibly
// re-encoded, and yields the claims it carries.
func FuzzBearerToken(f *testing.F) {
	good := key(f, "good")
	v := NewVerifier(VerifierConfig{
		Issuer: testIssuer, Audience: testAudience,
		JWKS: ptr(jwks(good)), Now: func() time.Time { return t0 },
	})
	valid := signRS(f, good, claims())
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		"Bearer " + valid,
		"bearer   " + valid + "  ",
		"Basic " + valid,
		"Bearer " + parts[0] + "." + parts[1] + ".",
		"Bearer " + b64(map[string]string{"alg": "none", "kid": "good"}) + "." + parts[1] + ".",
		"Bearer " + b64(map[string]string{"alg": "HS256", "kid": "good"}) + "." + parts[1] + "." + parts[2],
		"Bearer a.b.c.d.e",
		"Bearer " + strings.Repeat("A", 9000),
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, header string) {
		claims, err := v.Authorize(context.Background(), header)
		if err != nil {
			if !errors.Is(err, ErrUnauthenticated) {
				t.Fatalf("refusal %v does not wrap ErrUnauthenticated", err)
			}
			return
		}
		if claims["iss"] != testIssuer || claims["sub"] == "" {
			t.Fatalf("accepted %q with claims %v", header, claims)
		}
		tok, _ := BearerToken(header)
		if tp := strings.Split(tok, "."); len(tp) != 3 || tp[2] != parts[2] {
			t.Fatalf("accepted a token not signed by the test: %q", tok)
		}
	})
}
