package main

import (
	"bytes"
	"context"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/vault"
)

// TestCompromiseResponse runs the command as the runbook does, with a
// token holding only the emergency-reset function's policy, against the
// real Vault, the audit bucket and the MailU stand-in of a test stack: a
// file with a bad id starts nothing; the good file resets every tenant
// (the old password is refused over SMTP, the new one logs in), shows
// plain progress lines on stderr and reports 3 reset; running it again
// for the same incident resets nobody twice. In a second incident a
// tenant whose MailU refuses the change is reported failed with exit 1,
// keeps its password, and the next run resets it alone.
func TestCompromiseResponse(t *testing.T) {
	s := devenv.StartTestStack(t, 3)
	ctx := context.Background()
	tok, err := s.Vault.Root().Auth().Token().Create(&vaultapi.TokenCreateRequest{
		Policies: []string{policies.ForFunction("emergency-reset")}, DisplayName: "compromise-test", TTL: "1h", NoParent: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.App.Config
	cfg.VaultAuthMethod, cfg.VaultToken, cfg.VaultRoleID, cfg.VaultSecretID = vault.AuthToken, tok.Auth.ClientToken, "", ""
	wire := func(ctx context.Context, opts app.Options) (*app.App, error) {
		opts.Now, opts.Notifier, opts.Verifier = s.Clock.Now, s.Notifications, s.Verifier
		return app.New(ctx, cfg, opts)
	}
	svc := s.App.API.Credentials
	actor := credential.Actor{UserID: "test"}
	type login struct{ addr, user, password string }
	logins := func() map[string]login {
		t.Helper()
		out := map[string]login{}
		for _, tn := range s.Tenants {
			v, err := svc.Retrieve(ctx, tn.TenantID, actor)
			if err != nil {
				t.Fatal(err)
			}
			out[tn.TenantID] = login{tn.MailU.SMTPAddr, v.Username, v.Password}
		}
		return out
	}
	logsIn := func(l login) bool {
		return mailu.VerifyLogin(ctx, l.addr, l.user, l.password, nil) == nil
	}
	cmd := func(want int, incident, file string) (stdout, stderr string) {
		t.Helper()
		var out, errOut bytes.Buffer
		args := []string{"-incident", incident, "-reason", "mail-7 breached", "-requested-by", "alice", "-workers", "2", file}
		if got := run(ctx, args, &out, &errOut, wire); got != want {
			t.Fatalf("compromise %v: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", args, got, want, out.String(), errOut.String())
		}
		return out.String(), errOut.String()
	}
	dir := t.TempDir()
	var lines []string
	for _, tn := range s.Tenants {
		lines = append(lines, tn.TenantID)
	}
	good := filepath.Join(dir, "tenants.txt")
	writeFile(t, good, "# mail-7, per the incident ticket\n"+lines[0]+"\n\n"+lines[1]+"  # the second\n"+lines[2]+"\n")
	bad := filepath.Join(dir, "bad.txt")
	writeFile(t, bad, "# comment\n"+lines[0]+"\n"+strings.ToUpper(lines[1])+"\n"+lines[2]+"\n")

	before := logins()
	_, stderr := cmd(exitUsage, "INC-2026-0042", bad)
	if !strings.Contains(stderr, "bad.txt:3:") || !strings.Contains(stderr, "no tenant was reset") {
		t.Fatalf("a bad line is reported without its line number:\n%s", stderr)
	}
	if _, err := svc.CompromiseResponse(ctx, "INC-2026-0042", 1, 0); !errors.Is(err, credential.ErrNotFound) {
		t.Fatalf("after a bad file a response exists: %v", err)
	}
	for id, l := range before {
		if !logsIn(l) {
			t.Fatalf("tenant %s was touched by a refused file", id)
		}
	}

	stdout, stderr := cmd(0, "INC-2026-0042", good)
	if !strings.Contains(stderr, "compromise response INC-2026-0042: 3 to do\n") || !strings.Contains(stderr, "compromise response INC-2026-0042: 3/3 (100%)") {
		t.Errorf("no plain progress lines on stderr:\n%s", stderr)
	}
	if !strings.Contains(stdout, ": finished\n") || !strings.Contains(stdout, "tenants 3: reset 3, already_reset 0, failed 0, skipped 0, pending 0\n") {
		t.Fatalf("report:\n%s", stdout)
	}
	after := logins()
	for id, old := range before {
		if logsIn(old) {
			t.Errorf("tenant %s: the old password still logs in", id)
		}
		if after[id].password == old.password || !logsIn(after[id]) {
			t.Errorf("tenant %s: the new password does not log in", id)
		}
	}

	stdout, _ = cmd(0, "INC-2026-0042", good)
	if !strings.Contains(stdout, "tenants 3: reset 0, already_reset 3, failed 0") {
		t.Fatalf("the second run's report:\n%s", stdout)
	}
	if again := logins(); !maps.Equal(again, after) {
		t.Error("the second run changed a password")
	}

	// A tenant whose MailU refuses the change fails, untouched, with its
	// error class; the command exits 1; once MailU is back the same
	// command finishes it alone.
	down := s.Tenants[0]
	if err := s.MailUHost.SetFaults(ctx, down.MailU.Domain, mailustandin.Faults{RejectAPI: true}); err != nil {
		t.Fatal(err)
	}
	stdout, stderr = cmd(exitFailed, "INC-2026-0043", good)
	if !strings.Contains(stdout, "tenants 3: reset 2, already_reset 0, failed 1") || !strings.Contains(stdout, "failed   "+down.TenantID+" ") {
		t.Fatalf("report with a failed tenant:\n%s", stdout)
	}
	if !strings.Contains(stderr, "tenant "+down.TenantID+" failed: ") || !strings.Contains(stderr, "3/3 (100%) 1 failed") {
		t.Errorf("the failure is not shown in the progress:\n%s", stderr)
	}
	if !logsIn(after[down.TenantID]) {
		t.Error("the failed tenant's password changed")
	}
	if err := s.MailUHost.SetFaults(ctx, down.MailU.Domain, mailustandin.Faults{}); err != nil {
		t.Fatal(err)
	}
	stdout, _ = cmd(0, "INC-2026-0043", good)
	if !strings.Contains(stdout, "tenants 3: reset 1, already_reset 2, failed 0") {
		t.Fatalf("the run that finishes the failed tenant:\n%s", stdout)
	}
	final := logins()
	if logsIn(after[down.TenantID]) || !logsIn(final[down.TenantID]) {
		t.Error("the failed tenant was not reset by the second run")
	}
}

// TestArgs: every input is checked before anything starts (the App is
// never wired).
func TestArgs(t *testing.T) {
	dir := t.TempDir()
	const id = "550e8400-e29b-41d4-a716-446655440000"
	ok := filepath.Join(dir, "ok.txt")
	writeFile(t, ok, "\n# only comments and blanks around\n  "+id+"  \n\n")
	bad := filepath.Join(dir, "bad.txt")
	writeFile(t, bad, id+"\n\n# c\nnot-a-uuid\n")
	empty := filepath.Join(dir, "empty.txt")
	writeFile(t, empty, "# nothing\n\n")
	base := []string{"-incident", "INC-1", "-reason", "r", "-requested-by", "alice"}
	tests := []struct {
		name    string
		args    []string
		want    int
		wantErr string
	}{
		{"help", []string{"-h"}, 0, "emergency-reset-compromise-response.json"},
		{"no selector", base, exitUsage, "exactly one of"},
		{"two selectors", append(slices.Clone(base), "-all", ok), exitUsage, "exactly one of"},
		{"missing flags", []string{"-all"}, exitUsage, "-incident, -reason, -requested-by required"},
		{"bad incident", []string{"-incident", "x", "-reason", "r", "-requested-by", "a", "-all"}, exitUsage, "incident_id"},
		{"bad line", append(slices.Clone(base), bad), exitUsage, "bad.txt:4: \"not-a-uuid\""},
		{"no ids", append(slices.Clone(base), empty), exitUsage, "no tenant ids"},
		{"no file", append(slices.Clone(base), filepath.Join(dir, "missing.txt")), exitUsage, "missing.txt"},
		{"no workers", append(slices.Clone(base), "-workers", "0", "-all"), exitUsage, "-workers 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			wire := func(context.Context, app.Options) (*app.App, error) {
				t.Fatal("the App is wired for bad input")
				return nil, nil
			}
			if got := run(context.Background(), tt.args, &out, &errOut, wire); got != tt.want || !strings.Contains(errOut.String(), tt.wantErr) {
				t.Errorf("exit %d (want %d), stderr:\n%s\nwant it to contain %q", got, tt.want, errOut.String(), tt.wantErr)
			}
		})
	}
	if _, ids, err := parseArgs(append(slices.Clone(base), ok), &bytes.Buffer{}); err != nil || !slices.Equal(ids, []string{id}) {
		t.Errorf("comments and blanks: %v, %v", ids, err)
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}
