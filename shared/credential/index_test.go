package credential_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/credential"
)

// overviewOf is the overview's item of one tenant, searched by its id.
func overviewOf(t *testing.T, svc *credential.Service, tenantID string) (credential.OverviewItem, bool) {
	t.Helper()
	page, err := svc.Overview(context.Background(), credential.OverviewQuery{Search: tenantID, Page: 1, PerPage: 10}, credential.Actor{UserID: "test"})
	if err != nil {
		t.Fatalf("overview: %v", err)
	}
	for _, it := range page.Credentials {
		if it.TenantID == tenantID {
			return it, true
		}
	}
	return credential.OverviewItem{}, false
}

func filtered(t *testing.T, svc *credential.Service, status string) []string {
	t.Helper()
	page, err := svc.Overview(context.Background(), credential.OverviewQuery{Status: status, Page: 1, PerPage: 100}, credential.Actor{UserID: "test"})
	if err != nil {
		t.Fatalf("overview %s: %v", status, err)
	}
	var ids []string
	for _, it := range page.Credentials {
		ids = append(ids, it.TenantID)
	}
	return ids
}

// The overview reads only the status index, so each change must reach it
// before the change answers: a failing rotation, the next good one, an
// emergency reset and the rotation that ends its display.
func TestStatusIndexFollowsEveryChange(t *testing.T) {
	s := devenv.StartTestStack(t, 2)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	a, b := s.Tenants[0], s.Tenants[1]
	admin := credential.Actor{UserID: "admin-test"}

	it, ok := overviewOf(t, e.svc, a.TenantID)
	if !ok || it.Status != credential.ClassOK || it.RotationState != credential.StateCurrent || it.Domain != a.Domain || it.RotationFailing {
		t.Fatalf("a freshly stored tenant in the overview: %+v (found %t)", it, ok)
	}

	if err := s.MailU.SetFaults(ctx, a.Domain, mailustandin.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Rotate(ctx, credential.Request{TenantID: a.TenantID, Trigger: credential.TriggerManual, Reason: "test"}); err == nil {
		t.Fatal("a rotation with MailU down succeeded")
	}
	if got := filtered(t, e.svc, credential.StatusFailing); len(got) != 1 || got[0] != a.TenantID {
		t.Fatalf("failing after one failed rotation: %v, want [%s]", got, a.TenantID)
	}
	it, _ = overviewOf(t, e.svc, a.TenantID)
	// The pending password stays for the next run to finish or undo.
	if !it.RotationFailing || !strings.HasSuffix(it.RotationFailure, " unavailable") {
		t.Fatalf("the failed tenant's item: %+v", it)
	}

	if err := s.MailU.SetFaults(ctx, a.Domain, mailustandin.Faults{}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Hour)
	res, err := e.svc.Rotate(ctx, credential.Request{TenantID: a.TenantID, Trigger: credential.TriggerManual, Reason: "test"})
	if err != nil {
		t.Fatal(err)
	}
	it, _ = overviewOf(t, e.svc, a.TenantID)
	if it.RotationFailing || it.LastRotated == nil || !it.LastRotated.Equal(res.LastRotated) || len(filtered(t, e.svc, credential.StatusFailing)) != 0 {
		t.Fatalf("after a good rotation: %+v (rotated at %v)", it, res.LastRotated)
	}

	if _, err := e.svc.EmergencyReset(ctx, credential.ResetRequest{TenantID: b.TenantID, IncidentID: "INC-7", Reason: "leak", Actor: admin}); err != nil {
		t.Fatal(err)
	}
	if got := filtered(t, e.svc, credential.ClassCompromised); len(got) != 1 || got[0] != b.TenantID {
		t.Fatalf("compromised after a reset: %v", got)
	}
	if it, _ := overviewOf(t, e.svc, b.TenantID); it.Compromised != "INC-7" {
		t.Fatalf("the reset tenant's item: %+v", it)
	}
	e.clock.Advance(time.Hour)
	if _, err := e.svc.Rotate(ctx, credential.Request{TenantID: b.TenantID, Trigger: credential.TriggerManual, Reason: "after the incident"}); err != nil {
		t.Fatal(err)
	}
	if got := filtered(t, e.svc, credential.ClassCompromised); len(got) != 0 {
		t.Fatalf("compromised after the next rotation: %v", got)
	}
}

// A stale index, as crashes between a change and its index write or a
// lost write could leave it, is repaired by the sweep: a lost entry, an
// entry left pending, one with a wrong date, an entry with no tenant, a
// shard that does not decode. No credential is rotated to repair it.
// RebuildIndex repairs what the nightly slice leaves.
func TestSweepAndRebuildRepairAStaleIndex(t *testing.T) {
	s := devenv.StartTestStack(t, 4)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	kv := s.Vault.Root().KVv2(credential.DefaultIndexMount)
	ids := make([]string, len(s.Tenants))
	versions := map[string]int{}
	for i, tn := range s.Tenants {
		ids[i] = tn.TenantID
		_, _, rec := e.current(t, tn.TenantID)
		versions[tn.TenantID] = rec.Version()
	}
	// edit rewrites the shard of tenantID with change applied to its
	// decoded entries.
	edit := func(tenantID string, change func(m map[string]map[string]any)) {
		t.Helper()
		path := e.svc.IndexPath(tenantID)
		m := map[string]map[string]any{}
		version := 0
		sec, err := kv.Get(ctx, path)
		switch {
		case errors.Is(err, vaultapi.ErrSecretNotFound):
		case err != nil:
			t.Fatal(err)
		default:
			version = sec.VersionMetadata.Version
			if err := json.Unmarshal([]byte(sec.Data["tenants"].(string)), &m); err != nil {
				t.Fatal(err)
			}
		}
		change(m)
		b, _ := json.Marshal(m)
		if _, err := kv.Put(ctx, path, map[string]any{"tenants": string(b)}, vaultapi.WithCheckAndSet(version)); err != nil {
			t.Fatal(err)
		}
	}
	orphan := uuid.NewString()
	edit(ids[0], func(m map[string]map[string]any) { delete(m, ids[0]) })
	edit(ids[1], func(m map[string]map[string]any) { m[ids[1]]["s"] = credential.StatePending })
	edit(ids[2], func(m map[string]map[string]any) { m[ids[2]]["r"] = "2020-01-01T00:00:00Z" })
	edit(orphan, func(m map[string]map[string]any) {
		m[orphan] = map[string]any{"s": credential.StatePending, "t": "2020-01-01T00:00:00Z", "u": "admin@gone.example"}
	})
	if _, ok := overviewOf(t, e.svc, ids[0]); ok {
		t.Fatal("the overview lists a tenant whose entry was removed: it does not read the index")
	}
	if it, _ := overviewOf(t, e.svc, ids[2]); it.Status != credential.ClassOverdue {
		t.Fatalf("the planted date does not show: %+v", it)
	}

	sum, err := e.svc.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Index.Added != 1 || sum.Index.Removed != 1 || sum.Rotated != 0 {
		t.Fatalf("sweep over a stale index: %+v", sum)
	}
	for i, id := range ids {
		it, ok := overviewOf(t, e.svc, id)
		if !ok || it.Status != credential.ClassOK || it.RotationState != credential.StateCurrent {
			t.Errorf("tenant %d after the sweep: %+v (listed %t)", i, it, ok)
		}
		if _, _, rec := e.current(t, id); rec.Version() != versions[id] {
			t.Errorf("tenant %d was changed to repair the index (version %d, was %d)", i, rec.Version(), versions[id])
		}
	}
	if _, ok := overviewOf(t, e.svc, orphan); ok {
		t.Error("the entry with no tenant survived the sweep")
	}

	// A shard that does not decode: the sweep rebuilds it.
	garble, err := kv.Get(ctx, e.svc.IndexPath(ids[3]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, e.svc.IndexPath(ids[3]), map[string]any{"tenants": "{not json"}, vaultapi.WithCheckAndSet(garble.VersionMetadata.Version)); err != nil {
		t.Fatal(err)
	}
	if _, ok := overviewOf(t, e.svc, ids[3]); ok {
		t.Fatal("a tenant of a garbled shard is listed")
	}
	if sum, err = e.svc.Sweep(ctx); err != nil || sum.Index.Added < 1 {
		t.Fatalf("sweep over a garbled shard: %+v, %v", sum, err)
	}
	if _, ok := overviewOf(t, e.svc, ids[3]); !ok {
		t.Fatal("the sweep did not rebuild the garbled shard")
	}

	// What the nightly slice may not reach (a wrong username) the rebuild
	// repairs, and a second rebuild finds nothing to do.
	edit(ids[3], func(m map[string]map[string]any) { m[ids[3]]["u"] = "admin@wrong.example" })
	rep, err := e.svc.RebuildIndex(ctx)
	if err != nil || rep.Fixed != 1 || rep.Checked != len(ids) {
		t.Fatalf("rebuild: %+v, %v", rep, err)
	}
	if it, _ := overviewOf(t, e.svc, ids[3]); it.Domain != s.Tenants[3].Domain {
		t.Fatalf("after the rebuild: %+v", it)
	}
	if rep, err := e.svc.RebuildIndex(ctx); err != nil || rep.Added+rep.Fixed+rep.Removed != 0 {
		t.Fatalf("a second rebuild: %+v, %v", rep, err)
	}
}
