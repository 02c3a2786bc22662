package auth

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	// leeway absorbs clock skew between the issuer and us for nbf and iat.
	leeway = 30 * time.Second
	// maxTokenBytes bounds the work an unauthenticated caller can cause.
	maxTokenBytes = 16 << 10
)

// VerifierConfig says which tokens a Verifier accepts.
type VerifierConfig struct {
	Issuer string // "iss" must equal this
	// Audience must be in "aud" or, in an access token without "aud"
	// (Cognito's: "token_use" "access"), equal its "client_id".
	Audience string

	// JWKSURL is where the signing keys are fetched from. The keys are
	// cached; a token naming an unknown kid triggers a refetch at most
	// every 30 seconds.
	JWKSURL string
	// JWKS, when set, is used instead of JWKSURL and never refetched.
	JWKS *jose.JSONWebKeySet

	// RolesClaim is the claim holding roles; DefaultRolesClaim if empty.
	RolesClaim string
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Verifier checks bearer tokens as API Gateway's JWT authorizer does: RS256
// signatures by a key from the JWKS (chosen by the token's kid), the issuer,
// the audience, and exp, nbf and iat. It is safe for concurrent use.
type Verifier struct {
	issuer     string
	audience   string
	rolesClaim string
	now        func() time.Time
	keys       *keySource
	verified   verifiedCache
}

// NewVerifier returns a Verifier for cfg. Nothing is fetched until the first
// token arrives.
func NewVerifier(cfg VerifierConfig) *Verifier {
	v := &Verifier{
		issuer:     cfg.Issuer,
		audience:   cfg.Audience,
		rolesClaim: cfg.RolesClaim,
		now:        cfg.Now,
	}
	if v.rolesClaim == "" {
		v.rolesClaim = DefaultRolesClaim
	}
	if v.now == nil {
		v.now = time.Now
	}
	v.keys = &keySource{url: cfg.JWKSURL, now: v.now, client: &http.Client{Timeout: jwksTimeout}}
	if cfg.JWKS != nil {
		v.keys.static = true
		v.keys.set = indexKeys(*cfg.JWKS)
	}
	return v
}

// Verify checks rawToken and returns the caller and the claims in the form
// API Gateway passes them to a Lambda. Every failure wraps
// ErrUnauthenticated, except that a canceled ctx is reported as such.
//
// The roles come from the token itself and only from a JSON array of
// strings in the roles claim: a string claim such as "x platform-admin"
// grants nothing, whatever a rendering of the claims looks like.
func (v *Verifier) Verify(ctx context.Context, rawToken string) (Principal, map[string]string, error) {
	if p, claims, ok := v.verified.get(rawToken, v.now(), v.keys.holds); ok {
		return p, claims, nil
	}
	claims, payload, kid, key, err := v.verifyPayload(ctx, rawToken)
	if err != nil {
		return Principal{}, nil, err
	}
	p, err := principalFromPayload(payload, v.rolesClaim)
	if err != nil {
		return Principal{}, nil, err
	}
	v.verified.put(rawToken, p, claims, payload, kid, key)
	return p, claims, nil
}

// Authorize verifies the bearer token in an Authorization header and returns
// the claims, doing exactly what API Gateway's JWT authorizer does before a
// function runs (it does not require a subject or roles; handlers do).
func (v *Verifier) Authorize(ctx context.Context, authorizationHeader string) (map[string]string, error) {
	token, err := BearerToken(authorizationHeader)
	if err != nil {
		return nil, err
	}
	return v.verify(ctx, token)
}

func (v *Verifier) verify(ctx context.Context, raw string) (map[string]string, error) {
	claims, _, _, _, err := v.verifyPayload(ctx, raw)
	return claims, err
}

// verifyPayload checks a token and returns its claims rendered as API
// Gateway renders them, and the verified JSON payload.
func (v *Verifier) verifyPayload(ctx context.Context, raw string) (claims map[string]string, payload []byte, kid string, key *rsa.PublicKey, err error) {
	if raw == "" {
		return nil, nil, "", nil, unauthenticated("empty token")
	}
	if len(raw) > maxTokenBytes {
		return nil, nil, "", nil, unauthenticated("token too large")
	}
	// The algorithm allow-list is the defence against "none" and against
	// HS256 tokens keyed with the public key: both fail to parse.
	jws, err := jose.ParseSignedCompact(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, nil, "", nil, unauthenticated("malformed token or algorithm other than RS256")
	}
	if len(jws.Signatures) != 1 {
		return nil, nil, "", nil, unauthenticated("token must carry exactly one signature")
	}
	kid = jws.Signatures[0].Header.KeyID
	if kid == "" {
		return nil, nil, "", nil, unauthenticated("token has no kid")
	}
	key, err = v.keys.key(ctx, kid)
	if err != nil {
		return nil, nil, "", nil, err
	}
	payload, err = jws.Verify(key)
	if err != nil {
		return nil, nil, "", nil, unauthenticated("bad signature")
	}

	var std tokenClaims
	if err := json.Unmarshal(payload, &std); err != nil {
		return nil, nil, "", nil, unauthenticated("malformed claims")
	}
	if err := v.validate(std); err != nil {
		return nil, nil, "", nil, err
	}
	claims, err = renderClaims(payload)
	if err != nil {
		return nil, nil, "", nil, unauthenticated("malformed claims")
	}
	return claims, payload, kid, key, nil
}

// tokenClaims are the registered claims plus the two Cognito puts in an
// access token in place of "aud".
type tokenClaims struct {
	jwt.Claims
	TokenUse string `json:"token_use"`
	ClientID string `json:"client_id"`
}

// audienceOK applies API Gateway's JWT authorizer rule: "aud" decides when
// present; without it, only an access token's "client_id" can stand in,
// so an ID token (or any other) without "aud" is refused.
func (c tokenClaims) audienceOK(audience string) bool {
	if len(c.Audience) > 0 {
		return c.Audience.Contains(audience)
	}
	return c.TokenUse == "access" && c.ClientID != "" && c.ClientID == audience
}

func (v *Verifier) validate(c tokenClaims) error {
	now := v.now()
	switch {
	case c.Issuer != v.issuer:
		return unauthenticated("wrong issuer")
	case !c.audienceOK(v.audience):
		return unauthenticated("wrong audience")
	case c.Expiry == nil:
		return unauthenticated("token has no exp")
	case !now.Before(c.Expiry.Time()):
		return unauthenticated("token expired")
	case c.NotBefore != nil && now.Add(leeway).Before(c.NotBefore.Time()):
		return unauthenticated("token not yet valid")
	case c.IssuedAt != nil && now.Add(leeway).Before(c.IssuedAt.Time()):
		return unauthenticated("token issued in the future")
	}
	return nil
}

// BearerToken returns the token from an Authorization header of the form
// "Bearer <token>" (the scheme is case-insensitive).
func BearerToken(authorizationHeader string) (string, error) {
	h := strings.TrimSpace(authorizationHeader)
	if h == "" {
		return "", unauthenticated("no Authorization header")
	}
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", unauthenticated("Authorization header is not a bearer token")
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return "", unauthenticated("empty bearer token")
	}
	return token, nil
}

