package credential

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/vault"
)

// Rewrap re-wraps every data key of a tenant (the admin password's, a
// pending one's, and the MailU API token's) under the newest version of the
// Transit key, after an operator rotated it. Transit does this without the
// data keys or any password leaving Vault; nothing is decrypted here. It
// reports whether anything changed.
func (s *Service) Rewrap(ctx context.Context, tenantID string, actor Actor) (bool, error) {
	if err := ValidateTenantID(tenantID); err != nil {
		return false, err
	}
	release, err := s.lock(ctx, tenantID, "rewrap")
	if err != nil {
		return false, err
	}
	defer release()

	rec, err := s.readRecord(ctx, tenantID)
	if err != nil {
		return false, err
	}
	changed := false
	for _, wrapped := range []*string{&rec.DataKey, &rec.PendingDataKey} {
		c, err := s.rewrapOne(ctx, tenantID, wrapped)
		if err != nil {
			return false, err
		}
		changed = changed || c
	}
	if changed {
		if err := s.cfg.Audit.Record(ctx, audit.Event{
			Event: audit.CredentialsRewrapped, TenantID: tenantID, UserID: actor.UserID, IP: actor.IP, UserAgent: actor.UserAgent,
			Details: map[string]any{"record": "admin", "kv_version": rec.Version() + 1},
		}); err != nil {
			return false, upstream("record "+audit.CredentialsRewrapped, err)
		}
		if err := s.writeRecord(ctx, tenantID, rec); err != nil {
			return false, err
		}
	}

	conn, err := s.cfg.Vault.Read(ctx, MailUPath(tenantID))
	if errors.Is(err, vault.ErrNotFound) {
		return changed, nil
	}
	if err != nil {
		return changed, upstream("read the MailU connection", err)
	}
	data := cloneMap(conn.Data)
	dk := data["data_key"]
	c, err := s.rewrapOne(ctx, tenantID, &dk)
	if err != nil || !c {
		return changed, err
	}
	data["data_key"] = dk
	if _, err := s.cfg.Vault.WriteCAS(ctx, MailUPath(tenantID), data, conn.Version); err != nil {
		return changed, upstream("write the MailU connection", err)
	}
	return true, nil
}

// rewrapOne rewraps *wrapped in place; an empty value is left alone.
func (s *Service) rewrapOne(ctx context.Context, tenantID string, wrapped *string) (bool, error) {
	if *wrapped == "" {
		return false, nil
	}
	out, err := s.cfg.Vault.Rewrap(ctx, s.cfg.TransitKey, tenantID, *wrapped)
	if err != nil {
		return false, upstream(fmt.Sprintf("rewrap a data key of tenant %s", tenantID), err)
	}
	// Transit re-encrypts even when the key version did not change; keep
	// the stored value then, so a re-run writes nothing.
	if keyVersion(out) == keyVersion(*wrapped) {
		return false, nil
	}
	*wrapped = out
	return true, nil
}

// keyVersion is the "vault:v<N>:" prefix of a Transit ciphertext.
func keyVersion(wrapped string) string {
	if i := strings.Index(strings.TrimPrefix(wrapped, "vault:"), ":"); i >= 0 {
		return wrapped[:len("vault:")+i]
	}
	return wrapped
}
