package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"smtp-vault/shared/vault"
)

// Transit is what Keys needs from Vault's Transit engine.
type Transit interface {
	DataKey(ctx context.Context, key, derivationContext string) ([]byte, string, error)
	Decrypt(ctx context.Context, key, derivationContext, wrapped string) ([]byte, error)
}

// MACContext is the Transit derivation context of every audit MAC data
// key: the MAC key is a derived Transit key, and this names its one use.
const MACContext = "smtp-vault-audit-record"

// Keys holds the key material that makes audit records unforgeable by
// anyone who can only write to the bucket. Each function instance asks
// Transit once for a data key (its plaintext stays in memory, its wrapped
// form is named in every record it writes) and MACs its records with it:
// no Vault round trip per record. Verifying unwraps each distinct wrapped
// key once (transit/decrypt), which only a Vault identity allowed to use
// the MAC key can do.
type Keys struct {
	transit Transit
	name    string

	mu      sync.Mutex
	wrapped string            // this instance's key, once fetched
	known   map[string][]byte // wrapped -> plaintext, including ours
	bad     map[string]bool   // wrapped forms Transit refused to unwrap
}

// NewKeys returns the keys of the Transit key name (a derived
// aes256-gcm96 key used for nothing else). It does not contact Vault.
func NewKeys(t Transit, name string) *Keys {
	return &Keys{transit: t, name: name, known: map[string][]byte{}, bad: map[string]bool{}}
}

// errForgedKey: the wrapped key named in a record is not one Transit
// issued under the MAC key.
var errForgedKey = errors.New("audit: the record's mac_key is not a key Vault issued")

// signing returns this instance's key and its wrapped form, fetching them
// from Transit the first time (and again after a failure).
func (k *Keys) signing(ctx context.Context) (string, []byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.wrapped != "" {
		return k.wrapped, k.known[k.wrapped], nil
	}
	key, wrapped, err := k.transit.DataKey(ctx, k.name, MACContext)
	if err != nil {
		return "", nil, fmt.Errorf("fetch the audit MAC key: %w", err)
	}
	k.wrapped, k.known[wrapped] = wrapped, key
	return wrapped, key, nil
}

// unwrap returns the plaintext of a wrapped key named in a record.
// errForgedKey when Transit refuses it; any other error means Vault could
// not answer, and says nothing about the record.
func (k *Keys) unwrap(ctx context.Context, wrapped string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if key, ok := k.known[wrapped]; ok {
		return key, nil
	}
	if k.bad[wrapped] {
		return nil, errForgedKey
	}
	key, err := k.transit.Decrypt(ctx, k.name, MACContext, wrapped)
	switch {
	case errors.Is(err, vault.ErrBadRequest):
		k.bad[wrapped] = true
		return nil, errForgedKey
	case err != nil:
		return nil, fmt.Errorf("unwrap an audit MAC key: %w", err)
	case len(key) != 32:
		return nil, errForgedKey
	}
	k.known[wrapped] = key
	return key, nil
}

// macSuffix is how every stored record ends: `,"mac":"<64 hex>"}`.
const (
	macPrefix = `,"mac":"`
	macLen    = len(macPrefix) + 2*sha256.Size + len(`"}`)
)

// sign encodes r (whose MAC is ignored) with its MAC under this
// instance's key, as the bytes to store.
func (k *Keys) sign(ctx context.Context, r Record) ([]byte, error) {
	wrapped, key, err := k.signing(ctx)
	if err != nil {
		return nil, err
	}
	r.MACKey, r.MAC = wrapped, ""
	unsigned, err := EncodeRecord(r)
	if err != nil {
		return nil, err
	}
	out := append(unsigned[:len(unsigned)-1:len(unsigned)-1], macPrefix...)
	out = append(out, mac(key, unsigned)...)
	return append(out, `"}`...), nil
}

// checkMAC reports whether object carries a valid MAC under the key it
// names. errForgedKey (wrapped) or errBadMAC: it does not; any other
// error: Vault could not answer.
func (k *Keys) checkMAC(ctx context.Context, object []byte, r Record) error {
	unsigned, tag, ok := splitMAC(object)
	if !ok || r.MACKey == "" || tag != r.MAC {
		return errBadMAC
	}
	key, err := k.unwrap(ctx, r.MACKey)
	if err != nil {
		return err
	}
	if !hmac.Equal([]byte(mac(key, unsigned)), []byte(tag)) {
		return errBadMAC
	}
	return nil
}

var errBadMAC = errors.New("audit: the record's MAC does not verify")

// splitMAC splits a stored record into the bytes its MAC covers and the
// hex MAC.
func splitMAC(object []byte) (unsigned []byte, tag string, ok bool) {
	if len(object) < macLen+1 || !bytes.HasSuffix(object, []byte(`"}`)) {
		return nil, "", false
	}
	cut := len(object) - macLen
	if !bytes.Equal(object[cut:cut+len(macPrefix)], []byte(macPrefix)) {
		return nil, "", false
	}
	tag = string(object[cut+len(macPrefix) : len(object)-2])
	if _, err := hex.DecodeString(tag); err != nil {
		return nil, "", false
	}
	unsigned = append(object[:cut:cut], '}')
	return unsigned, tag, true
}

func mac(key, msg []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write(msg)
	return hex.EncodeToString(h.Sum(nil))
}
