package credential_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/credential"
)

// TestConcurrentRotationsOfOneTenant holds a rotation inside each step
// boundary in turn while a second rotation of the same tenant starts:
// exactly one proceeds, and the refused one touches neither the record
// nor MailU.
func TestConcurrentRotationsOfOneTenant(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	tn := s.Tenants[0]
	e := newEnv(t, s, -1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	req := credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "race"}
	for _, b := range credential.Boundaries {
		t.Run(string(b), func(t *testing.T) {
			_, before, rec := e.current(t, tn.TenantID)
			held, release := make(chan struct{}), make(chan struct{})
			e.setHook(tn.TenantID, func(ctx context.Context, _ string, at credential.Boundary) error {
				if at == b {
					close(held)
					<-release
				}
				return nil
			})
			first := make(chan error, 1)
			go func() {
				_, err := e.svc.Rotate(ctx, req)
				first <- err
			}()
			<-held
			e.setHook(tn.TenantID, nil)
			version := func() int {
				r, err := e.svc.ReadRecord(ctx, tn.TenantID)
				if err != nil {
					t.Fatal(err)
				}
				return r.Version()
			}
			v := version()
			_, err := e.svc.Rotate(ctx, req)
			if !errors.Is(err, credential.ErrConflict) {
				t.Fatalf("second rotation while the first is at %s: %v, want ErrConflict", b, err)
			}
			if version() != v {
				t.Fatal("the refused rotation wrote the record")
			}
			close(release)
			if err := <-first; err != nil {
				t.Fatalf("the first rotation: %v", err)
			}
			user, after, _ := e.current(t, tn.TenantID)
			if after == before || rec.Version() == version() {
				t.Fatal("the first rotation did not change the password")
			}
			if err := verifyLogin(ctx, tn.MailU.SMTPAddr, user, after); err != nil {
				t.Fatalf("after the race the password Vault serves does not log in: %v", err)
			}
		})
	}
}

// TestCooldownRefusesASecondRotation checks the cool-down that the
// readers' guarantee rests on, on the engine's clock.
func TestCooldownRefusesASecondRotation(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	tn := s.Tenants[0]
	e := newEnv(t, s, 10*time.Minute)
	ctx := context.Background()
	req := credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "cooldown"}
	e.clock.Advance(10*time.Minute + time.Second) // past the seeding store
	if _, err := e.svc.Rotate(ctx, req); err != nil {
		t.Fatal(err)
	}
	_, pw, _ := e.current(t, tn.TenantID)
	e.clock.Advance(9 * time.Minute)
	var ce *credential.CooldownError
	if _, err := e.svc.Rotate(ctx, req); !errors.As(err, &ce) || !errors.Is(err, credential.ErrCooldown) || ce.Wait <= 0 || ce.Wait > time.Minute+time.Second {
		t.Fatalf("rotation 9 minutes after the last: %v, want ErrCooldown with about a minute to wait", err)
	}
	if _, now, _ := e.current(t, tn.TenantID); now != pw {
		t.Fatal("the refused rotation changed the password")
	}
	// Due rotations (the sweep) are never held back: 180 days are more.
	e.clock.Advance(time.Minute + time.Second)
	if _, err := e.svc.Rotate(ctx, req); err != nil {
		t.Fatalf("rotation after the cool-down: %v", err)
	}
}

// TestResumeNeverDropsAPasswordMailUHas leaves a rotation crashed after
// setSecret, then lets the next run meet a MailU whose SMTP refuses every
// login: it cannot tell which password MailU holds, so it must change
// nothing (not drop the pending password MailU already has). Once SMTP
// answers again, the run after finishes the credential.
func TestResumeNeverDropsAPasswordMailUHas(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	tn := s.Tenants[0]
	e := newEnv(t, s, -1)
	ctx := context.Background()
	req := credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerSchedule, OnlyIfDue: true}
	e.setHook(tn.TenantID, func(_ context.Context, _ string, at credential.Boundary) error {
		if at == credential.AfterSet {
			return credential.ErrAbandon
		}
		return nil
	})
	if _, err := e.svc.Rotate(ctx, credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "crash"}); !errors.Is(err, credential.ErrAbandon) {
		t.Fatalf("crashing rotation: %v", err)
	}
	e.setHook(tn.TenantID, nil)
	e.clock.Advance(5*time.Minute + time.Second)
	if err := s.MailU.SetFaults(ctx, tn.Domain, mailustandin.Faults{RejectSMTP: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Rotate(ctx, req); err == nil {
		t.Fatal("a run that could not verify any password succeeded")
	}
	if r, err := e.svc.ReadRecord(ctx, tn.TenantID); err != nil || !r.Pending() {
		t.Fatalf("the pending password MailU has was dropped (%v)", err)
	}
	if err := s.MailU.SetFaults(ctx, tn.Domain, mailustandin.Faults{}); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Rotate(ctx, req)
	if err != nil || res.Outcome != credential.OutcomeResumed {
		t.Fatalf("run after SMTP recovered: %+v %v", res, err)
	}
	user, pw, _ := e.current(t, tn.TenantID)
	if err := verifyLogin(ctx, tn.MailU.SMTPAddr, user, pw); err != nil {
		t.Fatal(err)
	}
}
