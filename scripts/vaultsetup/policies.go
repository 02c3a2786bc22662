package vaultsetup

import (
	"context"
	"fmt"
	"strings"

	"smtp-vault/infra/vault/policies"
)

// policies writes every policy of infra/vault/policies: one per function,
// the operator's, the rekey command's and the staff command's.
func (s *setup) policies(ctx context.Context) error {
	for _, name := range policies.All() {
		want, err := policies.Text(name)
		if err != nil {
			return err
		}
		have, err := s.c.Sys().GetPolicyWithContext(ctx, name)
		if err != nil {
			return fmt.Errorf("vaultsetup: read policy %s: %w", name, err)
		}
		diff := ""
		if have != "" && strings.TrimSpace(have) != strings.TrimSpace(want) {
			diff = "its rules differ from infra/vault/policies/" + name + ".hcl"
		}
		if err := s.reconcile("policy "+name, have != "", diff, func() error {
			return s.c.Sys().PutPolicyWithContext(ctx, name, want)
		}); err != nil {
			return err
		}
	}
	return nil
}
