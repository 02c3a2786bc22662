package credential_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/notify"
)

const day = 24 * time.Hour

// TestSweepTimeTravel runs the rotate-sweep function as EventBridge would
// (the sample scheduled event, through the Lambda handler path) on a stack
// whose clock the test moves: nothing on day 172, the notice on day 173
// and only once, nothing on day 179, the rotation on day 180, the next
// cycle's notice, and a sweep with no inline budget that fans out
// through the queue to the rotate function.
func TestSweepTimeTravel(t *testing.T) {
	s := devenv.StartTestStack(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	event, err := os.ReadFile("../../events/rotate-sweep.json")
	if err != nil {
		t.Fatal(err)
	}
	var pws seen
	sweep := func(t *testing.T) credential.Summary {
		t.Helper()
		out, err := s.Gateway.Invoke(ctx, "rotate-sweep", event)
		if err != nil {
			t.Fatalf("rotate-sweep: %v", err)
		}
		var sum credential.Summary
		if err := json.Unmarshal(out, &sum); err != nil {
			t.Fatalf("rotate-sweep answered %s: %v", out, err)
		}
		if err := s.RotateQueue.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		return sum
	}
	passwords := func(t *testing.T) map[string]string {
		t.Helper()
		out := map[string]string{}
		for _, tn := range s.Tenants {
			v, err := s.App.API.Credentials.Retrieve(ctx, tn.TenantID, credential.Actor{UserID: "test"})
			if err != nil {
				t.Fatal(err)
			}
			if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, v.Username, v.Password, nil); err != nil {
				t.Fatalf("the password Vault serves for %s does not log in: %v", tn.TenantID, err)
			}
			pws.add(v.Password)
			out[tn.TenantID] = v.Password
		}
		return out
	}
	notices := func() []notify.Message {
		var out []notify.Message
		for _, m := range s.Notifications.Messages() {
			if m.Kind == notify.KindRotationNotice {
				out = append(out, m)
			}
		}
		return out
	}
	want := func(t *testing.T, got, want credential.Summary) {
		t.Helper()
		// The sweep also anchors the audit chains; every one must link up.
		if got.AnchorBlocked != 0 || got.Anchored == 0 {
			t.Fatalf("sweep anchored %d chains, %d blocked", got.Anchored, got.AnchorBlocked)
		}
		got.Anchored, got.AnchorBlocked = 0, 0
		// Each night re-reads a slice of the status index; every entry it
		// reads must agree with Vault (nothing added, fixed or removed).
		got.Index.Checked = 0
		if got != want {
			t.Fatalf("sweep summary %+v, want %+v", got, want)
		}
	}
	n := len(s.Tenants)
	start := passwords(t)

	s.Clock.Shift(172 * day)
	want(t, sweep(t), credential.Summary{Scanned: n})
	if len(notices()) != 0 {
		t.Fatal("a notice before day 173")
	}

	s.Clock.Shift(day) // day 173
	// A sweep with less than its reserve (2 minutes) of the invocation
	// left sends no notice and marks none: the next sweep sends them all.
	short, cancelShort := context.WithTimeout(ctx, 90*time.Second)
	late, err := s.App.API.Credentials.Sweep(short)
	cancelShort()
	if err != nil || late.Notified != 0 || late.Failed != 0 || len(notices()) != 0 {
		t.Fatalf("a sweep out of time: %+v, %v, %d notices", late, err, len(notices()))
	}
	want(t, sweep(t), credential.Summary{Scanned: n, Notified: n})
	got := notices()
	if len(got) != n {
		t.Fatalf("%d notices on day 173, want %d", len(got), n)
	}
	for i, tn := range s.Tenants {
		found := false
		for _, m := range got {
			found = found || (m.TenantID == tn.TenantID && strings.Contains(m.Subject, tn.TenantID))
		}
		if !found {
			t.Fatalf("no notice for tenant %d (%s): %+v", i, tn.TenantID, got)
		}
	}
	want(t, sweep(t), credential.Summary{Scanned: n}) // once per cycle
	s.Clock.Shift(6 * day)                            // day 179
	want(t, sweep(t), credential.Summary{Scanned: n})
	if len(notices()) != n {
		t.Fatal("a second notice in the same cycle")
	}
	for id, pw := range passwords(t) {
		if start[id] != pw {
			t.Fatal("a credential changed before day 180")
		}
	}

	s.Clock.Shift(day) // day 180
	want(t, sweep(t), credential.Summary{Scanned: n, Due: n, Rotated: n})
	rotated := passwords(t)
	for _, tn := range s.Tenants {
		if rotated[tn.TenantID] == start[tn.TenantID] {
			t.Fatalf("tenant %s was not rotated on day 180", tn.TenantID)
		}
		if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, "admin@"+tn.Domain, start[tn.TenantID], nil); !errors.Is(err, mailu.ErrAuthFailed) {
			t.Fatalf("the old password of %s still logs in: %v", tn.TenantID, err)
		}
	}
	if c := strings.Count(s.AuditLog.String(), `"event":"smtp_credentials_rotated"`); c != n {
		t.Fatalf("%d smtp_credentials_rotated events, want %d", c, n)
	}
	want(t, sweep(t), credential.Summary{Scanned: n})

	// The next cycle: a new notice 173 days after the credential.
	s.Clock.Shift(173 * day)
	want(t, sweep(t), credential.Summary{Scanned: n, Notified: n})
	if len(notices()) != 2*n {
		t.Fatalf("%d notices after two cycles, want %d", len(notices()), 2*n)
	}

	// Beyond the sweep's budget everything goes through RotateQueue to the
	// rotate function (SQS events, partial batch failures).
	s.Apps["rotate-sweep"].API.Credentials.SetInline(0)
	s.Clock.Shift(7 * day)
	want(t, sweep(t), credential.Summary{Scanned: n, Due: n, Queued: n})
	for id, pw := range passwords(t) {
		if pw == rotated[id] {
			t.Fatalf("tenant %s was not rotated through the queue", id)
		}
	}
	if s.RotateQueue.Dead() != 0 {
		t.Fatal("jobs went to the dead-letter queue")
	}
	msgs, _ := json.Marshal(s.Notifications.Messages())
	pws.assertAbsent(t, "the notifications", string(msgs))
	pws.assertAbsent(t, "the audit stream", s.AuditLog.String())
	pws.assertAbsent(t, "the function logs", s.Log.String())
}

