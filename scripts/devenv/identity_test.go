package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/shared/vault"
)

// TestStackRunsEachFunctionWithItsOwnPolicy: the gateway's functions are
// logged in to the real Vault with their own policies. With the console
// function's token a stored data key does not unwrap; with reauth's, no
// credential can be written; retrieve's unwraps it.
func TestStackRunsEachFunctionWithItsOwnPolicy(t *testing.T) {
	ctx := context.Background()
	s := StartTestStack(t, 1)
	tn := s.Tenants[0]
	for _, fn := range policies.Functions {
		got, err := s.Apps[fn].Vault.TokenPolicies(ctx)
		if want := []string{policies.ForFunction(fn)}; err != nil || !slices.Equal(got, want) {
			t.Errorf("%s runs with policies %v (%v), want %v", fn, got, err, want)
		}
	}
	// The tests' all-functions handle carries the functions' policies and,
	// like each of them, not Vault's default one.
	all, err := s.App.Vault.TokenPolicies(ctx)
	if err != nil || len(all) != len(policies.Functions) || slices.Contains(all, "default") {
		t.Errorf("the all-functions role runs with policies %v (%v), want the %d functions' and no default", all, err, len(policies.Functions))
	}
	rec, err := s.App.Vault.Read(ctx, tn.TenantID+"/admin")
	if err != nil || rec.Data["data_key"] == "" {
		t.Fatalf("read the seeded credential: %v", err)
	}
	if _, err := s.Apps["console"].Vault.Decrypt(ctx, TransitKey, tn.TenantID, rec.Data["data_key"]); !errors.Is(err, vault.ErrForbidden) {
		t.Errorf("console unwraps a stored data key: %v, want ErrForbidden (403)", err)
	}
	if _, err := s.Apps["reauth"].Vault.WriteCAS(ctx, tn.TenantID+"/admin", map[string]string{"username": "x"}, rec.Version); !errors.Is(err, vault.ErrForbidden) {
		t.Errorf("reauth writes a credential: %v, want ErrForbidden (403)", err)
	}
	if _, err := s.Apps["reauth"].Vault.WriteCAS(ctx, "reauth-probe/admin", map[string]string{"username": "x"}, 0); !errors.Is(err, vault.ErrForbidden) {
		t.Errorf("reauth creates a credential: %v, want ErrForbidden (403)", err)
	}
	dk, err := s.Apps["retrieve"].Vault.Decrypt(ctx, TransitKey, tn.TenantID, rec.Data["data_key"])
	if err != nil || len(dk) != 32 {
		t.Fatalf("retrieve unwraps the data key: %v", err)
	}
	after, err := s.App.Vault.Read(ctx, tn.TenantID+"/admin")
	if err != nil || after.Version != rec.Version {
		t.Fatalf("the credential changed: version %d -> %d (%v)", rec.Version, after.Version, err)
	}
}

// TestBackupIdentityChecksEveryCredential: the restore check runs with the
// backup function's own Vault identity, as in AWS: `gateway invoke backup
// events/backup-verify.json` lists every tenant, reads its record and
// unwraps its data key, and every credential opens. (After a restore the
// same identity checks the restored Vault: shared/backup's
// TestDisasterRecovery.)
func TestBackupIdentityChecksEveryCredential(t *testing.T) {
	ctx := context.Background()
	s := StartTestStack(t, 2)
	event, err := os.ReadFile(filepath.Join("..", "..", "events", "backup-verify.json"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.Gateway.Invoke(ctx, "backup", event)
	if err != nil {
		t.Fatalf("gateway invoke backup events/backup-verify.json: %v", err)
	}
	var res struct {
		Tenants []struct {
			TenantID  string `json:"tenant_id"`
			Decrypted bool   `json:"decrypted"`
			Error     string `json:"error"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("answer %s: %v", out, err)
	}
	if len(res.Tenants) != len(s.Tenants) {
		t.Fatalf("checked %d tenants, want %d: %s", len(res.Tenants), len(s.Tenants), out)
	}
	for _, c := range res.Tenants {
		if !c.Decrypted {
			t.Errorf("tenant %s does not open with the backup identity: %s", c.TenantID, c.Error)
		}
	}
}
