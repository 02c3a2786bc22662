package credential_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
)

// faultRuns is how many randomized runs TestRandomFaultsNeverBreakMail
// makes: 1,000 by default (make test); ROTATION_FAULT_RUNS=20000 for the
// long mode. ROTATION_FAULT_SEED replays a seed the test logged.
func faultRuns(t *testing.T) (int, uint64) {
	runs, seed := 1000, uint64(time.Now().UnixNano())
	if v := os.Getenv("ROTATION_FAULT_RUNS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("ROTATION_FAULT_RUNS=%q", v)
		}
		runs = n
	}
	if v := os.Getenv("ROTATION_FAULT_SEED"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("ROTATION_FAULT_SEED=%q", v)
		}
		seed = n
	}
	return runs, seed
}

// faultKinds are what can go wrong in a run.
var faultKinds = []string{
	"none", "crash", "step error", "vault fault", "vault lost response", "audit down",
	"mailu down", "mailu rejects api", "mailu rejects smtp", "mailu fails next write", "mailu drops next response", "mailu slow",
	// MailU refusing a right password over SMTP, as its rate limits and
	// AUTH_REQUIRE_TOKENS do (Dovecot's 535): nothing may be overwritten.
	"mailu rate limits smtp", "mailu requires tokens",
}

// TestRandomFaultsNeverBreakMail rotates tenants while crashing runs at
// every step boundary and injecting Vault, audit and MailU faults during
// every step, chosen at random. After each run a clean run (as the next
// sweep or queue delivery would) must leave the tenant consistent: no
// change pending, the password Vault serves logs in over SMTP AUTH, the
// metadata matches the record, and the password replaced by a finished
// rotation no longer logs in.
func TestRandomFaultsNeverBreakMail(t *testing.T) {
	runs, seed := faultRuns(t)
	t.Logf("%d runs, seed %d (ROTATION_FAULT_SEED=%d replays it)", runs, seed, seed)
	const tenants = 4
	s := devenv.StartTestStack(t, tenants)
	e := newEnv(t, s, -1) // no cool-down: every run may rotate
	var pws seen

	type tally struct {
		kinds             map[string]int
		at                map[credential.Boundary]int
		failed, rotated   int
		rolledBack, equal int
	}
	results := make([]tally, tenants)
	errs := make(chan error, tenants)
	var wg sync.WaitGroup
	for i, tn := range s.Tenants {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(seed, uint64(i)))
			res := &results[i]
			res.kinds, res.at = map[string]int{}, map[credential.Boundary]int{}
			for n := i; n < runs; n += tenants {
				if err := oneFaultRun(t, e, rng, tn, &pws, res.kinds, res.at, &res.failed, &res.rotated, &res.rolledBack, &res.equal); err != nil {
					errs <- fmt.Errorf("tenant %s, run %d: %w", tn.TenantID, n, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if t.Failed() {
		return
	}
	total := tally{kinds: map[string]int{}, at: map[credential.Boundary]int{}}
	for _, r := range results {
		for k, v := range r.kinds {
			total.kinds[k] += v
		}
		for k, v := range r.at {
			total.at[k] += v
		}
		total.failed += r.failed
		total.rotated += r.rotated
		total.rolledBack += r.rolledBack
		total.equal += r.equal
	}
	t.Logf("faults %v at %v; %d runs failed, then %d tenants ended rotated, %d unchanged (%d rolled back)",
		total.kinds, total.at, total.failed, total.rotated, total.equal, total.rolledBack)
	// The test proves something only if faults fired and both outcomes
	// (finished and undone) happened.
	if total.failed == 0 || total.rotated == 0 || total.equal == 0 || total.rolledBack == 0 {
		t.Fatalf("the faults did not exercise both resumption paths: %+v", total)
	}
	if runs >= 500 {
		for _, k := range faultKinds {
			if total.kinds[k] == 0 {
				t.Errorf("fault %q never chosen", k)
			}
		}
		for _, b := range credential.Boundaries {
			if total.at[b] == 0 {
				t.Errorf("no fault at %s", b)
			}
		}
	}
	// Every tenant still rotates cleanly: nothing is stuck.
	for _, tn := range s.Tenants {
		if _, err := e.svc.Rotate(context.Background(), credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "final"}); err != nil {
			t.Errorf("final rotation of %s: %v", tn.TenantID, err)
		}
	}
	pws.assertAbsent(t, "the audit stream", e.auditOut.String())
	pws.assertAbsent(t, "the logs", e.logOut.String())
	pws.assertAbsent(t, "the stack's logs", s.Log.String())
}

func oneFaultRun(t *testing.T, e *env, rng *rand.Rand, tn devenv.DemoTenant, pws *seen,
	kinds map[string]int, at map[credential.Boundary]int, failed, rotated, rolledBack, equal *int) error {
	ctx := context.Background()
	id := tn.TenantID
	_, before, _ := e.current(t, id)
	pws.add(before)

	kind, boundary, runErr := faultedRun(e, rng, tn, kinds, at)
	if rng.IntN(2) == 0 {
		// Half the time the next run is faulted too: it must resume the
		// first one's leftovers under faults without making things worse.
		k2, b2, err2 := faultedRun(e, rng, tn, kinds, at)
		kind, boundary = kind+" then "+k2, boundary+" then "+b2
		runErr = errors.Join(runErr, err2)
	}
	if runErr != nil {
		*failed++
		if strings.Contains(runErr.Error(), before) {
			return errors.New("an error shows a password")
		}
	}

	// The next run (a sweep's or the queue's) resumes or repairs.
	var res credential.Result
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		res, err = e.svc.Rotate(ctx, credential.Request{TenantID: id, Trigger: credential.TriggerSchedule, OnlyIfDue: true})
		if !errors.Is(err, credential.ErrConflict) {
			break
		}
		// A lock whose taking was applied but not answered: it expires.
		e.clock.Advance(5*time.Minute + time.Second)
	}
	if err != nil {
		return fmt.Errorf("fault %q at %s (run error %v): the next run failed: %w", kind, boundary, runErr, err)
	}
	if res.RolledBack {
		*rolledBack++
	}
	user, after, rec := e.current(t, id)
	pws.add(after)
	if rec.Pending() {
		return fmt.Errorf("fault %q at %s: a change is still pending", kind, boundary)
	}
	if err := verifyLogin(ctx, tn.MailU.SMTPAddr, user, after); err != nil {
		return fmt.Errorf("fault %q at %s (run error %v): the password Vault serves does not log in: %w", kind, boundary, runErr, err)
	}
	md, err := e.stack.App.Vault.ReadMetadata(ctx, credential.AdminPath(id))
	if err != nil {
		return err
	}
	if md.CustomMetadata[credential.MetaState] != credential.StateCurrent || md.CustomMetadata[credential.MetaLastRotated] != rec.LastRotated {
		return fmt.Errorf("fault %q at %s: metadata %v does not match the record (last_rotated %s)", kind, boundary, md.CustomMetadata, rec.LastRotated)
	}
	// The status index agrees with the record once the next run is done,
	// whatever crashed before (index.go).
	ent, ok, err := e.svc.IndexEntryOf(ctx, id)
	if err != nil || !ok || ent.State != credential.StateCurrent || ent.LastRotated != rec.LastRotated || ent.Username != rec.Username {
		return fmt.Errorf("fault %q at %s: status index entry %+v (found %t, %v) does not match the record (last_rotated %s)", kind, boundary, ent, ok, err, rec.LastRotated)
	}
	if after == before {
		*equal++
		return nil
	}
	*rotated++
	if err := verifyLogin(ctx, tn.MailU.SMTPAddr, user, before); !errors.Is(err, mailu.ErrAuthFailed) {
		return fmt.Errorf("fault %q at %s: the replaced password still logs in (%v)", kind, boundary, err)
	}
	return nil
}

// faultedRun picks a fault, runs one manual rotation of tn under it and
// clears it again. A run abandoned as a crash leaves its lock, which the
// clock then moves past.
func faultedRun(e *env, rng *rand.Rand, tn devenv.DemoTenant, kinds map[string]int, at map[credential.Boundary]int) (string, credential.Boundary, error) {
	ctx := context.Background()
	id := tn.TenantID
	kind := faultKinds[rng.IntN(len(faultKinds))]
	boundary := credential.Boundaries[rng.IntN(len(credential.Boundaries))]
	kinds[kind]++
	var mailuFault mailustandin.Faults
	switch kind {
	case "mailu down":
		mailuFault.Down = true
	case "mailu rejects api":
		mailuFault.RejectAPI = true
	case "mailu rejects smtp":
		mailuFault.RejectSMTP = true
	case "mailu fails next write":
		mailuFault.FailNextWrites = 1
	case "mailu drops next response":
		mailuFault.DropNextWriteResponses = 1
	case "mailu slow":
		mailuFault.Delay = 20 * time.Millisecond
	case "mailu rate limits smtp":
		mailuFault.RateLimitSMTP = true
	case "mailu requires tokens":
		mailuFault.RequireTokens = true
	}
	switch {
	case kind == "crash" || kind == "step error" || strings.HasPrefix(kind, "mailu"):
		at[boundary]++
		e.setHook(id, func(ctx context.Context, _ string, b credential.Boundary) error {
			if b != boundary {
				return nil
			}
			switch kind {
			case "crash":
				return fmt.Errorf("injected crash: %w", credential.ErrAbandon)
			case "step error":
				return errors.New("injected step failure")
			}
			// A MailU fault from this boundary on: during the next step.
			return e.stack.MailU.SetFaults(ctx, tn.Domain, mailuFault)
		})
		if strings.HasPrefix(kind, "mailu") && (boundary == credential.BeforeCreate || rng.IntN(3) == 0) {
			// From the start: also during the resumption of an earlier
			// run's change, which comes before the first boundary.
			kinds[kind+" from the start"]++
			if err := e.stack.MailU.SetFaults(ctx, tn.Domain, mailuFault); err != nil {
				return kind, boundary, err
			}
		}
	case kind == "vault fault" || kind == "vault lost response":
		e.vault.arm(id, 1+rng.IntN(16))
		if kind == "vault lost response" {
			e.vault.loseResponse(id)
		}
	case kind == "audit down":
		e.audit.set(id, true)
	}

	req := credential.Request{TenantID: id, Trigger: credential.TriggerManual, Reason: "fault test"}
	if rng.IntN(3) == 0 {
		// A run of the sweep or the queue for a tenant not due: it only
		// resumes what an earlier run left.
		req = credential.Request{TenantID: id, Trigger: credential.TriggerSchedule, OnlyIfDue: true}
		kinds["resume-only run"]++
	}
	_, runErr := e.svc.Rotate(ctx, req)

	e.setHook(id, nil)
	e.vault.disarm(id)
	e.audit.set(id, false)
	if err := e.stack.MailU.SetFaults(ctx, tn.Domain, mailustandin.Faults{}); err != nil {
		return kind, boundary, err
	}
	if errors.Is(runErr, credential.ErrAbandon) {
		e.clock.Advance(5*time.Minute + time.Second) // the crashed run's lock expires
	}
	return kind, boundary, runErr
}
