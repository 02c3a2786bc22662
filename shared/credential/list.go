package credential

import (
	"context"
	"strings"
)

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
