package credential

import (
	"context"
	"errors"
	"strings"

	"smtp-vault/shared/vault"
)

// statuses lists every tenant from KV metadata and reads each credential's
// custom_metadata, Config.Concurrency reads at a time. Nothing is decrypted and
// no secret data is read. A tenant whose metadata cannot be read is
// returned with Err set; a folder without an admin record is left out.
func (s *Service) statuses(ctx context.Context) ([]Status, error) {
	ids, err := s.tenantIDs(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, len(ids))
	found := make([]bool, len(ids))
	s.forEach(len(ids), func(i int) {
		md, err := s.cfg.Vault.ReadMetadata(ctx, AdminPath(ids[i]))
		switch {
		case err == nil:
			out[i], found[i] = statusFrom(ids[i], md.CustomMetadata), true
		case errors.Is(err, vault.ErrNotFound):
		default:
			out[i], found[i] = Status{TenantID: ids[i], Err: upstream("read the credential metadata", err)}, true
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, upstream("list tenants", err)
	}
	res := out[:0]
	for i := range out {
		if found[i] {
			res = append(res, out[i])
		}
	}
	return res, nil
}

// tenantIDs lists every tenant with a folder in the KV mount.
func (s *Service) tenantIDs(ctx context.Context) ([]string, error) {
	keys, err := s.cfg.Vault.List(ctx, "")
	if err != nil {
		return nil, upstream("list tenants", err)
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		id, folder := strings.CutSuffix(k, "/")
		if folder && ValidateTenantID(id) == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}
