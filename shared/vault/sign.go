package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// Sign signs input with the named asymmetric Transit key (transit/sign)
// and returns the signature as Vault returned it ("vault:v<N>:<base64>").
// The private key never leaves Vault.
func (c *Client) Sign(ctx context.Context, key string, input []byte) (string, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, "transit sign "+key, func() (err error) {
		s, err = c.api.Logical().WriteWithContext(ctx, c.cfg.TransitMount+"/sign/"+key, map[string]any{
			"input": base64.StdEncoding.EncodeToString(input),
		})
		return err
	})
	if err != nil {
		return "", err
	}
	sig, _ := field(s, "signature")
	if !strings.HasPrefix(sig, "vault:v") {
		return "", fmt.Errorf("vault: transit sign %s: %w: malformed response", key, ErrUnavailable)
	}
	return sig, nil
}

// Verify checks a signature made by Sign (transit/verify). A signature
// that does not match is (false, nil); one Vault cannot even read (an
// unknown key version, bad encoding) is ErrBadRequest.
func (c *Client) Verify(ctx context.Context, key string, input []byte, signature string) (bool, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, "transit verify "+key, func() (err error) {
		s, err = c.api.Logical().WriteWithContext(ctx, c.cfg.TransitMount+"/verify/"+key, map[string]any{
			"input":     base64.StdEncoding.EncodeToString(input),
			"signature": signature,
		})
		return err
	})
	if err != nil {
		return false, err
	}
	if s == nil || s.Data == nil {
		return false, fmt.Errorf("vault: transit verify %s: %w: malformed response", key, ErrUnavailable)
	}
	valid, ok := s.Data["valid"].(bool)
	if !ok {
		return false, fmt.Errorf("vault: transit verify %s: %w: malformed response", key, ErrUnavailable)
	}
	return valid, nil
}

// SigningKey is what Transit tells anyone allowed to read an asymmetric
// key (transit/keys/<name>): its type, its public keys by version, and
// the oldest version it still verifies with. No private material.
type SigningKey struct {
	Type       string         // e.g. "ed25519"
	MinVersion int            // min_decryption_version: older signatures are refused
	PublicKeys map[int]string // version -> public key as Transit gives it (base64 for ed25519, PEM otherwise)
}

// ReadSigningKey reads the public side of an asymmetric Transit key.
func (c *Client) ReadSigningKey(ctx context.Context, key string) (SigningKey, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, "transit read key "+key, func() (err error) {
		s, err = c.api.Logical().ReadWithContext(ctx, c.cfg.TransitMount+"/keys/"+key)
		return err
	})
	if err != nil {
		return SigningKey{}, err
	}
	if s == nil || s.Data == nil {
		return SigningKey{}, fmt.Errorf("vault: transit read key %s: %w", key, ErrNotFound)
	}
	out := SigningKey{PublicKeys: map[int]string{}}
	out.Type, _ = s.Data["type"].(string)
	switch n := s.Data["min_decryption_version"].(type) {
	case json.Number:
		v, _ := n.Int64()
		out.MinVersion = int(v)
	case float64:
		out.MinVersion = int(n)
	}
	keys, _ := s.Data["keys"].(map[string]any)
	for ver, k := range keys {
		n, err := strconv.Atoi(ver)
		if err != nil {
			continue
		}
		if m, ok := k.(map[string]any); ok {
			if pub, ok := m["public_key"].(string); ok && pub != "" {
				out.PublicKeys[n] = pub
			}
		}
	}
	if out.Type == "" || out.MinVersion < 1 || len(out.PublicKeys) == 0 {
		return SigningKey{}, fmt.Errorf("vault: transit read key %s: %w: not an asymmetric key with public keys", key, ErrUnavailable)
	}
	return out, nil
}
