package reauth

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"smtp-vault/shared/vault"
)

// A re-auth token is
//
//	base64url(payload) "." base64url(signature)
//
// where payload is the JSON of Claims and signature is Transit's signature
// of the first part's bytes, as Transit returns it ("vault:v<N>:<base64>",
// so the key version travels with the token and the key can be rotated).
// The signing key never leaves Vault.

// maxTokenBytes bounds what an unverified token can make us parse.
const maxTokenBytes = 2048

// clockLeeway absorbs clock skew between function instances for iat.
const clockLeeway = 30 * time.Second

// Methods of authentication a token attests (RFC 8176 names).
const (
	amrPassword = "pwd"
	amrOTP      = "otp"
)

// Claims are the payload of a re-auth token.
type Claims struct {
	Subject   string   `json:"sub"` // the bearer token's subject
	IssuedAt  int64    `json:"iat"` // Unix seconds
	ExpiresAt int64    `json:"exp"` // Unix seconds
	AMR       []string `json:"amr"` // ["pwd","otp"]
	ID        string   `json:"jti"` // unique per token, for the audit trail
}

// Expiry is when the token stops being accepted: when a view it opened
// must close.
func (c Claims) Expiry() time.Time { return time.Unix(c.ExpiresAt, 0).UTC() }

// Issued is a new re-auth token.
type Issued struct {
	Token  string
	Claims Claims
}

var b64 = base64.RawURLEncoding.Strict()

// issue signs a token for subject, valid from now for the service's TTL.
func (s *Service) issue(ctx context.Context, subject string, now time.Time) (Issued, error) {
	c := Claims{
		Subject:   subject,
		IssuedAt:  now.Unix(),
		ExpiresAt: now.Add(s.cfg.TTL).Unix(),
		AMR:       []string{amrPassword, amrOTP},
		ID:        rand.Text(),
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return Issued{}, fmt.Errorf("reauth: encode claims: %w", err)
	}
	head := b64.EncodeToString(payload)
	sig, err := s.cfg.Vault.Sign(ctx, s.cfg.SigningKey, []byte(head))
	if err != nil {
		return Issued{}, unavailable("sign the re-auth token", err)
	}
	return Issued{Token: head + "." + b64.EncodeToString([]byte(sig)), Claims: c}, nil
}

// splitToken parses a re-auth token's form, <base64url payload>.<base64url
// Transit signature>, before any signature check: the signed head, the
// payload and the signature ("vault:v<N>:...").
func splitToken(token string) (head string, payload []byte, sig string, err error) {
	if token == "" {
		return "", nil, "", required("missing")
	}
	if len(token) > maxTokenBytes {
		return "", nil, "", required("malformed")
	}
	head, tail, ok := strings.Cut(token, ".")
	if !ok || strings.Contains(tail, ".") {
		return "", nil, "", required("malformed")
	}
	payload, err1 := b64.DecodeString(head)
	rawSig, err2 := b64.DecodeString(tail)
	// The decoder skips CR and LF even in strict mode: a token is accepted
	// only in its one canonical spelling, so no two strings are the same
	// token (found by FuzzSplitToken).
	if err1 != nil || err2 != nil || !bytes.HasPrefix(rawSig, []byte("vault:v")) ||
		b64.EncodeToString(payload) != head || b64.EncodeToString(rawSig) != tail {
		return "", nil, "", required("malformed")
	}
	return head, payload, string(rawSig), nil
}

// Verify checks a re-auth token presented by subject: Transit's signature,
// then expiry, lifetime, the methods it attests and that it was issued to
// subject. Every refusal is an *Error of kind ErrRequired; only a Vault
// that cannot be asked is ErrUnavailable.
func (s *Service) Verify(ctx context.Context, token, subject string) (Claims, error) {
	head, payload, sig, err := splitToken(token)
	if err != nil {
		return Claims{}, err
	}
	valid, err := s.keys.verify(ctx, []byte(head), sig)
	switch {
	case errors.Is(err, vault.ErrBadRequest):
		return Claims{}, required("bad_signature") // e.g. a key version that does not exist
	case err != nil:
		return Claims{}, unavailable("verify the re-auth token", err)
	case !valid:
		return Claims{}, required("bad_signature")
	}
	var c Claims
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || dec.Decode(new(any)) != io.EOF {
		return Claims{}, required("malformed")
	}
	now := s.now()
	iat, exp := time.Unix(c.IssuedAt, 0), c.Expiry()
	switch {
	case c.Subject == "" || c.Subject != subject:
		return Claims{}, required("other_subject")
	case !now.Before(exp):
		return Claims{}, required("expired")
	case iat.After(now.Add(clockLeeway)) || !exp.After(iat) || exp.Sub(iat) > MaxTTL:
		return Claims{}, required("invalid_lifetime")
	case !slices.Contains(c.AMR, amrPassword) || !slices.Contains(c.AMR, amrOTP):
		return Claims{}, required("insufficient_proof")
	}
	return c, nil
}
