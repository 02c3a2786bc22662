package vault

import (
	"context"
	"encoding/base64"
	"fmt"

	vaultapi "github.com/hashicorp/vault/api"
)

// DataKey asks Transit for a new 256-bit data key under the named key,
// derived for derivationContext (the tenant id). It returns the plaintext
// key, which the caller must wipe after use, and the key wrapped by Transit
// exactly as Vault returned it ("vault:v<N>:...").
func (c *Client) DataKey(ctx context.Context, key, derivationContext string) ([]byte, string, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, "transit datakey "+key, func() (err error) {
		s, err = c.api.Logical().WriteWithContext(ctx, c.cfg.TransitMount+"/datakey/plaintext/"+key, map[string]any{
			"context": b64(derivationContext),
			"bits":    256,
		})
		return err
	})
	if err != nil {
		return nil, "", err
	}
	pt, _ := field(s, "plaintext")
	wrapped, _ := field(s, "ciphertext")
	dk, derr := base64.StdEncoding.DecodeString(pt)
	if derr != nil || len(dk) != 32 || wrapped == "" {
		return nil, "", fmt.Errorf("vault: transit datakey %s: %w: malformed response", key, ErrUnavailable)
	}
	return dk, wrapped, nil
}

// Decrypt unwraps a data key wrapped by DataKey (or Rewrap) under the named
// key for derivationContext. The caller must wipe the result after use.
func (c *Client) Decrypt(ctx context.Context, key, derivationContext, wrapped string) ([]byte, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, "transit decrypt "+key, func() (err error) {
		s, err = c.api.Logical().WriteWithContext(ctx, c.cfg.TransitMount+"/decrypt/"+key, map[string]any{
			"ciphertext": wrapped,
			"context":    b64(derivationContext),
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	pt, _ := field(s, "plaintext")
	dk, derr := base64.StdEncoding.DecodeString(pt)
	if derr != nil {
		return nil, fmt.Errorf("vault: transit decrypt %s: %w: malformed response", key, ErrUnavailable)
	}
	return dk, nil
}

// Rewrap re-encrypts a wrapped data key under the newest version of the
// named key without the plaintext leaving Vault.
func (c *Client) Rewrap(ctx context.Context, key, derivationContext, wrapped string) (string, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, "transit rewrap "+key, func() (err error) {
		s, err = c.api.Logical().WriteWithContext(ctx, c.cfg.TransitMount+"/rewrap/"+key, map[string]any{
			"ciphertext": wrapped,
			"context":    b64(derivationContext),
		})
		return err
	})
	if err != nil {
		return "", err
	}
	out, ok := field(s, "ciphertext")
	if !ok || out == "" {
		return "", fmt.Errorf("vault: transit rewrap %s: %w: malformed response", key, ErrUnavailable)
	}
	return out, nil
}

// RotateKey adds a new version of the named Transit key; new data keys are
// wrapped with it, old wrapped keys still decrypt until rewrapped.
func (c *Client) RotateKey(ctx context.Context, key string) error {
	return c.call(ctx, "transit rotate "+key, func() error {
		_, err := c.api.Logical().WriteWithContext(ctx, c.cfg.TransitMount+"/keys/"+key+"/rotate", nil)
		return err
	})
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func field(s *vaultapi.Secret, name string) (string, bool) {
	if s == nil || s.Data == nil {
		return "", false
	}
	v, ok := s.Data[name].(string)
	return v, ok
}
