package credential_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/notify"
)

// mailuHolds says whether the tenant's MailU holds pw, from the hash its
// admin API returns (what the service decides with).
func mailuHolds(t *testing.T, tn devenv.DemoTenant, pw string) bool {
	t.Helper()
	c := mailu.New(tn.MailU.APIURL, tn.MailUToken, nil)
	h, err := c.PasswordHash(context.Background(), "admin@"+tn.Domain)
	if err != nil {
		t.Fatalf("read the hash of %s: %v", tn.Domain, err)
	}
	ok, err := h.Matches(pw)
	if err != nil {
		t.Fatalf("check the hash of %s: %v", tn.Domain, err)
	}
	return ok
}

// failingAlerts counts the rotation-failing alerts sent for a tenant.
func failingAlerts(n *notify.Memory, tenantID string) int {
	count := 0
	for _, m := range n.Messages() {
		if m.TenantID == tenantID && m.Attrs["rule"] == "rotation_failing" {
			count++
		}
	}
	return count
}

// failingMark is the tenant's rotation_failed metadata ("<time> <class>").
func failingMark(t *testing.T, e *env, tenantID string) string {
	t.Helper()
	md, err := e.stack.App.Vault.ReadMetadata(context.Background(), credential.AdminPath(tenantID))
	if err != nil {
		t.Fatal(err)
	}
	return md.CustomMetadata[credential.MetaRotationFailed]
}

