package main

import (
	"bytes"
	"context"
	"errors"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/pquerna/otp/totp"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/vault"
)

// TestStaffLifecycle runs the command as an operator would, with a token
// holding only the smtp-vault-staff-admin policy, against the real Vault
// and the audit bucket: every action takes effect on the member's
// re-authentication and is audited without a secret.
func TestStaffLifecycle(t *testing.T) {
	ctx := context.Background()
	v := startVault(t)
	srv := devenv.StartTestS3(t)
	if err := srv.CreateBucket(ctx, devenv.AuditBucket, true); err != nil {
		t.Fatal(err)
	}
	tok, err := v.Root().Auth().Token().Create(&vaultapi.TokenCreateRequest{Policies: []string{policies.StaffAdmin}, DisplayName: "onboarder", TTL: "1h", NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("VAULT_ADDR", v.Addr)
	t.Setenv("VAULT_TOKEN", tok.Auth.ClientToken)
	t.Setenv("VAULT_AUTH_METHOD", "")
	t.Setenv("AUDIT_BUCKET", devenv.AuditBucket)
	t.Setenv("S3_ENDPOINT", srv.Endpoint)
	t.Setenv("S3_REGION", devenv.S3Region)
	t.Setenv("S3_ACCESS_KEY", srv.AccessKey)
	t.Setenv("S3_SECRET_KEY", srv.SecretKey)

	cmd := func(want int, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		if got := run(ctx, args, strings.NewReader(""), &out, &errOut); got != want {
			t.Fatalf("staff %v: exit %d, want %d\n%s%s", args, got, want, out.String(), errOut.String())
		}
		return out.String()
	}
	added := cmd(0, "add", "-role", "support-team", "Carol")
	password := regexp.MustCompile(`password \(shown once[^)]*\): (\S+)`).FindStringSubmatch(added)
	uri := regexp.MustCompile(`otpauth://totp/\S+`).FindString(added)
	if password == nil || uri == "" || !strings.Contains(added, "█") && !strings.Contains(added, "▀") {
		t.Fatalf("add printed:\n%s\nwant a password, an otpauth:// URI and a QR code", added)
	}
	if !strings.HasPrefix(uri, "otpauth://totp/smtp-vault:carol?") {
		t.Errorf("the URI's label %q does not name the member", uri)
	}
	secret := secretOf(t, uri)
	login := newLogin(t, v)
	if err := login.try(ctx, "carol", password[1], secret); err != nil {
		t.Fatalf("the new member re-authenticates: %v", err)
	}
	if out := cmd(0, "list"); !regexp.MustCompile(`carol\s+support-team\s+active\s+\d{4}-`).MatchString(out) {
		t.Fatalf("list:\n%s", out)
	}
	cmd(1, "add", "-role", "support-team", "carol")         // already a member
	cmd(2, "add", "carol")                                  // no role
	cmd(1, "add", "-role", "platform-admin", "../sys/seal") // not a usable name
	cmd(1, "add", "-role", "root", "dave")                  // no such role
	cmd(1, "disable", "nobody")

	cmd(0, "disable", "carol")
	if err := login.try(ctx, "carol", password[1], secret); !errors.Is(err, vault.ErrInvalidCredentials) {
		t.Fatalf("a disabled member re-authenticates: %v", err)
	}
	if out := cmd(0, "list"); !regexp.MustCompile(`carol\s+support-team\s+disabled`).MatchString(out) {
		t.Fatalf("list after disable:\n%s", out)
	}
	cmd(0, "enable", "carol")
	if err := login.try(ctx, "carol", password[1], secret); err != nil {
		t.Fatalf("re-enabled: %v", err)
	}

	reset := cmd(0, "reset-totp", "carol")
	newSecret := secretOf(t, regexp.MustCompile(`otpauth://totp/\S+`).FindString(reset))
	if newSecret == secret {
		t.Fatal("reset-totp kept the secret")
	}
	if err := login.try(ctx, "carol", password[1], secret); !errors.Is(err, vault.ErrInvalidCredentials) {
		t.Fatalf("the old TOTP secret still works: %v", err)
	}
	if err := login.try(ctx, "carol", password[1], newSecret); err != nil {
		t.Fatalf("the new TOTP secret: %v", err)
	}

	// The daily cap of failed re-authentications held carol (as the
	// reauth function records it); unlock lifts the hold.
	if _, err := v.Root().KVv2("smtp-access").Put(ctx, "reauth/carol", map[string]any{
		"failures": "", "daily_failures": "", "pending": "", "locked_until": "",
		"held_since": "2026-03-12T09:00:00Z", "updated_at": "2026-03-12T09:00:00Z",
	}, vaultapi.WithCheckAndSet(0)); err != nil {
		t.Fatal(err)
	}
	if out := cmd(0, "unlock", "Carol"); !strings.Contains(out, "lifted the re-authentication hold of carol") {
		t.Fatalf("unlock printed %q", out)
	}
	rec, err := v.Root().KVv2("smtp-access").Get(ctx, "reauth/carol")
	if err != nil || rec.Data["held_since"] != "" {
		t.Fatalf("after unlock the attempts record is %v (%v)", rec, err)
	}
	if out := cmd(0, "unlock", "carol"); !strings.Contains(out, "was not held") {
		t.Fatalf("unlock of a member not held printed %q", out)
	}
	cmd(1, "unlock", "../sys/seal")

	cmd(0, "remove", "carol")
	if err := login.try(ctx, "carol", password[1], newSecret); !errors.Is(err, vault.ErrInvalidCredentials) {
		t.Fatalf("a removed member re-authenticates: %v", err)
	}
	if out := cmd(0, "list"); strings.Contains(out, "carol") {
		t.Fatalf("list after remove:\n%s", out)
	}

	trail := srv.BucketText(t, devenv.AuditBucket)
	for _, e := range []string{"staff_added", "staff_listed", "staff_disabled", "staff_enabled", "staff_totp_reset", "staff_reauth_unlocked", "staff_removed"} {
		if !strings.Contains(trail, `"event":"`+e+`"`) {
			t.Errorf("no %s record in the audit bucket", e)
		}
	}
	if !strings.Contains(trail, `"user_id":"operator:token-onboarder"`) {
		t.Errorf("the records do not name the operator's token")
	}
	for _, s := range []string{password[1], secret, newSecret} {
		if strings.Contains(trail, s) {
			t.Fatal("a password or TOTP secret reached the audit trail")
		}
	}
}

// TestHelpAndUsage: -h explains the commands and exits 0; no command is
// a usage error.
func TestHelpAndUsage(t *testing.T) {
	var out, errOut bytes.Buffer
	if got := run(context.Background(), []string{"-h"}, nil, &out, &errOut); got != 0 || !strings.Contains(errOut.String(), "reset-totp <sub>") {
		t.Fatalf("-h: exit %d\n%s", got, errOut.String())
	}
	if got := run(context.Background(), nil, nil, &out, &errOut); got != exitUsage {
		t.Fatalf("no command: exit %d", got)
	}
}

func startVault(t *testing.T) *devenv.Vault {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	addr, err := devenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	v, err := devenv.StartVault(ctx, t.TempDir(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Stop() })
	return v
}

func secretOf(t *testing.T, uri string) string {
	t.Helper()
	u, err := url.Parse(uri)
	if err != nil || u.Query().Get("secret") == "" {
		t.Fatalf("otpauth URI %q: %v", uri, err)
	}
	return u.Query().Get("secret")
}

// login re-authenticates as the reauth function does, using each TOTP
// code once (Vault refuses a code it has seen).
type login struct {
	c    *vault.Client
	tm   string
	used map[string]bool
}

func newLogin(t *testing.T, v *devenv.Vault) *login {
	c, err := vault.New(vault.Config{Address: v.Addr, Token: "unused: logins send no token"})
	if err != nil {
		t.Fatal(err)
	}
	return &login{c: c, tm: v.TOTPMethodID, used: map[string]bool{}}
}

func (l *login) try(ctx context.Context, user, password, secret string) error {
	r, err := l.c.LoginUserpass(ctx, devenv.UserpassMount, user, password)
	if err != nil {
		return err
	}
	code := ""
	for _, d := range []time.Duration{0, 30 * time.Second, -30 * time.Second} {
		c, err := totp.GenerateCode(secret, time.Now().Add(d))
		if err != nil {
			return err
		}
		if !l.used[secret+c] {
			code = c
			break
		}
	}
	if code == "" {
		os.Stderr.WriteString("test: waiting for a fresh TOTP step\n")
		time.Sleep(30 * time.Second)
		return l.try(ctx, user, password, secret)
	}
	l.used[secret+code] = true
	tok, err := l.c.ValidateMFA(ctx, r.MFARequestID, map[string]string{l.tm: code})
	if err != nil {
		return err
	}
	return l.c.RevokeSelf(ctx, tok)
}
