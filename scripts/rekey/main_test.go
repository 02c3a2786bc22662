package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/scripts/devenv"
)

// TestRekey runs the command against a test stack as the runbook does:
// with a token holding the rekey policy, the stack's audit bucket, a
// rotation, then a tenant that cannot be rewrapped.
func TestRekey(t *testing.T) {
	ts := devenv.StartTestStack(t, 2)
	ctx := context.Background()
	tok, err := ts.Vault.Root().Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{Policies: []string{devenv.RekeyPolicy}, NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	env := ts.DevEnv()
	for _, k := range []string{"S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY", "S3_SECRET_KEY", "AUDIT_BUCKET"} {
		t.Setenv(k, env[k])
	}
	t.Setenv("VAULT_ADDR", ts.Vault.Addr)
	t.Setenv("VAULT_AUTH_METHOD", "token")
	t.Setenv("VAULT_TOKEN", tok.Auth.ClientToken)

	var out bytes.Buffer
	if err := run(ctx, &out, true, ""); err != nil {
		t.Fatalf("rekey -rotate: %v\n%s", err, out.String())
	}
	// Not a terminal: a line to start and the total at the end.
	if !strings.Contains(out.String(), "rewrap: 2 to do\n") || !strings.Contains(out.String(), "rewrap: 2/2 (100%)") || strings.Contains(out.String(), "failed") {
		t.Errorf("progress:\n%s", out.String())
	}
	for _, tn := range ts.Tenants {
		sec, err := ts.Vault.Root().KVv2("smtp").Get(ctx, tn.TenantID+"/admin")
		if err != nil {
			t.Fatal(err)
		}
		if dk, _ := sec.Data["data_key"].(string); !strings.HasPrefix(dk, "vault:v2:") {
			t.Errorf("tenant %s: data key %.12q... not on the rotated key's version 2", tn.TenantID, dk)
		}
	}

	// A tenant without a credential fails: shown as it fails, counted,
	// and the command exits with an error.
	out.Reset()
	missing := "0b7f5c7e-3f4a-4d2b-9c1e-2a6f8d9e0b1c"
	err = run(ctx, &out, false, missing)
	if err == nil || !strings.Contains(err.Error(), "1 tenants failed") {
		t.Errorf("rekey -tenant %s: err %v", missing, err)
	}
	if !strings.Contains(out.String(), "failed "+missing+": ") || !strings.Contains(out.String(), "1/1 (100%) 1 failed") {
		t.Errorf("the failure is not shown:\n%s", out.String())
	}

	// Re-running changes nothing and fails nothing: the failed tenant
	// left nothing behind that a listing would take for a tenant.
	out.Reset()
	if err := run(ctx, &out, false, ""); err != nil {
		t.Fatalf("rekey again: %v\n%s", err, out.String())
	}
}
