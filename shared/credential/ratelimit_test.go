package credential_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
)

// attack logs in as user with wrong passwords from 127.0.0.2 through the
// Dovecot front, as anyone on the internet can: each failure counts
// against MailU's limit of the user.
func attack(t *testing.T, m *devenv.InProcessMailU, addr, user string, n int) {
	t.Helper()
	for i := range n {
		err := loginFrom(t, m, net.IPv4(127, 0, 0, 2), addr, user, "guess-"+string(rune('a'+i)))
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 535 {
			t.Fatalf("wrong password %d from 127.0.0.2: %v, want 535", i, err)
		}
	}
}

// loginFrom logs in over STARTTLS through the Dovecot front from the
// loopback address ip.
func loginFrom(t *testing.T, m *devenv.InProcessMailU, ip net.IP, addr, user, pass string) error {
	t.Helper()
	conf, err := m.Front.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("connect from %s: %v", ip, err)
	}
	c, err := smtp.NewClientStartTLS(conn, conf)
	if err != nil {
		t.Fatalf("STARTTLS from %s: %v", ip, err)
	}
	defer c.Close()
	return c.Auth(sasl.NewPlainClient("", user, pass))
}

// attacked is one tenant whose admin@ someone has just locked out of
// MailU: its limit of failed logins per user lowered to 3 a day and spent
// with wrong passwords from 127.0.0.2, through the real Dovecot front, a
// day after the seeding's success (whose exemption has lapsed).
type attacked struct {
	ctx     context.Context
	s       *devenv.TestStack
	m       *devenv.InProcessMailU
	limiter *clock
	tn      devenv.DemoTenant
	admin   string
	e       *env
	svc     *credential.Service
	old     string // the password Vault serves and MailU holds
}

// attackAdmin sets up attacked; exemption is MailU's
// AUTH_RATELIMIT_EXEMPTION ("" for none).
func attackAdmin(t *testing.T, exemption string) attacked {
	t.Helper()
	limits := mailustandin.DefaultAuthLimits()
	limits.User = mailustandin.Rate{N: 3, Per: 24 * time.Hour}
	var err error
	if limits.Exemption, err = mailustandin.ParseExemption(exemption); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	a := attacked{ctx: ctx, limiter: newClock(time.Now())}
	dir := t.TempDir()
	a.m, err = devenv.StartInProcessMailU(ctx, filepath.Join(dir, "limited"), mailustandin.Options{AuthLimits: &limits, Now: a.limiter.Now}, 0)
	if err != nil {
		t.Fatal(err)
	}
	s, err := devenv.NewTestStack(ctx, dir, 1, func(o *devenv.StackOptions) { o.MailU = a.m })
	if s != nil {
		t.Cleanup(s.Close) // closes the MailU too: the stack runs on the caller's
	} else {
		a.m.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	a.s, a.tn = s, s.Tenants[0]
	a.admin = "admin@" + a.tn.Domain
	a.e = newEnv(t, s, -1)
	a.svc = a.e.with(func(c *credential.Config) { c.Notifier = s.Notifications })
	_, a.old, _ = a.e.current(t, a.tn.TenantID)

	// The seeding store's success exempted 127.0.0.1 for a day (MailU's
	// AUTH_RATELIMIT_EXEMPTION_LENGTH); a day later the attack begins.
	a.limiter.Advance(25 * time.Hour)
	attack(t, a.m, a.tn.MailU.SMTPAddr, a.admin, 3)
	return a
}

// TestRateLimitedAdminThroughDovecot: someone spends MailU's login limit
// of admin@<domain> (AUTH_RATELIMIT_USER, lowered to 3 failures a day)
// with wrong passwords from another address, through the real Dovecot
// front. MailU then refuses the service's right password with the very
// 535 of a wrong one. Store, rotation, the sweep and the emergency reset
// must not replace the password MailU holds on the strength of those
// refusals; once the limit lapses the pending change completes, and the
// old and new passwords behave as docs/architecture.md says.
func TestRateLimitedAdminThroughDovecot(t *testing.T) {
	a := attackAdmin(t, "")
	ctx, s, limiter, tn, admin, e, svc, old := a.ctx, a.s, a.limiter, a.tn, a.admin, a.e, a.svc, a.old
	if err := verifyLogin(ctx, tn.MailU.SMTPAddr, admin, old); !errors.Is(err, mailu.ErrAuthFailed) {
		t.Fatalf("the right password while the user is rate-limited: %v, want Dovecot's 535", err)
	}

	in := s.StoreEvent(tn)
	in.MailUAPIToken = ""
	if _, err := svc.Store(ctx, in, credential.Actor{UserID: "provisioning"}); !errors.Is(err, credential.ErrLoginRefused) {
		t.Fatalf("store: %v, want ErrLoginRefused", err)
	}
	if _, pw, rec := e.current(t, tn.TenantID); pw != old || rec.Pending() || !mailuHolds(t, tn, old) {
		t.Fatal("store replaced the password MailU holds on 535s")
	}

	rot := credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "test", Actor: credential.Actor{UserID: "admin"}}
	if _, err := svc.Rotate(ctx, rot); !errors.Is(err, credential.ErrLoginRefused) {
		t.Fatalf("rotate: %v, want ErrLoginRefused", err)
	}
	rec, err := svc.ReadRecord(ctx, tn.TenantID)
	if err != nil || !rec.Pending() {
		t.Fatalf("the rotation is not pending: %v", err)
	}
	pending, err := svc.Open(ctx, tn.TenantID, credential.PasswordField, rec.PendingPassword, rec.PendingDataKey)
	if err != nil {
		t.Fatal(err)
	}
	if sum, err := svc.Sweep(ctx); err != nil || sum.Failed != 1 {
		t.Fatalf("sweep: %+v, %v", sum, err)
	}
	if r, _ := svc.ReadRecord(ctx, tn.TenantID); r.PendingPassword != rec.PendingPassword || !mailuHolds(t, tn, pending) {
		t.Fatal("the sweep set another password on 535s")
	}

	// An incident: the reset sets its own password directly; its refused
	// login leaves it pending, and a retry sets no other.
	reset := credential.ResetRequest{TenantID: tn.TenantID, IncidentID: "INC-RATE-1", Reason: "test", Actor: credential.Actor{UserID: "admin"}}
	if _, err := svc.EmergencyReset(ctx, reset); !errors.Is(err, credential.ErrLoginRefused) {
		t.Fatalf("reset: %v, want ErrLoginRefused", err)
	}
	rec, _ = svc.ReadRecord(ctx, tn.TenantID)
	resetPW, err := svc.Open(ctx, tn.TenantID, credential.PasswordField, rec.PendingPassword, rec.PendingDataKey)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.EmergencyReset(ctx, reset); !errors.Is(err, credential.ErrLoginRefused) {
		t.Fatalf("reset retry: %v, want ErrLoginRefused", err)
	}
	if !mailuHolds(t, tn, resetPW) {
		t.Fatal("a reset retry set another password on 535s")
	}
	if m := failingMark(t, e, tn.TenantID); m == "" {
		t.Fatal("the tenant is not marked failing")
	}
	if n := failingAlerts(s.Notifications, tn.TenantID); n != 1 {
		t.Fatalf("%d alerts, want 1", n)
	}

	// The limit lapses: the reset's own password is finished and shown.
	limiter.Advance(25 * time.Hour)
	res, err := svc.EmergencyReset(ctx, reset)
	if err != nil || res.Password != resetPW {
		t.Fatalf("reset after the limit lapsed: %v (same password %t)", err, res.Password == resetPW)
	}
	if res, err := svc.Store(ctx, in, credential.Actor{UserID: "provisioning"}); err != nil || res.Action != "unchanged" {
		t.Fatalf("store after the limit lapsed: %+v, %v", res, err)
	}
	// As the docs say: the served password logs in; the compromised one
	// and the rotation's abandoned one do not.
	if _, pw, _ := e.current(t, tn.TenantID); pw != resetPW {
		t.Fatal("Vault does not serve the reset password")
	}
	if err := verifyLogin(ctx, tn.MailU.SMTPAddr, admin, resetPW); err != nil {
		t.Fatalf("the reset password: %v", err)
	}
	for _, gone := range []string{old, pending} {
		if err := verifyLogin(ctx, tn.MailU.SMTPAddr, admin, gone); !errors.Is(err, mailu.ErrAuthFailed) {
			t.Fatalf("a replaced password: %v, want refused", err)
		}
	}
}

