package vault_test

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/vault"
)

// TestUserpassLoginWithTOTP runs a staff member's login as the reauth
// function does: password, then the TOTP code, then the token revokes
// itself. Refusals are ErrInvalidCredentials, never a generic failure.
func TestUserpassLoginWithTOTP(t *testing.T) {
	ctx := context.Background()
	secret, err := local.Staff(audit.NewRecorder(nil, audit.NewStreamSink(io.Discard))).Ensure(ctx, "login-test", auth.RoleSupport, "right-password", "")
	if err != nil {
		t.Fatal(err)
	}
	c := appRoleClient(t)
	if _, err := c.LoginUserpass(ctx, devenv.UserpassMount, "login-test", "wrong-password"); !errors.Is(err, vault.ErrInvalidCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if _, err := c.LoginUserpass(ctx, devenv.UserpassMount, "nobody-here", "x"); !errors.Is(err, vault.ErrInvalidCredentials) {
		t.Fatalf("unknown user: %v", err)
	}
	if _, err := c.LoginUserpass(ctx, devenv.UserpassMount, "../../sys/seal", "x"); !errors.Is(err, vault.ErrBadRequest) {
		t.Fatalf("a path as username: %v", err)
	}
	login := func() *vault.UserpassLogin {
		t.Helper()
		l, err := c.LoginUserpass(ctx, devenv.UserpassMount, "Login-Test", "right-password") // Vault lower-cases names
		if err != nil {
			t.Fatal(err)
		}
		if l.Token != "" || l.MFARequestID == "" {
			t.Fatalf("a password alone got %+v; login MFA is not enforced", l)
		}
		ms := l.MFAConstraints[devenv.MFAEnforcement]
		if len(ms) != 1 || ms[0].Type != "totp" || ms[0].ID != local.TOTPMethodID {
			t.Fatalf("MFA constraints %+v", l.MFAConstraints)
		}
		return l
	}
	l := login()
	if _, err := c.ValidateMFA(ctx, l.MFARequestID, map[string]string{local.TOTPMethodID: "000000"}); !errors.Is(err, vault.ErrInvalidCredentials) {
		t.Fatalf("wrong code: %v", err)
	}
	code, _ := totp.GenerateCode(secret, time.Now())
	l = login()
	tok, err := c.ValidateMFA(ctx, l.MFARequestID, map[string]string{local.TOTPMethodID: code})
	if err != nil || tok == "" {
		t.Fatalf("right code: %v", err)
	}
	// A code is good once.
	l = login()
	if _, err := c.ValidateMFA(ctx, l.MFARequestID, map[string]string{local.TOTPMethodID: code}); !errors.Is(err, vault.ErrInvalidCredentials) {
		t.Fatalf("reused code: %v", err)
	}
	if err := c.RevokeSelf(ctx, tok); err != nil {
		t.Fatal(err)
	}
	if s, err := local.Root().Auth().Token().LookupWithContext(ctx, tok); err == nil && s != nil {
		t.Fatal("the proof's token is still valid after revoke-self")
	}
}

func TestSignAndVerify(t *testing.T) {
	ctx := context.Background()
	c := appRoleClient(t)
	sig, err := c.Sign(ctx, devenv.ReauthKey, []byte("payload"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Verify(ctx, devenv.ReauthKey, []byte("payload"), sig); err != nil || !ok {
		t.Fatalf("verify own signature: %v %v", ok, err)
	}
	if ok, err := c.Verify(ctx, devenv.ReauthKey, []byte("payloaD"), sig); err != nil || ok {
		t.Fatalf("verify changed input: %v %v", ok, err)
	}
	if _, err := c.Verify(ctx, devenv.ReauthKey, []byte("payload"), "vault:v9:AAAA"); !errors.Is(err, vault.ErrBadRequest) {
		t.Fatalf("unknown key version: %v", err)
	}
	// The functions may use the key for nothing else.
	if _, err := c.Sign(ctx, devenv.TransitKey, []byte("x")); !errors.Is(err, vault.ErrForbidden) {
		t.Fatalf("sign with another key: %v", err)
	}
}

func TestAccessMountCheckAndSet(t *testing.T) {
	ctx := context.Background()
	c := appRoleClient(t)
	if _, err := c.ReadKV(ctx, devenv.AccessMount, "reauth/kv-test"); !errors.Is(err, vault.ErrNotFound) {
		t.Fatalf("missing record: %v", err)
	}
	v, err := c.WriteKVCAS(ctx, devenv.AccessMount, "reauth/kv-test", map[string]string{"failures": ""}, 0)
	if err != nil || v != 1 {
		t.Fatalf("first write: %d %v", v, err)
	}
	if _, err := c.WriteKVCAS(ctx, devenv.AccessMount, "reauth/kv-test", map[string]string{"failures": "x"}, 0); !errors.Is(err, vault.ErrCASConflict) {
		t.Fatalf("stale write: %v", err)
	}
	// Only the attempt records: nothing else of the mount.
	if _, err := c.WriteKVCAS(ctx, devenv.AccessMount, "other/x", map[string]string{"a": "b"}, 0); !errors.Is(err, vault.ErrForbidden) {
		t.Fatalf("write outside reauth/: %v", err)
	}
}
