package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
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

// FuzzJWKS: whatever the identity provider's JWKS URL serves, parseJWKS
// either refuses it or keeps only RSA signing keys with a kid, of
// minRSABits to maxRSABits bits and a public exponent RSA verification
// accepts; it never panics.
func FuzzJWKS(f *testing.F) {
	good := key(f, "good")
	doc, err := json.Marshal(jwks(good))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(doc)
	f.Add([]byte(`{"keys":[]}`))
	f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"a","n":"AQAB","e":"AQAB"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"EC","kid":"e","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Add([]byte(`null`))
	f.Add([]byte(strings.Replace(string(doc), `"e":"AQAB"`, `"e":"AQ"`, 1)))
	// A modulus of 2049 and of 8193 bits (2^k+1: shape only, as a JWKS
	// parser sees it), with an even and an odd exponent.
	for _, bits := range []uint{2048, 8192} {
		n := new(big.Int).Lsh(big.NewInt(1), bits)
		n.Add(n, big.NewInt(1))
		for _, e := range []string{"Ag", "AQAB"} {
			f.Add([]byte(`{"keys":[{"kty":"RSA","kid":"k","n":"` + base64.RawURLEncoding.EncodeToString(n.Bytes()) + `","e":"` + e + `"}]}`))
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		set, err := parseJWKS(body)
		if err != nil {
			return
		}
		for kid, k := range set {
			if kid == "" || k == nil || k.N == nil {
				t.Fatalf("kept key %q: %v", kid, k)
			}
			if bits := k.N.BitLen(); bits < minRSABits || bits > maxRSABits {
				t.Fatalf("kept key %q of %d bits", kid, bits)
			}
			if k.E < 3 || k.E%2 == 0 {
				t.Fatalf("kept key %q with public exponent %d", kid, k.E)
			}
		}
	})
}
