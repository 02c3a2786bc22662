package credential_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
)

// TestRecoverAfterVPSLoss is the VPS loss drill: the tenant's MailU is
// gone (down for good), a fresh MailU stand-in takes its place, and
// Recover re-creates the admin there with the stored password, then again
// with a fresh one; SMTP logins prove both, and the old MailU never sees
// a request.
func TestRecoverAfterVPSLoss(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	tn := s.Tenants[0]
	user, pw, _ := e.current(t, tn.TenantID)
	if err := s.MailUHost.SetFaults(ctx, tn.Domain, mailustandin.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	fresh, svc := newVPS(t, e, tn.Domain)
	in := credential.RecoverInput{TenantID: tn.TenantID, MailUAPIURL: fresh.APIURL, MailUAPIToken: "new-vps-token", SMTPAddr: fresh.SMTPAddr, WebmailURL: "https://webmail." + tn.Domain}

	for _, bad := range []func(*credential.RecoverInput){
		func(in *credential.RecoverInput) { in.MailUAPIToken = "" },
		func(in *credential.RecoverInput) { in.TenantID = "nope" },
		func(in *credential.RecoverInput) { in.WebmailURL = "http://plain.example" },
	} {
		b := in
		bad(&b)
		if _, err := svc.Recover(ctx, b, credential.Actor{UserID: "ops"}); !errors.Is(err, credential.ErrInvalidInput) {
			t.Fatalf("bad input: %v", err)
		}
	}
	if _, err := e.svc.Recover(ctx, in, credential.Actor{UserID: "ops"}); !errors.Is(err, credential.ErrEndpointNotAllowed) {
		t.Fatalf("a host outside the domain and the allow-list: %v", err)
	}

	start := time.Now()
	res, err := svc.Recover(ctx, in, credential.Actor{UserID: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recovered one tenant with its stored password in %v", time.Since(start).Round(time.Millisecond))
	if res.Rotated || res.SMTPAddr != fresh.SMTPAddr || res.WebmailURL != in.WebmailURL {
		t.Fatalf("result %+v", res)
	}
	if err := verifyLogin(ctx, fresh.SMTPAddr, user, pw); err != nil {
		t.Fatalf("the stored password does not log in on the new MailU: %v", err)
	}
	_, served, rec := e.current(t, tn.TenantID)
	if served != pw || rec.SMTPAddr != fresh.SMTPAddr || rec.WebmailURL != in.WebmailURL || rec.Pending() {
		t.Fatalf("after recovery: same password %v, smtp %s, webmail %s, pending %v", served == pw, rec.SMTPAddr, rec.WebmailURL, rec.Pending())
	}

	in.Rotate = true
	if _, err := svc.Recover(ctx, in, credential.Actor{UserID: "ops"}); err != nil {
		t.Fatal(err)
	}
	_, rotated, _ := e.current(t, tn.TenantID)
	if rotated == pw {
		t.Fatal("rotate: the password did not change")
	}
	if err := verifyLogin(ctx, fresh.SMTPAddr, user, rotated); err != nil {
		t.Fatalf("the fresh password does not log in: %v", err)
	}
	if err := verifyLogin(ctx, fresh.SMTPAddr, user, pw); err == nil {
		t.Fatal("the old password still logs in after a rotating recovery")
	}
	for _, ev := range []string{`"smtp_credentials_recovered"`, `"smtp_endpoint_changed"`} {
		if !strings.Contains(e.auditOut.String(), ev) {
			t.Fatalf("no %s in the audit stream", ev)
		}
	}
}

// BenchmarkRecover times the recovery of one tenant after a VPS loss:
// each iteration moves it to a fresh MailU stand-in with its stored
// password (create the admin there, SMTP login, promote the endpoints).
// The seed's RTO is 1 hour (docs/measurements.md).
func BenchmarkRecover(b *testing.B) {
	s := devenv.StartTestStack(b, 1)
	e := newEnv(b, s, -1)
	ctx := context.Background()
	tn := s.Tenants[0]
	svc := e.with(func(c *credential.Config) { c.AllowedHosts = []string{"127.0.0.1"} })
	// Two new VPSs taken in turn: each iteration is a move to another.
	a, svc := newVPS(b, e, tn.Domain)
	c, _ := newVPS(b, e, tn.Domain)
	pemA, _ := os.ReadFile(a.CAFile)
	pemC, _ := os.ReadFile(c.CAFile)
	pool := s.App.Config.MailURootCAs.Clone()
	pool.AppendCertsFromPEM(pemA)
	pool.AppendCertsFromPEM(pemC)
	svc = e.with(func(cfg *credential.Config) {
		cfg.AllowedHosts = []string{"127.0.0.1"}
		cfg.VerifyLogin = app.SMTPVerifier(10*time.Second, pool)
	})
	vps := []devenv.MailUInstance{a, c}
	var took time.Duration
	for i := range b.N {
		fresh := vps[i%2]
		t0 := time.Now()
		_, err := svc.Recover(ctx, credential.RecoverInput{TenantID: tn.TenantID, MailUAPIURL: fresh.APIURL, MailUAPIToken: "new-vps-token", SMTPAddr: fresh.SMTPAddr, WebmailURL: "https://webmail." + tn.Domain}, credential.Actor{UserID: "bench"})
		if err != nil {
			b.Fatal(err)
		}
		took += time.Since(t0)
	}
	b.ReportMetric(float64(took.Microseconds())/1000/float64(b.N), "ms/recovery")
}

// TestCompromiseShowsUntilTheNextRotation: after an emergency reset the
// credential shows its compromise (retrieve, overview class) until the
// next normal rotation clears it; the per-version mark stays for good.
func TestCompromiseShowsUntilTheNextRotation(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	tn := s.Tenants[0]
	_, _, before := e.current(t, tn.TenantID)
	res, err := e.svc.EmergencyReset(ctx, credential.ResetRequest{TenantID: tn.TenantID, IncidentID: "INC-77", Reason: "test", Actor: credential.Actor{UserID: "alice"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.CompromisedVersion != before.Version() {
		t.Fatalf("compromised version %d, want %d", res.CompromisedVersion, before.Version())
	}
	v, err := e.svc.Retrieve(ctx, tn.TenantID, credential.Actor{UserID: "bob"})
	if err != nil || v.Compromise == nil || v.Compromise.IncidentID != "INC-77" || v.Compromise.KVVersion != before.Version() {
		t.Fatalf("retrieve after the reset: compromise %+v, %v", v.Compromise, err)
	}
	page, err := e.svc.Overview(ctx, credential.OverviewQuery{Status: credential.ClassCompromised, Page: 1, PerPage: 10}, credential.Actor{UserID: "alice"})
	if err != nil || page.Total != 1 {
		t.Fatalf("overview of compromised: %d, %v", page.Total, err)
	}
	if _, err := e.svc.Rotate(ctx, credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "after the incident", Actor: credential.Actor{UserID: "alice"}}); err != nil {
		t.Fatal(err)
	}
	v, err = e.svc.Retrieve(ctx, tn.TenantID, credential.Actor{UserID: "bob"})
	if err != nil || v.Compromise != nil {
		t.Fatalf("retrieve after the next rotation: compromise %+v, %v", v.Compromise, err)
	}
	md, err := s.App.Vault.ReadMetadata(ctx, credential.AdminPath(tn.TenantID))
	if err != nil {
		t.Fatal(err)
	}
	if md.CustomMetadata[credential.MetaCompromised] != "" || !strings.Contains(md.CustomMetadata[credential.MetaCompromisedVersion(before.Version())], "incident=INC-77") {
		t.Fatalf("metadata after the rotation: %v", md.CustomMetadata)
	}
	if page, err := e.svc.Overview(ctx, credential.OverviewQuery{Status: credential.ClassCompromised, Page: 1, PerPage: 10}, credential.Actor{UserID: "alice"}); err != nil || page.Total != 0 {
		t.Fatalf("overview after the rotation: %d compromised, %v", page.Total, err)
	}
}

// TestRecoverRefusesACompromisedPassword: after an emergency reset that
// failed at MailU and was rolled back, the stored password is marked
// compromised, so a recovery with it (rotate false) is refused and changes
// nothing; a recovery with a fresh password (rotate) goes through.
func TestRecoverRefusesACompromisedPassword(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	tn := s.Tenants[0]
	if err := s.MailUHost.SetFaults(ctx, tn.Domain, mailustandin.Faults{RejectAPI: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.EmergencyReset(ctx, credential.ResetRequest{TenantID: tn.TenantID, IncidentID: "INC-R1", Actor: credential.Actor{UserID: "ops"}}); err == nil {
		t.Fatal("the reset went through while MailU rejects its API")
	}
	if err := s.MailUHost.SetFaults(ctx, tn.Domain, mailustandin.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	fresh := startVPS(t, tn.Domain, "new-vps-token")
	verify := vpsVerifier(t, e, fresh)
	svc := e.with(func(c *credential.Config) { c.AllowedHosts, c.VerifyLogin = []string{"127.0.0.1"}, verify })
	in := credential.RecoverInput{TenantID: tn.TenantID, MailUAPIURL: fresh.APIURL, MailUAPIToken: "new-vps-token", SMTPAddr: fresh.SMTPAddr, WebmailURL: "https://webmail." + tn.Domain}
	before, _ := e.svc.ReadRecord(ctx, tn.TenantID)
	if _, err := svc.Recover(ctx, in, credential.Actor{UserID: "ops"}); !errors.Is(err, credential.ErrCompromised) {
		t.Fatalf("recover with the compromised password: %v", err)
	}
	if after, _ := e.svc.ReadRecord(ctx, tn.TenantID); after.Version() != before.Version() {
		t.Fatal("the refused recovery changed the record")
	}
	in.Rotate = true
	if _, err := svc.Recover(ctx, in, credential.Actor{UserID: "ops"}); err != nil {
		t.Fatalf("recover with a fresh password: %v", err)
	}
	if v, err := svc.Retrieve(ctx, tn.TenantID, credential.Actor{UserID: "ops"}); err != nil || verifyLogin(ctx, fresh.SMTPAddr, v.Username, v.Password) != nil {
		t.Fatalf("after recovering with a fresh password: %v", err)
	}
}
