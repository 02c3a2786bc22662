package credential_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/notify"
)

// compromiseTenants is how many tenants TestCompromiseResponseUnderFaults
// resets.
const compromiseTenants = 100

// TestCompromiseResponseUnderFaults runs a compromise response over 100
// tenants while, chosen at random per tenant, MailU is down, slow,
// rejects the API or SMTP, drops a write's response, or the reset crashes
// at a step boundary. After the run every tenant is reset and verified or
// reported failed, and whatever Vault serves for it logs in (for a failed
// one, Vault may refuse to serve a password the reset marked
// compromised); once the
// faults are gone a second run finishes the rest without resetting anyone
// twice, and no pre-incident password logs in anymore.
func TestCompromiseResponseUnderFaults(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed>>1))
	s := devenv.StartTestStack(t, compromiseTenants)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	svc := e.with(func(c *credential.Config) { c.Notifier, c.Concurrency = &notify.Memory{}, 16 })

	before := map[string]string{}
	var ids []string
	faults := map[string]string{}
	kinds := []string{"none", "none", "down", "slow", "rejects api", "rejects smtp", "drops response", "crash"}
	for _, tn := range s.Tenants {
		_, pw, _ := e.current(t, tn.TenantID)
		before[tn.TenantID] = pw
		ids = append(ids, tn.TenantID)
		kind := kinds[rng.IntN(len(kinds))]
		faults[tn.TenantID] = kind
		var f mailustandin.Faults
		switch kind {
		case "down":
			f.Down = true
		case "slow":
			f.Delay = 300 * time.Millisecond
		case "rejects api":
			f.RejectAPI = true
		case "rejects smtp":
			f.RejectSMTP = true
		case "drops response":
			f.DropNextWriteResponses = 1
		case "crash":
			at := credential.Boundaries[rng.IntN(len(credential.Boundaries))]
			e.setHook(tn.TenantID, func(_ context.Context, _ string, b credential.Boundary) error {
				if b == at {
					return fmt.Errorf("injected crash at %s: %w", b, credential.ErrAbandon)
				}
				return nil
			})
		}
		if err := s.MailUHost.SetFaults(ctx, tn.Domain, f); err != nil {
			t.Fatal(err)
		}
	}
	req := credential.CompromiseRequest{IncidentID: "INC-FAULTS-1", TenantIDs: ids, Reason: "fault drill", Actor: credential.Actor{UserID: "drill"}}
	st, err := svc.StartCompromiseResponse(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if st.Total != compromiseTenants || st.Done != compromiseTenants {
		t.Fatalf("first run: %d of %d done", st.Done, st.Total)
	}
	// Faults off, crashed locks left to lapse (a reset takes over a lock
	// older than a minute).
	for _, tn := range s.Tenants {
		e.setHook(tn.TenantID, nil)
		if err := s.MailUHost.SetFaults(ctx, tn.Domain, mailustandin.Faults{}); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(2 * time.Minute)
	firstOutcome := map[string]string{}
	for _, o := range st.Results {
		firstOutcome[o.TenantID] = o.Outcome
		tn := tenantByID(s, o.TenantID)
		v, err := e.svc.Retrieve(ctx, o.TenantID, credential.Actor{UserID: "checker"})
		if o.Outcome == credential.OutcomeFailed && errors.Is(err, credential.ErrCompromised) {
			continue // the reset failed after marking the password compromised: nothing serves it
		}
		if err != nil {
			t.Fatalf("retrieve %s (fault %q, outcome %s): %v", o.TenantID, faults[o.TenantID], o.Outcome, err)
		}
		user, pw := v.Username, v.Password
		switch o.Outcome {
		case credential.OutcomeReset:
			if faults[o.TenantID] != "none" && faults[o.TenantID] != "slow" && faults[o.TenantID] != "drops response" {
				t.Errorf("tenant with fault %q reported reset", faults[o.TenantID])
			}
		case credential.OutcomeFailed:
			if o.Code == "" {
				t.Errorf("a failed tenant has no error class")
			}
		default:
			t.Errorf("first run outcome %q", o.Outcome)
		}
		if err := verifyLogin(ctx, tn.MailU.SMTPAddr, user, pw); err != nil {
			t.Errorf("after the first run (fault %q, outcome %s) the password Vault serves does not log in: %v", faults[o.TenantID], o.Outcome, err)
		}
	}

	st, err = svc.StartCompromiseResponse(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range st.Results {
		tn := tenantByID(s, o.TenantID)
		switch {
		case firstOutcome[o.TenantID] == credential.OutcomeReset && o.Outcome != credential.OutcomeAlreadyReset:
			t.Errorf("second run reset a tenant again: %s", o.Outcome)
		case o.Outcome != credential.OutcomeReset && o.Outcome != credential.OutcomeAlreadyReset:
			t.Errorf("second run (first fault %q): outcome %s %s", faults[o.TenantID], o.Outcome, o.Code)
		}
		user, pw := served(t, e, o.TenantID)
		if err := verifyLogin(ctx, tn.MailU.SMTPAddr, user, pw); err != nil {
			t.Errorf("after the second run the password Vault serves does not log in: %v", err)
		}
		if err := verifyLogin(ctx, tn.MailU.SMTPAddr, user, before[o.TenantID]); !errors.Is(err, mailu.ErrAuthFailed) {
			t.Errorf("after the second run the pre-incident password of a tenant (fault %q) still logs in: %v", faults[o.TenantID], err)
		}
	}
}

// served is what a retrieve would serve for a tenant now.
func served(t *testing.T, e *env, tenantID string) (user, password string) {
	t.Helper()
	v, err := e.svc.Retrieve(context.Background(), tenantID, credential.Actor{UserID: "checker"})
	if err != nil {
		t.Fatalf("retrieve %s: %v", tenantID, err)
	}
	return v.Username, v.Password
}

func tenantByID(s *devenv.TestStack, id string) devenv.DemoTenant {
	for _, tn := range s.Tenants {
		if tn.TenantID == id {
			return tn
		}
	}
	panic("no tenant " + id)
}

// jobs is a reset queue that keeps what it is sent.
type jobs struct {
	mu   sync.Mutex
	sent []credential.ResetJob
}

func (q *jobs) Send(_ context.Context, js []credential.ResetJob) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sent = append(q.sent, js...)
	return len(js), nil
}

func (q *jobs) take() []credential.ResetJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	out := q.sent
	q.sent = nil
	return out
}

