package devenv

import (
	"context"
	"fmt"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/shared/app"
	"smtp-vault/shared/vault"
)

// FunctionConfig is cfg as the named function runs with it locally:
// logged in to Vault with its own AppRole, so with its own policy only.
func (v *Vault) FunctionConfig(cfg app.Config, function string) (app.Config, error) {
	l, ok := v.Functions[function]
	if !ok {
		return app.Config{}, fmt.Errorf("devenv: no Vault login for function %q", function)
	}
	cfg.VaultAddr = v.Addr
	cfg.VaultAuthMethod, cfg.VaultAuthMount, cfg.VaultToken = vault.AuthAppRole, "", ""
	cfg.VaultRoleID, cfg.VaultSecretID = l.RoleID, l.SecretID
	return cfg, nil
}

// wireApps wires one App per function, each with its own Vault identity,
// as the Lambdas are wired in AWS, and Stack.App with every function's
// policy for tests that call the domain directly.
func (s *Stack) wireApps(ctx context.Context, cfg app.Config, opts app.Options) error {
	s.Apps = map[string]*app.App{}
	for _, fn := range policies.Functions {
		fc, err := s.Vault.FunctionConfig(cfg, fn)
		if err != nil {
			return err
		}
		if s.Apps[fn], err = app.New(ctx, fc, opts); err != nil {
			return fmt.Errorf("devenv: wire %s: %w", fn, err)
		}
	}
	cfg.VaultAddr = s.Vault.Addr
	cfg.VaultAuthMethod, cfg.VaultToken = vault.AuthAppRole, ""
	cfg.VaultRoleID, cfg.VaultSecretID = s.Vault.RoleID, s.Vault.SecretID
	var err error
	s.App, err = app.New(ctx, cfg, opts)
	return err
}

// handlers is what the gateway serves: each function's handler from its
// own App.
func (s *Stack) handlers() map[string]any {
	out := make(map[string]any, len(s.Apps))
	for fn, a := range s.Apps {
		out[fn] = a.Handlers()[fn]
	}
	return out
}
