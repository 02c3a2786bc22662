package vaultsetup

import (
	"context"
	"fmt"
)

// transitKey is a Transit key the functions use and its fixed settings.
type transitKey struct {
	name, typ string
	derived   bool
}

// transitKeys creates the master key that wraps every data key (derived:
// one key per tenant by HKDF with the tenant id as context) and the
// ed25519 key that signs re-auth tokens, and the derived key whose data
// keys MAC the audit records (one per chain). None is ever exportable.
func (s *setup) transitKeys(ctx context.Context) error {
	for _, k := range []transitKey{
		{TransitKey, "aes256-gcm96", true},
		{ReauthKey, "ed25519", false},
		{AuditMACKey, "aes256-gcm96", true},
	} {
		if err := s.transitKey(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

func (s *setup) transitKey(ctx context.Context, k transitKey) error {
	path := TransitMount + "/keys/" + k.name
	what := fmt.Sprintf("transit key %s (%s", path, k.typ)
	if k.derived {
		what += ", derived"
	}
	what += ")"
	cur, err := s.c.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return fmt.Errorf("vaultsetup: read %s: %w", path, err)
	}
	if cur == nil {
		return s.reconcile(what, false, "", func() error {
			_, err := s.c.Logical().WriteWithContext(ctx, path, map[string]any{"type": k.typ, "derived": k.derived, "exportable": false})
			return err
		})
	}
	d := dataOf(cur)
	// A key's type and derivation are fixed at creation, and an
	// exportable key may have left Vault: no setting repairs either.
	if d["type"] != k.typ || d["derived"] != k.derived {
		return fmt.Errorf("vaultsetup: %s is type %v derived %v, want %s derived %v: create a new key and rewrap (scripts/rekey), vault-setup never replaces a key", path, d["type"], d["derived"], k.typ, k.derived)
	}
	if d["exportable"] == true || d["allow_plaintext_backup"] == true {
		return fmt.Errorf("vaultsetup: %s is exportable or allows plaintext backup, so its key material may have left Vault: treat it as compromised, create a new key and rewrap", path)
	}
	diff := ""
	if d["deletion_allowed"] == true {
		diff = "deletion_allowed is on"
	}
	return s.reconcile(what, true, diff, func() error {
		_, err := s.c.Logical().WriteWithContext(ctx, path+"/config", map[string]any{"deletion_allowed": false})
		return err
	})
}
