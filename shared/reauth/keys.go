package reauth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"smtp-vault/shared/vault"
)

// KeyCacheTTL is how long a function instance verifies re-auth tokens
// with the signing key's public half as it last read it from Transit.
// Rotating the key or raising its minimum version in Vault reaches every
// instance within this time.
const KeyCacheTTL = time.Minute

// unknownVersionRefresh is how soon after a read a token signed with a
// version the instance has not seen makes it read the key again (a key
// rotated meanwhile), without letting forged versions force a read per
// request.
const unknownVersionRefresh = 5 * time.Second

// signingKeys verifies Transit signatures of the re-auth key. For an
// ed25519 key (what make run and the docs set up) it checks them locally
// with the public keys read from Transit: the private key never leaves
// Vault, and a guarded request costs no Vault round trip. For any other
// key type it asks Transit (transit/verify) every time.
type signingKeys struct {
	vault Vault
	name  string
	now   func() time.Time

	mu   sync.Mutex
	read time.Time // when keys was read; zero: never
	keys keySnapshot
}

// keySnapshot is the key as one read of Transit gave it.
type keySnapshot struct {
	minVersion int                       // older signatures are refused
	public     map[int]ed25519.PublicKey // by version; nil: not ed25519, ask Transit
}

// verify reports whether sig ("vault:v<N>:<base64>") signs input. A
// signature that cannot be checked at all (unknown or retired version,
// bad encoding) is vault.ErrBadRequest, as Transit answers it.
func (k *signingKeys) verify(ctx context.Context, input []byte, sig string) (bool, error) {
	version, raw, err := splitSignature(sig)
	if err != nil {
		return false, err
	}
	keys, err := k.load(ctx, version)
	if err != nil {
		return false, err
	}
	if keys.public == nil {
		return k.vault.Verify(ctx, k.name, input, sig)
	}
	pub, ok := keys.public[version]
	if !ok || version < keys.minVersion {
		return false, fmt.Errorf("reauth: signing key %s has no version %d to verify with: %w", k.name, version, vault.ErrBadRequest)
	}
	return ed25519.Verify(pub, input, raw), nil
}

// load returns the key as last read, reading it again when it is older
// than KeyCacheTTL, or when version is one it does not know and the last
// read is more than a few seconds old.
func (k *signingKeys) load(ctx context.Context, version int) (keySnapshot, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	now := k.now()
	age := now.Sub(k.read)
	_, known := k.keys.public[version]
	fresh := !k.read.IsZero() && age >= 0 && age < KeyCacheTTL
	if fresh && (known || age < unknownVersionRefresh || k.keys.public == nil) {
		return k.keys, nil
	}
	cur, err := k.vault.ReadSigningKey(ctx, k.name)
	if err != nil {
		return keySnapshot{}, err
	}
	keys := keySnapshot{minVersion: cur.MinVersion}
	if cur.Type == "ed25519" {
		keys.public = map[int]ed25519.PublicKey{}
		for v, pub := range cur.PublicKeys {
			b, err := base64.StdEncoding.DecodeString(pub)
			if err != nil || len(b) != ed25519.PublicKeySize {
				return keySnapshot{}, fmt.Errorf("reauth: signing key %s version %d: %w: not an ed25519 public key", k.name, v, vault.ErrUnavailable)
			}
			keys.public[v] = ed25519.PublicKey(b)
		}
	}
	k.read, k.keys = now, keys
	return keys, nil
}

// splitSignature takes Transit's "vault:v<N>:<base64>" apart.
func splitSignature(sig string) (int, []byte, error) {
	rest, ok := strings.CutPrefix(sig, "vault:v")
	ver, b64sig, ok2 := strings.Cut(rest, ":")
	version, err := strconv.Atoi(ver)
	if !ok || !ok2 || err != nil || version < 1 {
		return 0, nil, fmt.Errorf("reauth: malformed signature: %w", vault.ErrBadRequest)
	}
	raw, err := base64.StdEncoding.DecodeString(b64sig)
	if err != nil {
		return 0, nil, fmt.Errorf("reauth: malformed signature: %w", vault.ErrBadRequest)
	}
	return version, raw, nil
}
