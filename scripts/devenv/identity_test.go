package devenv

import (
	"context"
	"errors"
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
		if want := []string{"default", policies.ForFunction(fn)}; err != nil || !slices.Equal(got, want) {
			t.Errorf("%s runs with policies %v (%v), want %v", fn, got, err, want)
		}
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