// TestRefusedLoginNeverOverwrites: with MailU refusing every SMTP login
// while its admin API's hash says the password is right (a rate-limited
// admin@<domain>, AUTH_REQUIRE_TOKENS: MailU's front answers 535 for
// both), store, rotation, the sweep and the emergency reset never set a
// password on the strength of the refusals: the password MailU holds is
// the one it held, a change stays pending, the tenant is marked failing
// with the cause and one alert goes out; once the refusal clears, the
// next run finishes the change with the password MailU already holds.
func TestRefusedLoginNeverOverwrites(t *testing.T) {
	s := devenv.StartTestStack(t, 3)
	e := newEnv(t, s, -1)
	svc := e.with(func(c *credential.Config) { c.Notifier = s.Notifications })
	ctx := context.Background()
	// Each case meets another of MailU's refusals of a right password:
	// the user or network rate limit, AUTH_REQUIRE_TOKENS, and any other
	// refusal of the admin app; Dovecot answers each with the same 535.
	refusals := map[string]mailustandin.Faults{
		s.Tenants[0].Domain: {RateLimitSMTP: true},
		s.Tenants[1].Domain: {RequireTokens: true},
		s.Tenants[2].Domain: {RejectSMTP: true},
	}
	refuse := func(tn devenv.DemoTenant, on bool) {
		t.Helper()
		f := mailustandin.Faults{}
		if on {
			f = refusals[tn.Domain]
		}
		if err := s.MailU.SetFaults(ctx, tn.Domain, f); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("store", func(t *testing.T) {
		tn := s.Tenants[0]
		_, before, _ := e.current(t, tn.TenantID)
		refuse(tn, true)
		in := s.StoreEvent(tn)
		in.MailUAPIToken = ""
		for range 3 {
			if _, err := svc.Store(ctx, in, credential.Actor{UserID: "provisioning"}); !errors.Is(err, credential.ErrLoginRefused) {
				t.Fatalf("store with logins refused: %v, want ErrLoginRefused", err)
			}
		}
		if _, pw, rec := e.current(t, tn.TenantID); pw != before || rec.Pending() {
			t.Fatal("store replaced the stored password on refused logins")
		}
		if !mailuHolds(t, tn, before) {
			t.Fatal("MailU no longer holds the stored password")
		}
		if m := failingMark(t, e, tn.TenantID); !strings.HasSuffix(m, " smtp_login_refused") {
			t.Fatalf("rotation_failed = %q, want the cause smtp_login_refused", m)
		}
		if n := failingAlerts(s.Notifications, tn.TenantID); n != 1 {
			t.Fatalf("%d alerts, want 1", n)
		}
		refuse(tn, false)
		res, err := svc.Store(ctx, in, credential.Actor{UserID: "provisioning"})
		if err != nil || res.Action != "unchanged" {
			t.Fatalf("store once the refusal cleared: %+v, %v", res, err)
		}
	})

	t.Run("rotate and sweep", func(t *testing.T) {
		tn := s.Tenants[1]
		_, old, _ := e.current(t, tn.TenantID)
		refuse(tn, true)
		req := credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "test", Actor: credential.Actor{UserID: "admin"}}
		if _, err := svc.Rotate(ctx, req); !errors.Is(err, credential.ErrLoginRefused) {
			t.Fatalf("rotation with logins refused: %v, want ErrLoginRefused", err)
		}
		rec, err := svc.ReadRecord(ctx, tn.TenantID)
		if err != nil || !rec.Pending() {
			t.Fatalf("the change is not pending: %v", err)
		}
		pending, err := svc.Open(ctx, tn.TenantID, credential.PasswordField, rec.PendingPassword, rec.PendingDataKey)
		if err != nil {
			t.Fatal(err)
		}
		if !mailuHolds(t, tn, pending) {
			t.Fatal("MailU does not hold the pending password")
		}
		// Re-runs and the sweep resume, and set nothing new.
		for range 2 {
			if _, err := svc.Rotate(ctx, req); !errors.Is(err, credential.ErrLoginRefused) {
				t.Fatalf("rotation re-run: %v", err)
			}
		}
		sum, err := svc.Sweep(ctx)
		if err != nil || sum.Failed == 0 {
			t.Fatalf("sweep: %+v, %v", sum, err)
		}
		if !mailuHolds(t, tn, pending) || mailuHolds(t, tn, old) {
			t.Fatal("a re-run or the sweep set another password")
		}
		if r, _ := svc.ReadRecord(ctx, tn.TenantID); r.PendingPassword != rec.PendingPassword {
			t.Fatal("the pending password was replaced")
		}
		if m := failingMark(t, e, tn.TenantID); !strings.HasSuffix(m, " smtp_login_refused") {
			t.Fatalf("rotation_failed = %q", m)
		}
		if n := failingAlerts(s.Notifications, tn.TenantID); n != 1 {
			t.Fatalf("%d alerts, want 1", n)
		}
		refuse(tn, false)
		// Once MailU lets logins through, readers get the pending password
		// before any run promotes it.
		if v, err := svc.Retrieve(ctx, tn.TenantID, credential.Actor{UserID: "reader"}); err != nil || v.Password != pending {
			t.Fatalf("retrieve after the refusal cleared does not serve the password MailU holds (%v)", err)
		}
		sum, err = svc.Sweep(ctx)
		if err != nil || sum.Resumed != 1 {
			t.Fatalf("sweep once the refusal cleared: %+v, %v", sum, err)
		}
		if _, pw, rec := e.current(t, tn.TenantID); pw != pending || rec.Pending() {
			t.Fatal("the change did not finish with the password MailU held")
		}
		if m := failingMark(t, e, tn.TenantID); m != "" {
			t.Fatalf("still marked failing: %q", m)
		}
		if err := verifyLogin(ctx, tn.MailU.SMTPAddr, "admin@"+tn.Domain, pending); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("emergency reset", func(t *testing.T) {
		tn := s.Tenants[2]
		_, old, _ := e.current(t, tn.TenantID)
		refuse(tn, true)
		req := credential.ResetRequest{TenantID: tn.TenantID, IncidentID: "INC-2026-0019", Reason: "test", Actor: credential.Actor{UserID: "admin"}}
		if _, err := svc.EmergencyReset(ctx, req); !errors.Is(err, credential.ErrLoginRefused) {
			t.Fatalf("reset with logins refused: %v, want ErrLoginRefused", err)
		}
		rec, err := svc.ReadRecord(ctx, tn.TenantID)
		if err != nil || !rec.Pending() {
			t.Fatalf("the reset is not pending: %v", err)
		}
		reset, err := svc.Open(ctx, tn.TenantID, credential.PasswordField, rec.PendingPassword, rec.PendingDataKey)
		if err != nil {
			t.Fatal(err)
		}
		if !mailuHolds(t, tn, reset) || mailuHolds(t, tn, old) {
			t.Fatal("the reset did not replace the compromised password in MailU")
		}
		for range 2 {
			e.clock.Advance(time.Minute)
			if _, err := svc.EmergencyReset(ctx, req); !errors.Is(err, credential.ErrLoginRefused) {
				t.Fatalf("reset re-run: %v", err)
			}
		}
		if !mailuHolds(t, tn, reset) {
			t.Fatal("a re-run of the reset set another password on refused logins")
		}
		if n := failingAlerts(s.Notifications, tn.TenantID); n != 1 {
			t.Fatalf("%d alerts, want 1", n)
		}
		refuse(tn, false)
		res, err := svc.EmergencyReset(ctx, req)
		if err != nil || res.AlreadyReset || res.Password != reset {
			t.Fatalf("reset once the refusal cleared: %v (already %t, same password %t)", err, res.AlreadyReset, res.Password == reset)
		}
		if res, err := svc.EmergencyReset(ctx, req); err != nil || !res.AlreadyReset {
			t.Fatalf("the incident reset twice: %+v, %v", res, err)
		}
	})
}

// TestMailUAnswersAreTheirOwnCauses: MailU's 429, its HTML 500 without
// API_TOKEN and its 409 for a full domain become their own domain errors
// (and failing-mark classes), and a MailU without a token is not retried
// as if it were only down.
func TestMailUAnswersAreTheirOwnCauses(t *testing.T) {
	cases := []struct {
		adapter   error
		domain    error
		class     string
		retryable bool
	}{
		{mailu.ErrRateLimited, credential.ErrMailURateLimited, "mailu_rate_limited", true},
		{mailu.ErrMisconfigured, credential.ErrMailUMisconfigured, "mailu_misconfigured", false},
		{mailu.ErrDomainFull, credential.ErrDomainFull, "mailu_domain_full", true},
		{mailu.ErrConflict, credential.ErrConflict, "conflict", true},
		{mailu.ErrUnavailable, credential.ErrUnavailable, "upstream_unavailable", true},
	}
	for _, c := range cases {
		err := credential.Upstream("doing", fmt.Errorf("mailu: x: %w", c.adapter))
		if !errors.Is(err, c.domain) || credential.ErrorClass(err) != c.class || credential.Retryable(err) != c.retryable {
			t.Errorf("%v: %v (class %s, retryable %t), want %v (%s, %t)", c.adapter, err, credential.ErrorClass(err), credential.Retryable(err), c.domain, c.class, c.retryable)
		}
		if c.domain != credential.ErrConflict && errors.Is(err, credential.ErrConflict) {
			t.Errorf("%v reads as a conflict", c.adapter)
		}
	}
}
