package credential_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
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