func unauthenticated(reason string) error {
	return fmt.Errorf("%w: %s", ErrUnauthenticated, reason)
}

// keySource holds the verification keys by kid and refreshes them from the
// JWKS URL when a token names a kid it does not know.
type keySource struct {
	url    string
	static bool
	client *http.Client
	now    func() time.Time

	// mu is held across a fetch so that concurrent unknown kids cause one
	// request; fetches are rare, bounded by jwksTimeout and rate limited.
	mu        sync.Mutex
	set       map[string]*rsa.PublicKey
	nextFetch time.Time
}

const (
	jwksTimeout = 5 * time.Second
	// refetchEvery limits how often unknown kids can make us call the JWKS
	// URL, so forged kids cannot turn us into a request amplifier.
	refetchEvery = 30 * time.Second
	// retryFailedFetch is shorter so a cold start that meets a blip does
	// not refuse every caller for half a minute.
	retryFailedFetch = 5 * time.Second
	maxJWKSBytes     = 1 << 20
	minRSABits       = 2048
	maxRSABits       = 8192 // go-jose's own bound; bounds a verification's cost
)

// holds says whether kid still names key, without fetching: a cached
// verification is void once its key is retired or replaced.
func (s *keySource) holds(kid string, key *rsa.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.set[kid]
	return ok && k.Equal(key)
}

func (s *keySource) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if k, ok := s.set[kid]; ok {
		return k, nil
	}
	if s.static || s.url == "" {
		return nil, unauthenticated("unknown kid")
	}
	now := s.now()
	if now.Before(s.nextFetch) {
		return nil, unauthenticated("unknown kid")
	}
	set, err := s.fetch(ctx)
	if err != nil {
		s.nextFetch = now.Add(retryFailedFetch)
		return nil, fmt.Errorf("%w: fetching signing keys: %w", ErrUnauthenticated, err)
	}
	s.nextFetch = now.Add(refetchEvery)
	s.set = set
	if k, ok := s.set[kid]; ok {
		return k, nil
	}
	return nil, unauthenticated("unknown kid")
}

func (s *keySource) fetch(ctx context.Context) (map[string]*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("JWKS answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, errors.New("JWKS too large")
	}
	return parseJWKS(body)
}

// parseJWKS reads a JWKS document into the keys that may verify tokens
// (indexKeys).
func parseJWKS(body []byte) (map[string]*rsa.PublicKey, error) {
	// Decode key by key: one key of a type go-jose cannot read (a new curve,
	// say) must not take the RSA keys down with it.
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, fmt.Errorf("decoding JWKS: %w", err)
	}
	var set jose.JSONWebKeySet
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if k.UnmarshalJSON(raw) == nil {
			set.Keys = append(set.Keys, k)
		}
	}
	return indexKeys(set), nil
}

// indexKeys keeps the keys that can verify RS256 signatures: RSA public keys
// with a kid, meant for signing (or with no use given), and with no alg or
// alg RS256, of minRSABits to maxRSABits with an odd public exponent. The
// first such key wins for a kid.
func indexKeys(set jose.JSONWebKeySet) map[string]*rsa.PublicKey {
	out := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.KeyID == "" || !slices.Contains([]string{"", "sig"}, k.Use) ||
			!slices.Contains([]string{"", string(jose.RS256)}, k.Algorithm) {
			continue
		}
		var pub *rsa.PublicKey
		switch key := k.Key.(type) {
		case *rsa.PublicKey:
			pub = key
		case *rsa.PrivateKey:
			pub = &key.PublicKey
		default:
			continue
		}
		// An even or tiny exponent is no RSA key; go-jose refuses only 1.
		if bits := pub.N.BitLen(); bits < minRSABits || bits > maxRSABits || pub.E < 3 || pub.E%2 == 0 {
			continue
		}
		if _, dup := out[k.KeyID]; !dup {
			out[k.KeyID] = pub
		}
	}
	return out
}
