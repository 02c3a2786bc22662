package vaultsetup

import (
	"context"
	"fmt"
	"slices"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"
)

// auditDevice makes sure Vault audits every request. Any enabled device
// will do (file, syslog, socket: the operator's choice); with none, a file
// device at AuditFile is enabled.
func (s *setup) auditDevice(ctx context.Context) error {
	devices, err := s.c.Sys().ListAuditWithContext(ctx)
	if err != nil {
		return fmt.Errorf("vaultsetup: list audit devices: %w", err)
	}
	if len(devices) > 0 {
		var names []string
		for path, d := range devices {
			names = append(names, path+" ("+d.Type+")")
		}
		slices.Sort(names)
		s.r.add(Unchanged, "audit device "+strings.Join(names, ", "), "")
		return nil
	}
	if s.cfg.AuditFile == "" {
		s.r.add(Drift, "audit device", "Vault has none: pass -audit-file to enable a file device, or enable one of your own")
		return nil
	}
	return s.reconcile("audit device file/ ("+s.cfg.AuditFile+")", false, "", func() error {
		return s.c.Sys().EnableAuditWithOptionsWithContext(ctx, "file", &vaultapi.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": s.cfg.AuditFile}})
	})
}
