package devenv

import (
	"strings"
	"testing"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
)

// TestAdminsSurviveARestart: the demo admins' TOTP secrets stay what the
// state file says across restarts, and a secret the state file lost is
// replaced rather than left unknown; each change is audited, a restart
// that changes nothing records nothing.
func TestAdminsSurviveARestart(t *testing.T) {
	ctx, v, dir, addr := startRestartableVault(t)
	var trail SyncBuffer
	rec := audit.NewRecorder(nil, audit.NewStreamSink(&trail))
	first, err := v.Staff(rec).Ensure(ctx, "alice", auth.RolePlatformAdmin, "pw-1", "")
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
	again, err := v.Staff(rec).Ensure(ctx, "alice", auth.RolePlatformAdmin, "pw-1", first)
	if err != nil || again != first {
		t.Fatalf("after a restart: %q %v, want the same secret", again, err)
	}
	lost, err := v.Staff(rec).Ensure(ctx, "alice", auth.RolePlatformAdmin, "pw-1", "")
	if err != nil || lost == "" || lost == first {
		t.Fatalf("state lost: %q %v, want a new secret", lost, err)
	}
	got := trail.String()
	if strings.Count(got, `"staff_added"`) != 1 || strings.Count(got, `"staff_totp_reset"`) != 1 || strings.Count(got, "\n") != 2 {
		t.Fatalf("audit records:\n%s\nwant one staff_added and one staff_totp_reset", got)
	}
	if strings.Contains(got, first) || strings.Contains(got, lost) || strings.Contains(got, "pw-1") {
		t.Fatal("a secret reached the audit trail")
	}
}
