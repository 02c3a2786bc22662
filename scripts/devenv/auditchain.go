package devenv

import (
	"context"
	"fmt"

	vaultapi "github.com/hashicorp/vault/api"
)

// What the audit chains use in Vault (the functions' defaults match).
const (
	AuditMACKey       = "audit-mac"          // derived Transit key; its data keys MAC the audit records
	AuditAnchorsMount = "smtp-audit-anchors" // KV v2: each chain's anchored head
)

// configureAuditChain creates the audit MAC key and the anchors' mount;
// both steps are idempotent. Kept apart from configure so the Vault setup
// can move elsewhere with it in one piece.
func configureAuditChain(ctx context.Context, c *vaultapi.Client, mounts map[string]*vaultapi.MountOutput) error {
	if s, err := c.Logical().ReadWithContext(ctx, TransitMount+"/keys/"+AuditMACKey); err != nil || s == nil {
		if _, err := c.Logical().WriteWithContext(ctx, TransitMount+"/keys/"+AuditMACKey, map[string]any{"type": "aes256-gcm96", "derived": true}); err != nil {
			return fmt.Errorf("create transit key %s: %w", AuditMACKey, err)
		}
	}
	if _, ok := mounts[AuditAnchorsMount+"/"]; !ok {
		if err := c.Sys().MountWithContext(ctx, AuditAnchorsMount, &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}, Description: "anchored heads of the audit chains"}); err != nil {
			return fmt.Errorf("mount %s: %w", AuditAnchorsMount, err)
		}
	}
	if _, err := c.Logical().WriteWithContext(ctx, AuditAnchorsMount+"/config", map[string]any{"cas_required": true, "max_versions": 20}); err != nil {
		return fmt.Errorf("configure %s: %w", AuditAnchorsMount, err)
	}
	return nil
}
