package credential

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/vault"
)

// RewrapResult is one tenant's outcome of RewrapAll.
type RewrapResult struct {
	TenantID string
	Changed  bool  // rewrapped; false: already on the newest key version
	Err      error // the tenant is left as it was; rewrapping again finishes it
}

// RewrapAll rewraps the tenants ids, or every tenant when ids is empty,
// Config.Concurrency at a time (the bound on Vault's and the audit
// bucket's load while the service serves), and hands each outcome to each
// (may be nil) once that tenant is done, with the count so far. It returns
// every outcome in the order of ids (sorted when listed), and an error
// only when the tenants cannot be listed: a failed tenant is an outcome.
// The master key rotation (scripts/rekey) and its benchmark run this.
func (s *Service) RewrapAll(ctx context.Context, ids []string, actor Actor, each func(r RewrapResult, done, total int)) ([]RewrapResult, error) {
	if len(ids) == 0 {
		var err error
		if ids, err = s.tenantIDs(ctx); err != nil {
			return nil, err
		}
		sort.Strings(ids)
	}
	out := make([]RewrapResult, len(ids))
	t := tally[RewrapResult]{total: len(ids), report: each}
	s.forEach(len(ids), func(i int) {
		changed, err := s.Rewrap(ctx, ids[i], actor)
		out[i] = RewrapResult{TenantID: ids[i], Changed: changed, Err: err}
		t.finish(out[i])
	})
	return out, nil
}

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
