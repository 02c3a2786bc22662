package vaultsetup_test

import (
	"context"
	"os"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/scripts/devenv"
)

// local is one real Vault for the package's tests, set up by
// scripts/devenv with this package's code.
var local *devenv.Vault

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	dir, err := os.MkdirTemp("", "vaultsetup-test-")
	if err != nil {
		panic(err)
	}
	addr, err := devenv.FreeAddr()
	if err == nil {
		local, err = devenv.StartVault(ctx, dir, addr)
	}
	cancel()
	if err != nil {
		// A test that needs a server fails without it; it never skips.
		os.Stderr.WriteString("start vault: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	local.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// loginAs returns a client holding the token of a function's own AppRole
// login.
func loginAs(t *testing.T, function string) *vaultapi.Client {
	t.Helper()
	l, ok := local.Functions[function]
	if !ok {
		t.Fatalf("no login for %s", function)
	}
	c, err := local.Root().Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.ClearToken()
	s, err := c.Logical().Write("auth/approle/login", map[string]any{"role_id": l.RoleID, "secret_id": l.SecretID})
	if err != nil || s == nil || s.Auth == nil {
		t.Fatalf("log in as %s: %v", function, err)
	}
	c.SetToken(s.Auth.ClientToken)
	return c
}

// tokenWith returns a client holding a fresh token with only policy.
func tokenWith(t *testing.T, policy string) *vaultapi.Client {
	t.Helper()
	tok, err := local.Root().Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{policy}, TTL: "10m", NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := local.Root().Clone()
	if err != nil {
		t.Fatal(err)
	}
	c.SetToken(tok.Auth.ClientToken)
	return c
}
