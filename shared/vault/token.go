package vault

import (
	"context"
	"fmt"
	"sort"

	vaultapi "github.com/hashicorp/vault/api"
)

// TokenPolicies logs in when needed and returns the policies of the
// client's own token, sorted (auth/token/lookup-self, which Vault's
// default policy allows): what this identity may do in Vault.
func (c *Client) TokenPolicies(ctx context.Context) ([]string, error) {
	var s *vaultapi.Secret
	err := c.call(ctx, "token lookup-self", func() (err error) {
		s, err = c.api.Auth().Token().LookupSelfWithContext(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	p, err := s.TokenPolicies()
	if err != nil {
		return nil, fmt.Errorf("vault: token lookup-self: %w: %w", ErrUnavailable, err)
	}
	sort.Strings(p)
	return p, nil
}