// oneAtATime starts a stack of n tenants and a service that resets them
// one at a time, its jobs queued in q.
func oneAtATime(t *testing.T, n int) (*devenv.TestStack, *env, *jobs, *credential.Service, []string) {
	s := devenv.StartTestStack(t, n)
	e := newEnv(t, s, -1)
	q := &jobs{}
	svc := e.with(func(c *credential.Config) { c.ResetQueue, c.Concurrency = q, 1 })
	var ids []string
	for _, tn := range s.Tenants {
		ids = append(ids, tn.TenantID)
	}
	return s, e, q, svc, ids
}

// TestCompromiseResponseResumesACutChunk: the route answers before any
// tenant is reset; a chunk job cut off half-way (its invocation ends)
// records what it did and queues its continuation, which finishes the
// rest; every tenant is reset exactly once and reported reset.
func TestCompromiseResponseResumesACutChunk(t *testing.T) {
	_, e, q, svc, ids := oneAtATime(t, 6)
	ctx := context.Background()
	st, err := svc.StartCompromiseResponse(ctx, credential.CompromiseRequest{IncidentID: "INC-CUT-1", TenantIDs: ids, Reason: "drill", Actor: credential.Actor{UserID: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if st.State != credential.StateRunning || st.Total != len(ids) || st.Done != 0 {
		t.Fatalf("the start did work it should have queued: %+v", st)
	}
	queued := q.take()
	if len(queued) != 1 || queued[0].Plan {
		t.Fatalf("want one chunk job for %d tenants, got %+v", len(ids), queued)
	}
	// The invocation ends after the second reset. (A minute on: the
	// stack's own changes are older than the chunk's index mark.)
	e.clock.Advance(time.Minute)
	cut, stop := context.WithCancel(ctx)
	defer stop()
	var done atomic.Int32
	for _, id := range ids {
		e.setHook(id, func(_ context.Context, _ string, b credential.Boundary) error {
			if b == credential.AfterFinish && done.Add(1) == 2 {
				stop()
			}
			return nil
		})
	}
	if _, err := svc.RunResetJob(cut, queued[0]); err != nil {
		t.Fatalf("a cut chunk that queued its continuation: %v", err)
	}
	mid, err := svc.CompromiseResponse(ctx, "INC-CUT-1", 1, 0)
	if err != nil || mid.Done != 2 || mid.State != credential.StateRunning {
		t.Fatalf("after the cut: %+v, %v", mid, err)
	}
	// The chunk marked its tenants pending in the status index; when it
	// stopped, the two it reset show the reset, and the others are as
	// they were.
	reset := 0
	for _, id := range ids {
		ie, ok, err := svc.IndexEntryOf(ctx, id)
		if err != nil || !ok || ie.State != credential.StateCurrent || ie.Updated != "" {
			t.Errorf("after the cut, %s's index entry: %+v (%t, %v), want current", id, ie, ok, err)
		}
		if ie.Compromised == "INC-CUT-1" {
			reset++
		}
	}
	if reset != 2 {
		t.Errorf("after the cut, %d index entries show the incident, want the 2 reset", reset)
	}
	again := q.take()
	if len(again) != 1 || again[0] != queued[0] {
		t.Fatalf("the cut chunk queued %+v", again)
	}
	if _, err := svc.RunResetJob(ctx, again[0]); err != nil {
		t.Fatal(err)
	}
	// A delivery of the same job again changes nothing.
	if _, err := svc.RunResetJob(ctx, again[0]); err != nil {
		t.Fatal(err)
	}
	end, err := svc.CompromiseResponse(ctx, "INC-CUT-1", 1, 0)
	if err != nil || end.State != credential.StateFinished || end.Reset != len(ids) || end.RequestedBy != "alice" {
		t.Fatalf("after the continuation: %+v, %v", end, err)
	}
	if n := strings.Count(e.auditOut.String(), `"event":"smtp_credentials_emergency_reset"`); n != len(ids) {
		t.Fatalf("%d emergency reset records for %d tenants", n, len(ids))
	}
}

// TestCompromiseResponseBatchesTheIndex: a chunk marks its tenants
// pending in the status index before it resets any, in one write per
// leaf, and writes their closing entries together, so resets one at a
// time take a few leaf writes instead of two each. A tenant changed by
// another run after the mark (its lock released since) writes its own
// entries: it ends up showing the reset, not the other change.
func TestCompromiseResponseBatchesTheIndex(t *testing.T) {
	s, e, q, svc, ids := oneAtATime(t, 8)
	ctx := context.Background()
	e.clock.Advance(time.Minute) // the stack's own changes are older than the mark
	if _, err := svc.StartCompromiseResponse(ctx, credential.CompromiseRequest{IncidentID: "INC-BATCH-1", TenantIDs: ids, Reason: "drill", Actor: credential.Actor{UserID: "alice"}}); err != nil {
		t.Fatal(err)
	}
	queued := q.take()
	if len(queued) != 1 {
		t.Fatalf("want one chunk job, got %+v", queued)
	}
	var (
		first atomic.Bool
		raced string
	)
	for _, id := range ids {
		e.setHook(id, func(ctx context.Context, tenant string, b credential.Boundary) error {
			if b != credential.BeforeCreate || !first.CompareAndSwap(false, true) {
				return nil // (the rotation below comes here too)
			}
			// The first reset: every tenant is marked pending already.
			for _, id := range ids {
				if ie, _, err := svc.IndexEntryOf(ctx, id); err != nil || ie.State != credential.StatePending {
					t.Errorf("before the first reset, %s's index entry: %+v (%v), want pending", id, ie, err)
				}
			}
			// Another run rotates a tenant not reset yet.
			raced = ids[0]
			if raced == tenant {
				raced = ids[1]
			}
			if _, err := e.svc.Rotate(ctx, credential.Request{TenantID: raced, Trigger: credential.TriggerManual, Reason: "race"}); err != nil {
				t.Errorf("rotate %s during the response: %v", raced, err)
			}
			return nil
		})
	}
	mark, err := s.Vault.MarkVaultRequests()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.RunResetJob(ctx, queued[0]); err != nil {
		t.Fatal(err)
	}
	asked, err := mark.Since()
	if err != nil {
		t.Fatal(err)
	}
	leafWrites := 0
	for k, n := range asked {
		if strings.HasPrefix(k, "update smtp-index/data/leaves/") || strings.HasPrefix(k, "create smtp-index/data/leaves/") {
			leafWrites += n
		}
	}
	// The mark, the rotation's two, the raced reset's own two, the
	// closing batch: 6 on one leaf; a reset writing its own would take 16
	// more.
	if leafWrites > 8 {
		t.Errorf("%d resets took %d index leaf writes, want at most 8 (%s)", len(ids), leafWrites, asked.PerUnit(len(ids), 10))
	}
	end, err := svc.CompromiseResponse(ctx, "INC-BATCH-1", 1, 0)
	if err != nil || end.State != credential.StateFinished || end.Reset != len(ids) {
		t.Fatalf("the response: %+v, %v", end, err)
	}
	for _, id := range ids {
		_, _, rec := e.current(t, id)
		ie, ok, err := svc.IndexEntryOf(ctx, id)
		if err != nil || !ok || ie.State != credential.StateCurrent || ie.Updated != "" || ie.Compromised != "INC-BATCH-1" || ie.LastRotated != rec.LastRotated {
			t.Errorf("%s's index entry %+v (%t, %v), want current, showing INC-BATCH-1, rotated at %s (raced: %t)", id, ie, ok, err, rec.LastRotated, id == raced)
		}
	}
}

// TestCompromiseResponseByHost: a mailu_host or all response is selected
// by its planning job, not by the route; tenants on another host are not
// part of it.
func TestCompromiseResponseByHost(t *testing.T) {
	s := devenv.StartTestStack(t, 3)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	q := &jobs{}
	svc := e.with(func(c *credential.Config) { c.ResetQueue = q })
	run := func(req credential.CompromiseRequest) credential.CompromiseStatus {
		t.Helper()
		st, err := svc.StartCompromiseResponse(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if st.State != credential.StatePlanning || st.Total != 0 {
			t.Fatalf("the route selected the tenants itself: %+v", st)
		}
		for js := q.take(); len(js) > 0; js = q.take() {
			for _, j := range js {
				if _, err := svc.RunResetJob(ctx, j); err != nil {
					t.Fatalf("job %+v: %v", j, err)
				}
			}
		}
		st, err = svc.CompromiseResponse(ctx, req.IncidentID, 1, 0)
		if err != nil || st.State != credential.StateFinished {
			t.Fatalf("%+v, %v", st, err)
		}
		return st
	}
	if st := run(credential.CompromiseRequest{IncidentID: "INC-HOST-1", MailUHost: "mail.elsewhere.example", Actor: credential.Actor{UserID: "alice"}}); st.Total != 0 || len(st.Results) != 0 {
		t.Fatalf("tenants of another host were part of the response: %+v", st)
	}
	host, _, _ := strings.Cut(s.Tenants[0].MailU.SMTPAddr, ":")
	st := run(credential.CompromiseRequest{IncidentID: "INC-HOST-2", MailUHost: host, Actor: credential.Actor{UserID: "alice"}})
	if st.Total < len(s.Tenants) || st.Reset != st.Total {
		t.Fatalf("on the host: %+v", st)
	}
	if st := run(credential.CompromiseRequest{IncidentID: "INC-HOST-2", All: true, Actor: credential.Actor{UserID: "alice"}}); st.AlreadyReset != st.Total || st.Reset != 0 {
		t.Fatalf("all, after the host's response for the same incident: %+v", st)
	}
}
