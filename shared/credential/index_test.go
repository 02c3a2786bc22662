package credential_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/vault"
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
	if !it.RotationFailing || !strings.HasSuffix(it.RotationFailure, " upstream_unavailable") {
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

// The index grows by itself: with leaves limited to 1,500 bytes, 200
// tenants are indexed through the writers' path while the stack's tenants
// rotate again and again, each change marking its tenant pending and then
// rewriting it, in leaves that split under them. Nothing is lost: after
// it, every entry equals its record (a rebuild finds nothing to add or
// fix) and no leaf exceeds the limit.
func TestIndexSplitsWhileRotationsRun(t *testing.T) {
	s := devenv.StartTestStack(t, 4)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	const limit = 1500
	svc := e.with(func(c *credential.Config) { c.IndexLeafBytes = limit })
	now := e.clock.Now()
	grow := s.SeedPlaceholderTenants(t, 200, func(i int) time.Time { return now.Add(-time.Duration(i) * time.Hour) })

	var wg sync.WaitGroup
	next := make(chan string)
	for range 8 {
		wg.Go(func() {
			for id := range next {
				if err := svc.IndexTenant(ctx, id); err != nil {
					t.Error(err)
				}
			}
		})
	}
	rotated := make([]time.Time, len(s.Tenants))
	var failures atomic.Int64
	for i, tn := range s.Tenants {
		wg.Go(func() {
			for range 4 {
				res, err := svc.Rotate(ctx, credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "split test"})
				if err != nil {
					failures.Add(1)
					t.Errorf("rotate %s while the index splits: %v", tn.TenantID, err)
					return
				}
				rotated[i] = res.LastRotated
			}
		})
	}
	for _, id := range grow {
		next <- id
	}
	close(next)
	wg.Wait()
	if failures.Load() > 0 {
		t.FailNow()
	}

	n, largest, err := svc.IndexLeaves(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n < 16 || largest > limit {
		t.Fatalf("after growing to %d tenants: %d leaves, the largest %d bytes (limit %d)", len(grow)+len(s.Tenants), n, largest, limit)
	}
	for i, tn := range s.Tenants {
		got, ok, err := svc.IndexEntryOf(ctx, tn.TenantID)
		if err != nil || !ok || got.State != credential.StateCurrent || got.LastRotated != credential.FormatTime(rotated[i]) {
			t.Errorf("tenant %d's entry after its rotations: %+v (found %t, %v), want rotated at %v", i, got, ok, err, rotated[i])
		}
	}
	rep, err := svc.RebuildIndex(ctx)
	if err != nil || !rep.Done || rep.Added+rep.Fixed+rep.Removed+rep.Failed != 0 || rep.Checked != len(grow)+len(s.Tenants) {
		for _, l := range strings.Split(e.logOut.String(), "\n") {
			if strings.Contains(l, "status index") {
				t.Log(l)
			}
		}
		t.Fatalf("a rebuild after the growth found the index wrong: %+v, %v", rep, err)
	}
}

// An index written before leaves split (16 fixed shards) is read as it
// is until a change migrates it, and the migration keeps what only the
// index knew.
func TestLegacyIndexIsMigrated(t *testing.T) {
	s := devenv.StartTestStack(t, 3)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	root := s.Vault.Root()
	const mount = credential.DefaultIndexMount
	// The old layout: shards-16/<fnv32a mod 16>, a notice mark only it has.
	shards := map[int]map[string]credential.IndexEntry{}
	for _, tn := range s.Tenants {
		entry, ok, err := e.svc.IndexEntryOf(ctx, tn.TenantID)
		if err != nil || !ok {
			t.Fatalf("entry of %s: %v", tn.TenantID, err)
		}
		entry.NoticeFor = "legacy-" + tn.TenantID[:8]
		h := fnv.New32a()
		h.Write([]byte(tn.TenantID))
		i := int(h.Sum32() % 16)
		if shards[i] == nil {
			shards[i] = map[string]credential.IndexEntry{}
		}
		shards[i][tn.TenantID] = entry
	}
	wipeIndex(t, s)
	for i, m := range shards {
		b, _ := json.Marshal(m)
		if _, err := root.KVv2(mount).Put(ctx, fmt.Sprintf("shards-16/%04d", i), map[string]any{"tenants": string(b)}, vaultapi.WithCheckAndSet(0)); err != nil {
			t.Fatal(err)
		}
	}
	svc := e.with(func(*credential.Config) {})
	for _, tn := range s.Tenants {
		if it, ok := overviewOf(t, svc, tn.TenantID); !ok || it.Domain != tn.Domain {
			t.Fatalf("before the migration, the overview does not list %s from the old shards: %+v", tn.TenantID, it)
		}
	}
	if _, err := svc.Rotate(ctx, credential.Request{TenantID: s.Tenants[0].TenantID, Trigger: credential.TriggerManual, Reason: "after the upgrade"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.KVv2(mount).Get(ctx, "leaves/layout"); err != nil {
		t.Fatalf("the change did not migrate the index: %v", err)
	}
	for i, tn := range s.Tenants {
		got, ok, err := svc.IndexEntryOf(ctx, tn.TenantID)
		if err != nil || !ok {
			t.Fatalf("tenant %d lost in the migration: %v", i, err)
		}
		if i > 0 && got.NoticeFor != "legacy-"+tn.TenantID[:8] {
			t.Errorf("tenant %d's entry was not carried over: %+v", i, got)
		}
		if i == 0 && got.State != credential.StateCurrent {
			t.Errorf("the rotated tenant's entry: %+v", got)
		}
	}
}

// A rebuild runs a chunk at a time and records its place: an invocation
// that dies half-way through a chunk (its context cancelled after some of
// the chunk's reads) records nothing for that chunk, and the next
// invocation writes it again and goes on to the end.
func TestRebuildResumesAcrossInvocations(t *testing.T) {
	s := devenv.StartTestStack(t, 2)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	now := e.clock.Now()
	s.SeedPlaceholderTenants(t, 40, func(i int) time.Time { return now.Add(-time.Duration(i) * 24 * time.Hour) })
	wipeIndex(t, s)
	dying := &cancelAfter{Vault: e.vault}
	svc := e.with(func(c *credential.Config) { c.Vault, c.RebuildBudget = dying, time.Nanosecond })
	svc.SetRebuildChunk(6)

	calls, died := 0, 0
	for {
		calls++
		if calls > 30 {
			t.Fatal("the rebuild does not end")
		}
		cctx, cancel := context.WithCancel(ctx)
		if calls%3 == 2 {
			dying.arm(4, cancel) // the 4th read of this call kills it
		}
		rep, err := svc.RebuildIndex(cctx)
		cancel()
		dying.arm(0, nil)
		if err != nil {
			if !errors.Is(err, context.Canceled) && !strings.Contains(err.Error(), "context canceled") {
				t.Fatalf("call %d: %v", calls, err)
			}
			died++
			continue
		}
		if rep.Done {
			if rep.Added != 42 || rep.Failed != 0 {
				t.Fatalf("the finished rebuild: %+v", rep)
			}
			break
		}
		if rep.Remaining == 0 {
			t.Fatalf("call %d stopped with nothing remaining: %+v", calls, rep)
		}
	}
	if died == 0 || calls < 42/6 {
		t.Fatalf("%d calls, %d died: the rebuild did not run in ranges", calls, died)
	}
	// Every entry equals its record: a second, full rebuild changes nothing.
	svc2 := e.with(func(*credential.Config) {})
	if rep, err := svc2.RebuildIndex(ctx); err != nil || !rep.Done || rep.Added+rep.Fixed+rep.Removed != 0 || rep.Checked != 42 {
		t.Fatalf("a full rebuild after the ranged one: %+v, %v", rep, err)
	}
}

// cancelAfter cancels a call's context at its n-th metadata read, as a
// Lambda timeout or crash would end it.
type cancelAfter struct {
	credential.Vault
	mu     sync.Mutex
	left   int
	cancel context.CancelFunc
}

func (c *cancelAfter) arm(n int, cancel context.CancelFunc) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.left, c.cancel = n, cancel
}

func (c *cancelAfter) ReadMetadata(ctx context.Context, path string) (*vault.Metadata, error) {
	c.mu.Lock()
	if c.cancel != nil {
		if c.left--; c.left <= 0 {
			c.cancel()
			c.cancel = nil
		}
	}
	c.mu.Unlock()
	return c.Vault.ReadMetadata(ctx, path)
}

// wipeIndex deletes every document of the status index's mount, as a
// restore of an old backup or an upgrade would find it.
func wipeIndex(t *testing.T, s *devenv.TestStack) {
	t.Helper()
	ctx := context.Background()
	root := s.Vault.Root()
	var walk func(dir string)
	walk = func(dir string) {
		sec, err := root.Logical().ListWithContext(ctx, credential.DefaultIndexMount+"/metadata/"+dir)
		if err != nil {
			t.Fatal(err)
		}
		if sec == nil {
			return
		}
		for _, k := range sec.Data["keys"].([]any) {
			key := dir + k.(string)
			if strings.HasSuffix(key, "/") {
				walk(key)
				continue
			}
			if err := root.KVv2(credential.DefaultIndexMount).DeleteMetadata(ctx, key); err != nil {
				t.Fatal(err)
			}
		}
	}
	walk("")
}

// TestOverviewFromTheSetEqualsTheWholeIndex: every page the overview
// answers from the summary and the set needing attention (the unfiltered
// listing's first pages, the attention filters) is the page it answers
// from every leaf of the index, in the same order, with the same total.
func TestOverviewFromTheSetEqualsTheWholeIndex(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	svc := e.with(func(c *credential.Config) { c.IndexCacheTTL = 0 })
	now := s.Clock.Now()
	entries := map[string]credential.IndexEntry{}
	var ids []string
	for i := range 400 {
		id := uuid.NewString()
		domain := fmt.Sprintf("t%03d.example.test", i)
		e := credential.IndexEntry{LastRotated: credential.FormatTime(now.Add(-time.Duration(i*7%200)*24*time.Hour - time.Duration(i)*time.Minute)),
			State: credential.StateCurrent, Username: "admin@" + domain, WebmailURL: "https://mail." + domain}
		switch {
		case i%37 == 0:
			e.LastRotated = "" // unknown age
		case i%41 == 0:
			e.Failing = credential.FormatTime(now) + " upstream_unavailable"
		case i%43 == 0:
			e.Compromised = "INC-T1"
		case i%47 == 0:
			e.State = credential.StatePending
		case i%53 == 0:
			e.LastRotated = credential.FormatTime(now.Add(-time.Duration(i%20) * 24 * time.Hour)) // a twin date
		}
		entries[id] = e
		ids = append(ids, id)
	}
	if err := svc.WriteIndexEntries(ctx, ids, entries); err != nil {
		t.Fatal(err)
	}
	if err := svc.RefreshAttention(ctx); err != nil {
		t.Fatal(err)
	}
	// Pages of 7 walk across the end of the set's head (about 70 tenants
	// last rotated by its cutoff, or of unknown age) into the listing
	// beyond it.
	queries := []credential.OverviewQuery{{Page: 1, PerPage: 100}}
	for p := 1; p <= 14; p++ {
		queries = append(queries, credential.OverviewQuery{Page: p, PerPage: 7})
	}
	for _, st := range []string{credential.ClassOverdue, credential.ClassDueSoon, credential.ClassCompromised, credential.StatusFailing} {
		queries = append(queries, credential.OverviewQuery{Status: st, Page: 1, PerPage: 100}, credential.OverviewQuery{Status: st, Page: 2, PerPage: 3})
	}
	answer := func() []credential.OverviewPage {
		var out []credential.OverviewPage
		for _, q := range queries {
			p, err := svc.Overview(ctx, q, credential.Actor{UserID: "test"})
			if err != nil {
				t.Fatalf("overview %+v: %v", q, err)
			}
			out = append(out, p)
		}
		return out
	}
	fromSet := answer()
	// Without the summary, every listing reads every leaf.
	if _, err := s.Vault.Root().KVv2(credential.DefaultIndexMount).Get(ctx, "summary"); err != nil {
		t.Fatalf("no summary: %v", err)
	}
	if err := s.Vault.Root().KVv2(credential.DefaultIndexMount).DeleteMetadata(ctx, "summary"); err != nil {
		t.Fatal(err)
	}
	whole := answer()
	for i, q := range queries {
		a, b := fromSet[i], whole[i]
		if len(a.Credentials) == 0 && q.Page == 1 {
			t.Errorf("%+v: an empty first page tests nothing", q)
		}
		if a.Total != b.Total || !slices.EqualFunc(a.Credentials, b.Credentials, func(x, y credential.OverviewItem) bool { return x.TenantID == y.TenantID && x.Status == y.Status }) {
			t.Errorf("%+v: from the set total %d %v, from the whole index total %d %v", q, a.Total, tenantIDs(a), b.Total, tenantIDs(b))
		}
	}
	// The listing's order: the earliest last rotation first, unknown first of all.
	first := whole[0].Credentials
	for i := 1; i < len(first); i++ {
		a, b := first[i-1], first[i]
		if b.LastRotated == nil && a.LastRotated != nil || a.LastRotated != nil && b.LastRotated != nil && a.LastRotated.After(*b.LastRotated) {
			t.Fatalf("out of order at %d: %v then %v", i, a.LastRotated, b.LastRotated)
		}
	}
}

func tenantIDs(p credential.OverviewPage) []string {
	var ids []string
	for _, it := range p.Credentials {
		ids = append(ids, it.TenantID[:8])
	}
	return ids
}
