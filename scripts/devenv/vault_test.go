package devenv

import (
	"context"
	"testing"
	"time"
)

// TestVaultRestartKeepsData starts a real Vault, writes through the
// functions' AppRole, restarts the server on the same folder and reads the
// data back: `make run` relies on this.
func TestVaultRestartKeepsData(t *testing.T) {
	ctx, v, dir, addr := startRestartableVault(t)
	if _, err := v.Root().Logical().WriteWithContext(ctx, "smtp/data/x/admin", map[string]any{"data": map[string]any{"k": "v"}, "options": map[string]any{"cas": 0}}); err != nil {
		t.Fatalf("write: %v", err)
	}
	// cas_required: a write without cas is refused.
	if _, err := v.Root().Logical().WriteWithContext(ctx, "smtp/data/x/other", map[string]any{"data": map[string]any{"k": "v"}}); err == nil {
		t.Fatal("write without check-and-set was accepted")
	}
	role, secret, op := v.RoleID, v.SecretID, v.OperatorToken
	v.Stop()
	v2, err := StartVault(ctx, dir, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer v2.Stop()
	if v2.RoleID != role || v2.SecretID != secret || v2.OperatorToken != op {
		t.Fatal("auth state changed across a restart")
	}
	s, err := v2.Root().Logical().ReadWithContext(ctx, "smtp/data/x/admin")
	if err != nil || s == nil {
		t.Fatalf("read after restart: %v", err)
	}
	if got := s.Data["data"].(map[string]any)["k"]; got != "v" {
		t.Fatalf("read after restart: got %v", got)
	}
}

// startRestartableVault starts a Vault in a temporary folder for a test
// that stops and restarts it there, on the same address. The context
// bounds the whole test.
func startRestartableVault(t *testing.T) (ctx context.Context, v *Vault, dir, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	dir = t.TempDir()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	if v, err = StartVault(ctx, dir, addr); err != nil {
		t.Fatal(err)
	}
	return ctx, v, dir, addr
}
