package vaultsetup

import (
	"context"
	"fmt"
	"sort"
)

// legacyName is the role and policy every function shared before each had
// its own identity.
const legacyName = "smtp-vault-functions"

// legacy finds what older setups made: one policy, and one role per auth
// method, shared by every function. Left in place, whatever can still log
// in with that role keeps every function's access, so it is drift; Force
// deletes it.
func (s *setup) legacy(ctx context.Context) error {
	auths, err := s.c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("vaultsetup: list auth methods: %w", err)
	}
	var paths []string
	for mount, m := range auths {
		if m.Type == "aws" || m.Type == "approle" {
			paths = append(paths, "auth/"+mount+"role/"+legacyName)
		}
	}
	sort.Strings(paths)
	paths = append(paths, "sys/policies/acl/"+legacyName)
	for _, path := range paths {
		cur, err := s.c.Logical().ReadWithContext(ctx, path)
		if err != nil {
			return fmt.Errorf("vaultsetup: read %s: %w", path, err)
		}
		if cur == nil {
			continue
		}
		what := "legacy " + path + " (shared by every function)"
		if !s.cfg.Force {
			s.r.add(Drift, what, "still exists: delete it with -force once every function runs with its own role")
			continue
		}
		if _, err := s.c.Logical().DeleteWithContext(ctx, path); err != nil {
			return fmt.Errorf("vaultsetup: delete %s: %w", path, err)
		}
		s.r.add(Updated, what, "deleted")
	}
	return nil
}
