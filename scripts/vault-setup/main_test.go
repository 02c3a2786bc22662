package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/vaultsetup"
)

// TestSetupReportsAndFixesDrift runs the command against a real Vault
// that the local stack's code set up (the same code): it finds every item
// right, reports drift (including the one role and policy older setups
// shared between every function) without changing it (exit 3), fixes it
// with -force, and reads the functions' roles from stack outputs.
func TestSetupReportsAndFixesDrift(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	addr, err := devenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	v, err := devenv.StartVault(ctx, t.TempDir(), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	t.Setenv("VAULT_ADDR", v.Addr)
	t.Setenv("VAULT_TOKEN", v.Root().Token())
	t.Setenv("AWS_REGION", devenv.STSRegion)

	outputs := map[string]string{"ApiUrl": "https://example.test/"}
	for _, fn := range policies.Functions {
		outputs[vaultsetup.StackOutputKey(fn)] = devenv.LocalRoleARN(fn)
	}
	raw, _ := json.Marshal(outputs)
	outputsFile := filepath.Join(t.TempDir(), "outputs.json")
	if err := os.WriteFile(outputsFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	base := []string{"-approle", "-stack-outputs", outputsFile, "-server-id", devenv.IAMServerID,
		"-sts-endpoint", v.STS.URL, "-resolve-unique-ids=false"}
	setup := func(want int, extra ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if got := run(ctx, append(append([]string{}, base...), extra...), &out, &errOut); got != want {
			t.Fatalf("vault-setup %v: exit %d, want %d\n%s%s", extra, got, want, out.String(), errOut.String())
		}
		return out.String()
	}
	allRight := regexp.MustCompile(`(?m)^0 created, 0 updated, \d+ already right, 0 drifting$`)
	if out := setup(0); !allRight.MatchString(out) || strings.Contains(out, "DRIFT") {
		t.Fatalf("a set-up Vault:\n%s", out)
	}

	// Drift: a policy edited by hand, check-and-set turned off, a role
	// bound to someone else.
	root := v.Root()
	if err := root.Sys().PutPolicyWithContext(ctx, "smtp-vault-console", `path "transit/decrypt/*" { capabilities = ["update"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().WriteWithContext(ctx, "smtp-access/config", map[string]any{"cas_required": false}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().WriteWithContext(ctx, "auth/aws/role/smtp-vault-store", map[string]any{"bound_iam_principal_arn": []string{"arn:aws:iam::000000000000:role/intruder"}}); err != nil {
		t.Fatal(err)
	}
	// What older setups made: one policy and role for every function.
	if err := root.Sys().PutPolicyWithContext(ctx, "smtp-vault-functions", `path "smtp/data/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().WriteWithContext(ctx, "auth/approle/role/smtp-vault-functions", map[string]any{"token_policies": []string{"smtp-vault-functions"}}); err != nil {
		t.Fatal(err)
	}
	out := setup(exitDrift)
	for _, want := range []string{
		"DRIFT    legacy auth/approle/role/smtp-vault-functions (shared by every function)",
		"DRIFT    legacy sys/policies/acl/smtp-vault-functions (shared by every function)",
		"DRIFT    policy smtp-vault-console",
		"DRIFT    smtp-access/config (cas_required, max_versions): cas_required is off",
		"DRIFT    role auth/aws/role/smtp-vault-store: bound_iam_principal_arn [arn:aws:iam::000000000000:role/intruder]",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("drift report lacks %q:\n%s", want, out)
		}
	}
	if p, _ := root.Sys().GetPolicyWithContext(ctx, "smtp-vault-console"); !strings.Contains(p, "transit/decrypt") {
		t.Fatal("drift was changed without -force")
	}
	if out := setup(0, "-force"); strings.Count(out, "updated ") != 5 {
		t.Fatalf("-force:\n%s\nwant the five drifting items updated", out)
	}
	if p, _ := root.Sys().GetPolicyWithContext(ctx, "smtp-vault-functions"); p != "" {
		t.Fatal("-force left the legacy policy")
	}
	if out := setup(0); !allRight.MatchString(out) {
		t.Fatalf("after -force:\n%s", out)
	}
	want, _ := policies.Text("smtp-vault-console")
	if p, _ := root.Sys().GetPolicyWithContext(ctx, "smtp-vault-console"); strings.TrimSpace(p) != strings.TrimSpace(want) {
		t.Fatal("-force did not restore the console policy")
	}
}

// TestUsage: -h explains the flags (exit 0); without a way for the
// functions to log in, or without Vault's address, it is a usage error.
func TestUsage(t *testing.T) {
	ctx := context.Background()
	var out, errOut bytes.Buffer
	if got := run(ctx, []string{"-h"}, &out, &errOut); got != 0 || !strings.Contains(errOut.String(), "-stack-outputs") || !strings.Contains(errOut.String(), "-server-id") {
		t.Fatalf("-h: exit %d\n%s", got, errOut.String())
	}
	// Every mount and key setup creates is named, so an operator can
	// check a Vault against the list.
	for _, name := range []string{"smtp,", "smtp-access", "smtp-alerts", "smtp-audit-anchors", "smtp-index", "transit", "smtp-credentials", "reauth-signing", "audit-mac", "userpass", "smtp-vault-totp"} {
		if !strings.Contains(errOut.String(), name) {
			t.Errorf("-h does not name %s:\n%s", name, errOut.String())
		}
	}
	t.Setenv("VAULT_ADDR", "http://127.0.0.1:1")
	t.Setenv("VAULT_TOKEN", "t")
	for _, args := range [][]string{
		{},                     // no roles at all
		{"-role-arn", "store"}, // not function=arn
		{"-stack-outputs", "/nonexistent.json"},
		{"extra-argument", "-approle"},
	} {
		if got := run(ctx, args, &out, &errOut); got != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, got, exitUsage)
		}
	}
}