// TestSweepReadsNoSecret counts the engine's secret reads during sweeps
// that notify and find nothing due: no KV data read, no Transit decrypt.
func TestSweepReadsNoSecret(t *testing.T) {
	s := devenv.StartTestStack(t, 3)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	notes := &notify.Memory{}
	sw := e.with(func(c *credential.Config) { c.Notifier, c.Concurrency = notes, 4 })
	for _, shift := range []time.Duration{0, 173 * day, day} {
		e.clock.Advance(shift)
		before := e.vault.calls.Load()
		sum, err := sw.Sweep(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if sum.Scanned != len(s.Tenants) || sum.Failed != 0 || sum.Rotated != 0 {
			t.Fatalf("sweep: %+v", sum)
		}
		if n := e.vault.calls.Load() - before; n != 0 {
			t.Fatalf("a sweep made %d KV data reads or Transit decrypts", n)
		}
	}
	if len(notes.Messages()) != len(s.Tenants) {
		t.Fatalf("%d notices, want %d", len(notes.Messages()), len(s.Tenants))
	}
}

// TestSweepResumesAnInterruptedRotation leaves a rotation crashed after
// setSecret (MailU has the pending password; Vault still serves the old
// one) and checks that the sweep finishes it.
func TestSweepResumesAnInterruptedRotation(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	tn := s.Tenants[0]
	e := newEnv(t, s, -1)
	ctx := context.Background()
	e.setHook(tn.TenantID, func(ctx context.Context, _ string, at credential.Boundary) error {
		if at == credential.AfterSet {
			return credential.ErrAbandon
		}
		return nil
	})
	if _, err := e.svc.Rotate(ctx, credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "crash"}); !errors.Is(err, credential.ErrAbandon) {
		t.Fatalf("crashing rotation: %v", err)
	}
	e.setHook(tn.TenantID, nil)
	// A reader meanwhile gets the pending password, which MailU accepts.
	v, err := e.svc.Retrieve(ctx, tn.TenantID, credential.Actor{UserID: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	if err := verifyLogin(ctx, tn.MailU.SMTPAddr, v.Username, v.Password); err != nil {
		t.Fatalf("retrieve during the interrupted rotation served a password MailU refuses: %v", err)
	}
	e.clock.Advance(5*time.Minute + time.Second) // the crashed run's lock expires
	sum, err := e.with(func(c *credential.Config) { c.Notifier = &notify.Memory{} }).Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Resumed != 1 || sum.Failed != 0 {
		t.Fatalf("sweep: %+v, want the rotation resumed", sum)
	}
	user, pw, rec := e.current(t, tn.TenantID)
	if rec.Pending() || pw != v.Password {
		t.Fatal("the sweep did not promote the password MailU had")
	}
	if err := verifyLogin(ctx, tn.MailU.SMTPAddr, user, pw); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(e.auditOut.String(), `"resumed":true`) {
		t.Fatal("the resumed rotation is not audited as such")
	}
}
