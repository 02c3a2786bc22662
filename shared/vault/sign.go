package vault

import (
	"context"
	"encoding/base64"
	"fmt"
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
