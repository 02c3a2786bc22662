package vaultsetup

import (
	"context"
	"fmt"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// kvMount is a KV v2 mount and the settings every write relies on.
type kvMount struct {
	path, description string
	maxVersions       int
}

// mounts sets up the KV v2 mounts (every write check-and-set, enough
// history) and the Transit mount.
func (s *setup) mounts(ctx context.Context) error {
	for _, m := range []kvMount{
		{KVMount, "tenants' SMTP admin credentials", s.cfg.KVMaxVersions},
		// The top level of smtp/ is tenant ids only, so staff records
		// and alert state have mounts of their own.
		{AccessMount, "failed re-authentication attempts of staff", 10},
		{AlertsMount, "state of the security alert rules", 5},
		{AuditAnchorsMount, "anchored heads of the audit chains", 20},
		// Every change rewrites a leaf: two versions are plenty, and
		// check-and-set keeps concurrent writers from losing entries.
		{IndexMount, "status index of the credentials (overview, sweep)", 2},
	} {
		if err := s.kv(ctx, m); err != nil {
			return err
		}
	}
	_, err := s.mount(ctx, TransitMount, "transit", nil, "master keys of smtp-vault")
	return err
}

// mount makes sure a secrets engine of type typ is mounted at path. A
// mount of another type (or KV version) is never changed: that would
// drop its data. It reports whether it created the mount.
func (s *setup) mount(ctx context.Context, path, typ string, options map[string]string, description string) (bool, error) {
	mounts, err := s.c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return false, fmt.Errorf("vaultsetup: list mounts: %w", err)
	}
	what := fmt.Sprintf("secrets engine %s/ (%s)", path, typ)
	if m, ok := mounts[path+"/"]; ok {
		if m.Type != typ || (options["version"] != "" && m.Options["version"] != options["version"]) {
			return false, fmt.Errorf("vaultsetup: %s/ is a %s mount (options %v), not %s %v: move it away by hand, vault-setup never replaces a mount", path, m.Type, m.Options, typ, options)
		}
		s.r.add(Unchanged, what, "")
		return false, nil
	}
	return true, s.reconcile(what, false, "", func() error {
		return s.c.Sys().MountWithContext(ctx, path, &vaultapi.MountInput{Type: typ, Options: options, Description: description})
	})
}

func (s *setup) kv(ctx context.Context, m kvMount) error {
	created, err := s.mount(ctx, m.path, "kv", map[string]string{"version": "2"}, m.description)
	if err != nil {
		return err
	}
	cur, err := s.c.Logical().ReadWithContext(ctx, m.path+"/config")
	if err != nil {
		return fmt.Errorf("vaultsetup: read %s/config: %w", m.path, err)
	}
	var diff []string
	if cur == nil || cur.Data["cas_required"] != true {
		diff = append(diff, "cas_required is off")
	}
	// More history than asked for is fine; lowering it would delete
	// versions, so only a shorter one is drift. 0 is KV's default, 10.
	have := intOf(dataOf(cur)["max_versions"])
	if have == 0 {
		have = 10
	}
	if have < m.maxVersions {
		diff = append(diff, fmt.Sprintf("max_versions %d, want at least %d", have, m.maxVersions))
	}
	// A fresh mount's config is part of creating it.
	return s.reconcile(m.path+"/config (cas_required, max_versions)", !created, strings.Join(diff, "; "), func() error {
		_, err := s.c.Logical().WriteWithContext(ctx, m.path+"/config", map[string]any{"cas_required": true, "max_versions": max(have, m.maxVersions)})
		return err
	})
}
