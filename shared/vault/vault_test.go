package vault_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/vault"
)

var local *devenv.Vault

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	dir, err := os.MkdirTemp("", "vault-test-")
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

func appRoleClient(t *testing.T) *vault.Client {
	t.Helper()
	c, err := vault.New(vault.Config{Address: local.Addr, AuthMethod: vault.AuthAppRole, RoleID: local.RoleID, SecretID: local.SecretID})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestKVCheckAndSet(t *testing.T) {
	ctx := context.Background()
	c := appRoleClient(t)
	path := "kv-cas/admin"
	if _, err := c.Read(ctx, path); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("read missing: got %v, want ErrNotFound", err)
	}
	v1, err := c.WriteCAS(ctx, path, map[string]string{"a": "1"}, 0)
	if err != nil || v1 != 1 {
		t.Fatalf("first write: v=%d err=%v", v1, err)
	}
	if _, err := c.WriteCAS(ctx, path, map[string]string{"a": "x"}, 0); !errors.Is(err, vault.ErrCASConflict) {
		t.Fatalf("create over existing: got %v, want ErrCASConflict", err)
	}
	v2, err := c.WriteCAS(ctx, path, map[string]string{"a": "2"}, v1)
	if err != nil || v2 != 2 {
		t.Fatalf("second write: v=%d err=%v", v2, err)
	}
	if _, err := c.WriteCAS(ctx, path, map[string]string{"a": "stale"}, v1); !errors.Is(err, vault.ErrCASConflict) {
		t.Fatalf("stale write: got %v, want ErrCASConflict", err)
	}
	s, err := c.Read(ctx, path)
	if err != nil || s.Data["a"] != "2" || s.Version != 2 {
		t.Fatalf("read: %+v %v", s, err)
	}
	old, err := c.ReadVersion(ctx, path, 1)
	if err != nil || old.Data["a"] != "1" {
		t.Fatalf("history: %+v %v", old, err)
	}
	if err := c.PatchCustomMetadata(ctx, path, map[string]string{"rotation_state": "current"}); err != nil {
		t.Fatal(err)
	}
	if err := c.PatchCustomMetadata(ctx, path, map[string]string{"last_rotated": "2026-01-01T00:00:00Z"}); err != nil {
		t.Fatal(err)
	}
	md, err := c.ReadMetadata(ctx, path)
	if err != nil || md.CurrentVersion != 2 || md.CustomMetadata["rotation_state"] != "current" || md.CustomMetadata["last_rotated"] == "" {
		t.Fatalf("metadata: %+v %v", md, err)
	}
	// The functions list the top level (tenant ids) only.
	keys, err := c.List(ctx, "")
	if err != nil || !slices.Contains(keys, "kv-cas/") {
		t.Fatalf("list: %v %v", keys, err)
	}
	if _, err := c.List(ctx, "kv-cas/"); !errors.Is(err, vault.ErrForbidden) {
		t.Fatalf("list below a tenant: %v, want ErrForbidden", err)
	}
}

func TestTransitDataKey(t *testing.T) {
	ctx := context.Background()
	c := appRoleClient(t)
	tenant := "550e8400-e29b-41d4-a716-446655440000"
	dk, wrapped, err := c.DataKey(ctx, devenv.TransitKey, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if len(dk) != 32 || !bytes.HasPrefix([]byte(wrapped), []byte("vault:v1:")) {
		t.Fatalf("datakey: len=%d wrapped=%q", len(dk), wrapped[:9])
	}
	got, err := c.Decrypt(ctx, devenv.TransitKey, tenant, wrapped)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("decrypt: %v", err)
	}
	// The key is derived per tenant: another tenant's context cannot unwrap.
	if _, err := c.Decrypt(ctx, devenv.TransitKey, "0b9e1b2c-7f3a-4d5e-9c8b-1a2b3c4d5e6f", wrapped); err == nil {
		t.Fatal("data key unwrapped under another tenant's context")
	}
	// The functions may not rotate the master key; the operator may.
	if err := c.RotateKey(ctx, devenv.TransitKey); !errors.Is(err, vault.ErrForbidden) {
		t.Fatalf("rotate as functions: got %v, want ErrForbidden", err)
	}
	op, err := vault.New(vault.Config{Address: local.Addr, Token: local.OperatorToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := op.RotateKey(ctx, devenv.TransitKey); err != nil {
		t.Fatal(err)
	}
	rewrapped, err := op.Rewrap(ctx, devenv.TransitKey, tenant, wrapped)
	if err != nil || rewrapped == wrapped || !bytes.HasPrefix([]byte(rewrapped), []byte("vault:v2:")) {
		t.Fatalf("rewrap: %v", err)
	}
	got, err = c.Decrypt(ctx, devenv.TransitKey, tenant, rewrapped)
	if err != nil || !bytes.Equal(got, dk) {
		t.Fatalf("decrypt rewrapped: %v", err)
	}
	// The operator cannot decrypt: no password is readable through the CLI.
	if _, err := op.Decrypt(ctx, devenv.TransitKey, tenant, rewrapped); !errors.Is(err, vault.ErrForbidden) {
		t.Fatalf("operator decrypt: got %v, want ErrForbidden", err)
	}
}

func TestErrorsForbiddenAndUnavailable(t *testing.T) {
	ctx := context.Background()
	bad, err := vault.New(vault.Config{Address: local.Addr, Token: "hvs.not-a-token"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Read(ctx, "x/admin"); !errors.Is(err, vault.ErrForbidden) {
		t.Fatalf("bad token: got %v, want ErrForbidden", err)
	}
	wrongSecret, err := vault.New(vault.Config{Address: local.Addr, AuthMethod: vault.AuthAppRole, RoleID: local.RoleID, SecretID: "00000000-0000-0000-0000-000000000000"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wrongSecret.Read(ctx, "x/admin"); err == nil {
		t.Fatal("login with a wrong secret_id succeeded")
	}
	addr, _ := devenv.FreeAddr()
	down, err := vault.New(vault.Config{Address: "http://" + addr, Token: "t", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := down.Read(ctx, "x/admin"); !errors.Is(err, vault.ErrUnavailable) {
		t.Fatalf("vault down: got %v, want ErrUnavailable", err)
	}
	if _, err := vault.New(vault.Config{Address: local.Addr, AuthMethod: "ldap"}); err == nil {
		t.Fatal("unknown auth method accepted")
	}
}

// TestSealed runs last in this file: it seals the shared server and
// unseals it again.
func TestSealed(t *testing.T) {
	ctx := context.Background()
	c := appRoleClient(t)
	if _, err := c.WriteCAS(ctx, "sealed/admin", map[string]string{"a": "1"}, 0); err != nil {
		t.Fatal(err)
	}
	if err := local.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := c.Health(ctx)
	if err != nil || !h.Sealed {
		t.Fatalf("health while sealed: %+v %v", h, err)
	}
	if _, err := c.Read(ctx, "sealed/admin"); !errors.Is(err, vault.ErrSealed) {
		t.Fatalf("read while sealed: got %v, want ErrSealed", err)
	}
	if _, err := c.WriteCAS(ctx, "sealed/admin", map[string]string{"a": "2"}, 1); !errors.Is(err, vault.ErrSealed) {
		t.Fatalf("write while sealed: got %v, want ErrSealed", err)
	}
	if err := local.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
	s, err := c.Read(ctx, "sealed/admin")
	if err != nil || s.Data["a"] != "1" {
		t.Fatalf("after unseal: %+v %v", s, err)
	}
}
