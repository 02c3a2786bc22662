package auth

import (
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"maps"
	"sync"
	"time"
)

// verifiedCache remembers tokens that verified, until their expiry, so
// that a function checking the same bearer token on every request of a
// session pays the RSA verification once per instance (API Gateway's
// authorizer caches the same way). Keys are SHA-256 of the token; the
// cache is bounded and starts afresh when full.
type verifiedCache struct {
	mu      sync.Mutex
	entries map[[32]byte]verifiedEntry
}

type verifiedEntry struct {
	kid    string
	key    *rsa.PublicKey
	p      Principal
	claims map[string]string
	exp    time.Time
	nbf    time.Time
}

// maxVerified bounds the cache: at a few hundred bytes an entry, well
// under a megabyte.
const maxVerified = 1024

func (c *verifiedCache) get(token string, now time.Time, holds func(kid string, key *rsa.PublicKey) bool) (Principal, map[string]string, bool) {
	key := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return Principal{}, nil, false
	}
	if !now.Before(e.exp) || now.Add(leeway).Before(e.nbf) || !holds(e.kid, e.key) {
		delete(c.entries, key)
		return Principal{}, nil, false
	}
	return e.p, maps.Clone(e.claims), true
}

func (c *verifiedCache) put(token string, p Principal, claims map[string]string, payload []byte, kid string, key *rsa.PublicKey) {
	var times struct {
		Exp *json.Number `json:"exp"`
		Nbf *json.Number `json:"nbf"`
	}
	if json.Unmarshal(payload, &times) != nil || times.Exp == nil {
		return
	}
	exp, err := times.Exp.Float64()
	if err != nil {
		return
	}
	e := verifiedEntry{kid: kid, key: key, p: p, claims: maps.Clone(claims), exp: time.Unix(int64(exp), 0)}
	if times.Nbf != nil {
		if nbf, err := times.Nbf.Float64(); err == nil {
			e.nbf = time.Unix(int64(nbf), 0)
		}
	}
	h := sha256.Sum256([]byte(token))
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil || len(c.entries) >= maxVerified {
		c.entries = make(map[[32]byte]verifiedEntry)
	}
	c.entries[h] = e
}
