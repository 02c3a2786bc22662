package vault

import (
	"context"
	"fmt"
)

// Health is what Vault's sys/health says about the server.
type Health struct {
	Initialized bool
	Sealed      bool
	Version     string
}

// Health reads sys/health; it needs no token. A sealed Vault is reported in
// the result, not as an error.
func (c *Client) Health(ctx context.Context) (Health, error) {
	h, err := c.api.Sys().HealthWithContext(ctx)
	if err != nil {
		return Health{}, classify("health", err)
	}
	if h == nil {
		return Health{}, fmt.Errorf("vault: health: %w: empty response", ErrUnavailable)
	}
	return Health{Initialized: h.Initialized, Sealed: h.Sealed, Version: h.Version}, nil
}