// TestExemptFunctionsOutlastTheAttack is the deployment docs/deploy.md
// asks for: the functions' egress address is in MailU's
// AUTH_RATELIMIT_EXEMPTION. The same attack spends the user's limit (the
// right password from another address is refused), yet the service's own
// logins still go through: store confirms the password, a rotation
// completes, and nothing is left pending or marked failing.
func TestExemptFunctionsOutlastTheAttack(t *testing.T) {
	a := attackAdmin(t, "127.0.0.1/32")
	ctx, s, m, tn, admin, e, svc, old := a.ctx, a.s, a.m, a.tn, a.admin, a.e, a.svc, a.old
	// The attack spent the user's limit: the right password from the
	// attacker's address is refused like a wrong one.
	var se *smtp.SMTPError
	if err := loginFrom(t, m, net.IPv4(127, 0, 0, 2), tn.MailU.SMTPAddr, admin, old); !errors.As(err, &se) || se.Code != 535 {
		t.Fatalf("the right password from 127.0.0.2 while the user is limited: %v, want 535", err)
	}

	// The functions connect from 127.0.0.1, an exempt address.
	if err := verifyLogin(ctx, tn.MailU.SMTPAddr, admin, old); err != nil {
		t.Fatalf("the right password from the exempt address: %v", err)
	}
	in := s.StoreEvent(tn)
	in.MailUAPIToken = ""
	if res, err := svc.Store(ctx, in, credential.Actor{UserID: "provisioning"}); err != nil || res.Action != "unchanged" {
		t.Fatalf("store from the exempt address: %+v, %v", res, err)
	}
	rot := credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "test", Actor: credential.Actor{UserID: "admin"}}
	if _, err := svc.Rotate(ctx, rot); err != nil {
		t.Fatalf("rotate from the exempt address: %v", err)
	}
	_, now, rec := e.current(t, tn.TenantID)
	if now == old || rec.Pending() {
		t.Fatalf("the rotation did not complete (same password %t, pending %t)", now == old, rec.Pending())
	}
	if err := verifyLogin(ctx, tn.MailU.SMTPAddr, admin, now); err != nil {
		t.Fatalf("the rotated password: %v", err)
	}
	if err := verifyLogin(ctx, tn.MailU.SMTPAddr, admin, old); !errors.Is(err, mailu.ErrAuthFailed) {
		t.Fatalf("the replaced password: %v, want refused", err)
	}
	if m := failingMark(t, e, tn.TenantID); m != "" {
		t.Fatalf("the tenant is marked failing: %s", m)
	}
	if n := failingAlerts(s.Notifications, tn.TenantID); n != 0 {
		t.Fatalf("%d failing alerts, want none", n)
	}
}
