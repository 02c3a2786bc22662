package credential_test

import (
	"context"
	"strings"
	"testing"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
)

// TestRewrapAfterMasterKeyRotation rotates the Transit key with the rekey
// policy, rewraps every tenant, and shows that each password still opens
// and logs in while its data keys are now wrapped by the new key version.
func TestRewrapAfterMasterKeyRotation(t *testing.T) {
	s := devenv.StartTestStack(t, 2)
	ctx := context.Background()
	tok, err := s.Vault.Root().Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{Policies: []string{devenv.RekeyPolicy}, NoParent: true})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := app.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.VaultAddr, cfg.VaultAuthMethod, cfg.VaultToken = s.Vault.Addr, "token", tok.Auth.ClientToken
	op, err := app.New(ctx, cfg, app.Options{AuditOut: s.AuditLog, LogOut: s.Log})
	if err != nil {
		t.Fatal(err)
	}
	before := map[string]string{}
	for _, tn := range s.Tenants {
		v, err := s.App.API.Credentials.Retrieve(ctx, tn.TenantID, credential.Actor{UserID: "test"})
		if err != nil {
			t.Fatal(err)
		}
		before[tn.TenantID] = v.Password
	}
	if err := op.Vault.RotateKey(ctx, cfg.TransitKey); err != nil {
		t.Fatalf("rotate with the rekey policy: %v", err)
	}
	for _, tn := range s.Tenants {
		changed, err := op.API.Credentials.Rewrap(ctx, tn.TenantID, credential.Actor{UserID: "operator:test"})
		if err != nil || !changed {
			t.Fatalf("rewrap %s: changed=%v err=%v", tn.TenantID, changed, err)
		}
		if changed, err := op.API.Credentials.Rewrap(ctx, tn.TenantID, credential.Actor{UserID: "operator:test"}); err != nil || changed {
			t.Fatalf("second rewrap %s: changed=%v err=%v", tn.TenantID, changed, err)
		}
		for _, path := range []string{tn.TenantID + "/admin", tn.TenantID + "/mailu"} {
			sec, err := s.Vault.Root().KVv2("smtp").Get(ctx, path)
			if err != nil {
				t.Fatal(err)
			}
			if dk, _ := sec.Data["data_key"].(string); !strings.HasPrefix(dk, "vault:v2:") {
				t.Fatalf("%s: data key not rewrapped to v2: %.9s", path, dk)
			}
		}
		v, err := s.App.API.Credentials.Retrieve(ctx, tn.TenantID, credential.Actor{UserID: "test"})
		if err != nil || v.Password != before[tn.TenantID] {
			t.Fatalf("after rewrap the password changed or does not open: %v", err)
		}
		if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, v.Username, v.Password, nil); err != nil {
			t.Fatalf("after rewrap: %v", err)
		}
	}
	// The rekey policy cannot read a password: Transit decrypt is refused.
	sec, _ := s.Vault.Root().KVv2("smtp").Get(ctx, s.Tenants[0].TenantID+"/admin")
	if _, err := op.Vault.Decrypt(ctx, cfg.TransitKey, s.Tenants[0].TenantID, sec.Data["data_key"].(string)); err == nil {
		t.Fatal("the rekey policy can decrypt data keys")
	}
	// The store still works after the rotation (MailU token's key rewrapped).
	if _, err := s.App.API.Credentials.Store(ctx, s.StoreEvent(s.Tenants[0]), credential.Actor{UserID: "test"}); err != nil {
		t.Fatalf("store after rewrap: %v", err)
	}
	if !strings.Contains(s.AuditLog.String(), `"event":"smtp_credentials_rewrapped"`) {
		t.Fatal("rewrap not audited")
	}
}
