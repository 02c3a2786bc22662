package credential

import (
	"context"
	"fmt"

	"smtp-vault/shared/crypto"
)

// seal encrypts a secret field of a tenant under a fresh Transit data key
// derived for that tenant, and returns the sealed value and the wrapped key.
func (s *Service) seal(ctx context.Context, tenantID, field, plaintext string) (sealed, wrapped string, err error) {
	dk, wrapped, err := s.cfg.Vault.DataKey(ctx, s.cfg.TransitKey, tenantID)
	if err != nil {
		return "", "", upstream("get a data key", err)
	}
	defer crypto.Wipe(dk)
	sealed, err = crypto.Seal(dk, []byte(plaintext), crypto.AAD(tenantID, field))
	if err != nil {
		return "", "", fmt.Errorf("seal %s: %w", field, err)
	}
	return sealed, wrapped, nil
}

// open decrypts a sealed field of a tenant.
func (s *Service) open(ctx context.Context, tenantID, field, sealed, wrapped string) (string, error) {
	dk, err := s.cfg.Vault.Decrypt(ctx, s.cfg.TransitKey, tenantID, wrapped)
	if err != nil {
		return "", upstream("unwrap the data key", err)
	}
	defer crypto.Wipe(dk)
	pt, err := crypto.Open(dk, sealed, crypto.AAD(tenantID, field))
	if err != nil {
		return "", fmt.Errorf("open %s of tenant %s: %w", field, tenantID, err)
	}
	defer crypto.Wipe(pt)
	return string(pt), nil
}
