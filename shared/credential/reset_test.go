package credential_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/credential"
)

// TestResetMarksCompromiseAndPendingInOnePatch: an emergency reset
// patches custom_metadata twice (the compromise mark with the pending
// state, then the finished state), not three times; one that fails after
// the mark and before its pending write leaves the state as the record
// has it (current), the compromise shown, and the next reset goes through.
func TestResetMarksCompromiseAndPendingInOnePatch(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	id := s.Tenants[0].TenantID
	admin := credential.Actor{UserID: "alice"}

	meta := func() map[string]string {
		t.Helper()
		md, err := s.App.Vault.ReadMetadata(ctx, credential.AdminPath(id))
		if err != nil {
			t.Fatal(err)
		}
		return md.CustomMetadata
	}
	var marked map[string]string
	e.setHook(id, func(ctx context.Context, tenant string, b credential.Boundary) error {
		if b == credential.BeforeCreate {
			marked = meta() // after the mark, before the pending write
		}
		return nil
	})
	mark, err := s.Vault.MarkVaultRequests()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.EmergencyReset(ctx, credential.ResetRequest{TenantID: id, IncidentID: "INC-PATCH-1", Reason: "leak", Actor: admin}); err != nil {
		t.Fatal(err)
	}
	asked, err := mark.Since()
	if err != nil {
		t.Fatal(err)
	}
	if marked[credential.MetaState] != credential.StatePending || marked[credential.MetaCompromised] != "INC-PATCH-1" {
		t.Errorf("custom_metadata before the pending write: %v, want pending and compromised by INC-PATCH-1", marked)
	}
	patches := 0
	for k, n := range asked {
		if strings.HasPrefix(k, "patch smtp/metadata/") {
			patches += n
		}
	}
	if patches != 2 {
		t.Errorf("a reset patched custom_metadata %d times, want 2 (%s)", patches, asked.PerUnit(1, 20))
	}
	if md := meta(); md[credential.MetaState] != credential.StateCurrent {
		t.Errorf("after the reset: %v, want current", md)
	}

	// A reset that stops after the mark, before its pending write.
	_, _, before := e.current(t, id)
	stop := errors.New("stopped before the pending write")
	e.setHook(id, func(ctx context.Context, tenant string, b credential.Boundary) error {
		if b == credential.BeforeCreate {
			return stop
		}
		return nil
	})
	if _, err := e.svc.EmergencyReset(ctx, credential.ResetRequest{TenantID: id, IncidentID: "INC-PATCH-2", Reason: "leak", Actor: admin}); !errors.Is(err, stop) {
		t.Fatalf("the stopped reset: %v, want %v", err, stop)
	}
	_, _, after := e.current(t, id)
	md := meta()
	if after.Version() != before.Version() || after.Pending() {
		t.Errorf("the stopped reset changed the record: version %d, pending %t (was %d)", after.Version(), after.Pending(), before.Version())
	}
	if md[credential.MetaState] != credential.StateCurrent || md[credential.MetaCompromised] != "INC-PATCH-2" ||
		!strings.Contains(md[credential.MetaCompromisedVersion(before.Version())], "incident=INC-PATCH-2") {
		t.Errorf("after the stopped reset: %v, want current and compromised by INC-PATCH-2", md)
	}
	if ie, ok, err := e.svc.IndexEntryOf(ctx, id); err != nil || !ok || ie.State != credential.StateCurrent || ie.Compromised != "INC-PATCH-2" {
		t.Errorf("the index after the stopped reset: %+v (%t, %v)", ie, ok, err)
	}
	e.setHook(id, nil)
	if _, err := e.svc.EmergencyReset(ctx, credential.ResetRequest{TenantID: id, IncidentID: "INC-PATCH-2", Reason: "leak", Actor: admin}); err != nil {
		t.Fatalf("the reset again: %v", err)
	}
	if md := meta(); md[credential.MetaState] != credential.StateCurrent {
		t.Errorf("after the reset again: %v, want current", md)
	}
}
