package api_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/app"
	"smtp-vault/shared/auth"
)

// TestVaultHealth: the console's health route reports the real Vault
// unsealed with its raft leader, and the last good backup's age in
// colours: none before the first backup, green after one, amber past a
// day, red past two.
func TestVaultHealth(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	get := func() response {
		t.Helper()
		// A fresh token each time: the functions' clock moves by days.
		admin, err := s.Token(s.UserWithRole(auth.RolePlatformAdmin))
		if err != nil {
			t.Fatal(err)
		}
		r := do(t, s, "GET", "/api/v1/platform-admin/vault/health", admin, "")
		if r.Status != 200 {
			t.Fatalf("health: %d %s", r.Status, r.Raw)
		}
		return r
	}
	r := get()
	if r.Body["sealed"] != false || r.Body["leader"] == "" || r.Body["backup_colour"] != "none" {
		t.Fatalf("before any backup: %s", r.Raw)
	}
	if peers, _ := r.Body["peers"].([]any); len(peers) != 1 {
		t.Fatalf("raft peers: %s", r.Raw)
	}
	if _, err := s.Gateway.Invoke(context.Background(), "backup", []byte(`{"source":"aws.events","detail-type":"Scheduled Event"}`)); err != nil {
		t.Fatalf("backup: %v", err)
	}
	if c := get().Body["backup_colour"]; c != "green" {
		t.Fatalf("after a backup: colour %v", c)
	}
	s.Clock.Shift(30 * time.Hour)
	if c := get().Body["backup_colour"]; c != "amber" {
		t.Fatalf("30 hours later: colour %v", c)
	}
	s.Clock.Shift(20 * time.Hour)
	if c := get().Body["backup_colour"]; c != "red" {
		t.Fatalf("50 hours later: colour %v", c)
	}

	// Without a backups bucket the report still tells Vault's state.
	a := s.Apps["console"]
	a.UseBackups(&app.BackupConfig{})
	h := a.API.Health.VaultHealth(context.Background())
	if h.Sealed || h.Leader == "" || h.BackupColour != "none" || len(h.Errors) == 0 || !strings.Contains(strings.Join(h.Errors, " "), "backups not configured") {
		t.Fatalf("health without backups: %+v", h)
	}
}
