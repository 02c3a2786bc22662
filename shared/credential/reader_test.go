package credential_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/credential"
)

// TestReaderNeverFailsTwice has a client log in over SMTP AUTH without
// pause while 200 rotations run; after an auth failure it re-reads the
// credential once (Retrieve) and logs in again. No second attempt may
// fail.
//
// The guarantee (docs/architecture.md) holds for a client that logs in at
// least once per cool-down. The engine's clock is a test clock that moves
// by one cool-down only after the client has finished a login that began
// after the previous rotation ended: the client "logs in at least once per
// cool-down" in the engine's time, however slow the machine is. The
// rotator tries a second rotation at once after each one, which the
// cool-down must refuse.
func TestReaderNeverFailsTwice(t *testing.T) {
	const rotations = 200
	const cooldown = time.Hour
	s := devenv.StartTestStack(t, 1)
	tn := s.Tenants[0]
	e := newEnv(t, s, cooldown)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pws seen

	var (
		rotated     atomic.Int64 // rotations finished
		loginsAfter atomic.Int64 // the rotated value at the start of the last login that completed
		logins      atomic.Int64
		rereads     atomic.Int64
		failures    atomic.Int64
		failMu      sync.Mutex
		firstFail   error
	)
	loginsAfter.Store(-1)
	read := func() (string, string, error) {
		v, err := e.svc.Retrieve(ctx, tn.TenantID, credential.Actor{UserID: "reader"})
		return v.Username, v.Password, err
	}
	user, pw, err := read()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			gen := rotated.Load()
			err := verifyLogin(ctx, tn.MailU.SMTPAddr, user, pw)
			if err != nil && ctx.Err() == nil {
				rereads.Add(1)
				if user, pw, err = read(); err == nil {
					pws.add(pw)
					err = verifyLogin(ctx, tn.MailU.SMTPAddr, user, pw)
				}
				if err != nil && ctx.Err() == nil {
					failures.Add(1)
					failMu.Lock()
					if firstFail == nil {
						firstFail = err
					}
					failMu.Unlock()
				}
			}
			logins.Add(1)
			loginsAfter.Store(gen)
		}
	}()

	for i := int64(0); i < rotations; i++ {
		// Wait for a complete login that began after the last credential.
		for loginsAfter.Load() < i {
			select {
			case <-done:
				t.Fatal("the reader stopped")
			case <-time.After(time.Millisecond):
			}
		}
		e.clock.Advance(cooldown + time.Second)
		if _, err := e.svc.Rotate(ctx, credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "reader test"}); err != nil {
			t.Fatalf("rotation %d: %v", i+1, err)
		}
		rotated.Add(1)
		_, err := e.svc.Rotate(ctx, credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "too soon"})
		if !errors.Is(err, credential.ErrCooldown) {
			t.Fatalf("a rotation right after rotation %d: %v, want ErrCooldown", i+1, err)
		}
	}
	for loginsAfter.Load() < rotations {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	t.Logf("%d rotations, %d logins, %d re-reads, %d failed logins after a re-read", rotations, logins.Load(), rereads.Load(), failures.Load())
	if n := failures.Load(); n != 0 {
		t.Fatalf("%d logins failed after a re-read; first: %v", n, firstFail)
	}
	if rereads.Load() == 0 {
		t.Fatal("the reader never had to re-read: the test proved nothing")
	}
	pws.assertAbsent(t, "the audit stream", e.auditOut.String())
	pws.assertAbsent(t, "the logs", e.logOut.String())
}
