package vaultsetup

import (
	"context"
	"fmt"
	"strings"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/infra/vault/policies"
)

// Lifetimes of the functions' Vault tokens: an instance logs in at cold
// start and again when its token is refused.
const (
	functionTokenTTL    = 3600  // seconds
	functionTokenMaxTTL = 14400 // seconds
)

// A function's token carries its own policy only, not Vault's default
// one: the default policy grants what no function uses (its cubbyhole,
// its identity entity, leases, wrapping), and it is templated, so Vault
// parses it again on every request a token holding it makes (a tenth of
// Vault's CPU in the compromise response, docs/measurements.md). The one
// default grant a function uses, auth/token/lookup-self, is in each
// function's policy.
const functionTokenNoDefaultPolicy = true

// authMethod makes sure an auth method of type typ is enabled at path.
func (s *setup) authMethod(ctx context.Context, path, typ, description string) error {
	auths, err := s.c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("vaultsetup: list auth methods: %w", err)
	}
	what := fmt.Sprintf("auth method %s/ (%s)", path, typ)
	if m, ok := auths[path+"/"]; ok {
		if m.Type != typ {
			return fmt.Errorf("vaultsetup: auth/%s/ is a %s method, not %s: vault-setup never replaces an auth method", path, m.Type, typ)
		}
		s.r.add(Unchanged, what, "")
		return nil
	}
	return s.reconcile(what, false, "", func() error {
		return s.c.Sys().EnableAuthWithOptionsWithContext(ctx, path, &vaultapi.EnableAuthOptions{Type: typ, Description: description})
	})
}

// role writes auth/<mount>/role/<name> with want. Only the keys in
// compare are compared with what Vault holds (Vault answers with every
// setting of a role, most of them defaults).
func (s *setup) role(ctx context.Context, mount, name string, want map[string]any, compare func(have map[string]any) []string) error {
	path := "auth/" + mount + "/role/" + name
	cur, err := s.c.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return fmt.Errorf("vaultsetup: read %s: %w", path, err)
	}
	diff := ""
	if cur != nil {
		diff = strings.Join(compare(dataOf(cur)), "; ")
	}
	return s.reconcile("role "+path, cur != nil, diff, func() error {
		_, err := s.c.Logical().WriteWithContext(ctx, path, want)
		return err
	})
}

// tokenDiff compares the token settings every function role shares.
func tokenDiff(have map[string]any, policy string) []string {
	var d []string
	if p := stringsOf(have["token_policies"]); !sameSet(p, []string{policy}) {
		d = append(d, fmt.Sprintf("token_policies %v, want [%s]", p, policy))
	}
	if have["token_no_default_policy"] != functionTokenNoDefaultPolicy {
		d = append(d, fmt.Sprintf("token_no_default_policy %v, want %v", have["token_no_default_policy"], functionTokenNoDefaultPolicy))
	}
	if t := intOf(have["token_ttl"]); t != functionTokenTTL {
		d = append(d, fmt.Sprintf("token_ttl %ds, want %ds", t, functionTokenTTL))
	}
	if t := intOf(have["token_max_ttl"]); t != functionTokenMaxTTL {
		d = append(d, fmt.Sprintf("token_max_ttl %ds, want %ds", t, functionTokenMaxTTL))
	}
	return d
}

// appRoles gives each function an AppRole role with its own policy (the
// local stack; its secret ids are issued by whoever runs the functions).
func (s *setup) appRoles(ctx context.Context) error {
	if !s.cfg.AppRole {
		return nil
	}
	if err := s.authMethod(ctx, "approle", "approle", "smtp-vault functions (local runs)"); err != nil {
		return err
	}
	for _, fn := range policies.Functions {
		policy := policies.ForFunction(fn)
		want := map[string]any{
			"token_policies":          []string{policy},
			"token_no_default_policy": functionTokenNoDefaultPolicy,
			"token_ttl":               functionTokenTTL,
			"token_max_ttl":           functionTokenMaxTTL,
			"secret_id_ttl":           0,
		}
		if err := s.role(ctx, "approle", RoleName(fn), want, func(have map[string]any) []string {
			return tokenDiff(have, policy)
		}); err != nil {
			return err
		}
	}
	return nil
}
