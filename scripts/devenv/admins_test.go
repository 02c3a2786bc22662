package devenv

import "testing"

// TestAdminsSurviveARestart: the demo admins' TOTP secrets stay what the
// state file says across restarts, and a secret the state file lost is
// replaced rather than left unknown.
func TestAdminsSurviveARestart(t *testing.T) {
	ctx, v, dir, addr := startRestartableVault(t)
	first, err := v.EnsureAdmin(ctx, "alice", "pw-1", "")
	if err != nil || first == "" {
		t.Fatalf("first: %q %v", first, err)
	}
	method := v.TOTPMethodID
	v.Stop()
	v, err = StartVault(ctx, dir, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer v.Stop()
	if v.TOTPMethodID != method {
		t.Fatal("the TOTP method changed across a restart")
	}
	again, err := v.EnsureAdmin(ctx, "alice", "pw-1", first)
	if err != nil || again != first {
		t.Fatalf("after a restart: %q %v, want the same secret", again, err)
	}
	lost, err := v.EnsureAdmin(ctx, "alice", "pw-1", "")
	if err != nil || lost == "" || lost == first {
		t.Fatalf("state lost: %q %v, want a new secret", lost, err)
	}
}
