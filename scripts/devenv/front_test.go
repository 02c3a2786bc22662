package devenv_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/mailu"
)

// The local SMTP front is real Dovecot configured as MailU 2024.06's front:
// these tests pin what a client of MailU sees.

const frontDomain = "front.test"

// frontClient is how a test logs in: from which loopback address, to which
// listener, with TLS from the start (465) or after STARTTLS (587).
type frontClient struct {
	src      string // source address, e.g. 127.0.0.2
	addr     string
	implicit bool
	tls      *tls.Config // nil: no TLS at all
}

func (c frontClient) dial(t *testing.T) *smtp.Client {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if c.src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(c.src)}
	}
	conn, err := d.Dial("tcp", c.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	var cl *smtp.Client
	switch {
	case c.implicit:
		cl = smtp.NewClient(tls.Client(conn, c.tls))
	case c.tls != nil:
		if cl, err = smtp.NewClientStartTLS(conn, c.tls); err != nil {
			t.Fatalf("STARTTLS: %v", err)
		}
	default:
		cl = smtp.NewClient(conn)
	}
	if err := cl.Hello("client.test"); err != nil {
		t.Fatalf("EHLO: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

func (c frontClient) login(t *testing.T, user, pw string) error {
	t.Helper()
	cl := c.dial(t)
	err := cl.Auth(sasl.NewPlainClient("", user, pw))
	if err == nil {
		// A logged-in session reaches the relay behind the front.
		if err := cl.SendMail(user, []string{"someone@example.test"}, strings.NewReader("Subject: t\r\n\r\nhello\r\n")); err != nil {
			t.Fatalf("send after login: %v", err)
		}
		_ = cl.Quit()
	}
	return err
}

func startFront(t *testing.T, opts mailustandin.Options) (*devenv.InProcessMailU, devenv.MailUInstance, *tls.Config) {
	t.Helper()
	m := devenv.StartTestMailU(t, opts)
	ctx := context.Background()
	in, err := m.AddInstance(ctx, frontDomain, "front-token-0001")
	if err != nil {
		t.Fatal(err)
	}
	c := mailu.New(in.APIURL, "front-token-0001", nil)
	if err := c.CreateUser(ctx, mailu.UserCreate{Email: "admin@" + frontDomain, RawPassword: "right-pw", Enabled: true, GlobalAdmin: true}); err != nil {
		t.Fatal(err)
	}
	tlsConf, err := m.Front.TLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	return m, in, tlsConf
}

// wantAuthFailed checks Dovecot's exact answer to a refused AUTH.
func wantAuthFailed(t *testing.T, what string, err error) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) || se.Message != "Authentication failed." {
		t.Fatalf("%s: %v, want 535 5.7.8 Authentication failed.", what, err)
	}
}

// TestFrontSubmissionPorts: both listeners take a right password over TLS
// with the local CA's certificate, and refuse a wrong one with exactly
// Dovecot's 535 after its default failure delay.
func TestFrontSubmissionPorts(t *testing.T) {
	_, in, tlsConf := startFront(t, mailustandin.Options{})
	user := "admin@" + frontDomain
	for _, c := range []struct {
		name string
		cl   frontClient
	}{
		{"465 implicit TLS", frontClient{src: "127.0.0.2", addr: in.SMTPSAddr, implicit: true, tls: tlsConf}},
		{"587 STARTTLS", frontClient{src: "127.0.0.2", addr: in.SMTPAddr, tls: tlsConf}},
	} {
		t.Run(c.name, func(t *testing.T) {
			if err := c.cl.login(t, user, "right-pw"); err != nil {
				t.Fatalf("right password: %v", err)
			}
			start := time.Now()
			wantAuthFailed(t, "wrong password", c.cl.login(t, user, "wrong-pw"))
			// auth_failure_delay's default: Dovecot answers after 2 s.
			if took := time.Since(start); took < time.Second {
				t.Errorf("wrong password answered after %v, want Dovecot's 2 s delay", took)
			}
		})
	}
	// Without the local CA the certificate is refused before any password.
	conn, err := tls.Dial("tcp", in.SMTPSAddr, &tls.Config{MinVersion: tls.VersionTLS12, ServerName: "127.0.0.1"})
	if err == nil {
		conn.Close()
		t.Fatal("the front's certificate verified without the local CA")
	}
}

// TestFrontRequiresTLS: on 587 a client from another address is not
// offered AUTH before STARTTLS, and an AUTH sent anyway is refused.
func TestFrontRequiresTLS(t *testing.T) {
	_, in, _ := startFront(t, mailustandin.Options{})
	cl := frontClient{src: "127.0.0.2", addr: in.SMTPAddr}.dial(t)
	if ok, _ := cl.Extension("AUTH"); ok {
		t.Fatal("AUTH offered before STARTTLS")
	}
	if ok, _ := cl.Extension("STARTTLS"); !ok {
		t.Fatal("STARTTLS not offered")
	}
	err := cl.Auth(sasl.NewPlainClient("", "admin@"+frontDomain, "right-pw"))
	if err == nil {
		t.Fatal("AUTH accepted before TLS")
	}
	t.Logf("AUTH before TLS: %v", err)
}

// TestFrontRateLimitedIs535: once MailU's limiter holds a user, the
// front refuses even the right password with the very 535 of a wrong
// one: the Lua passdb maps every refusal of the admin app to a password
// mismatch, as MailU's does. Here the user limit is 2 failures so that
// the test needs only a few (each delayed 2 s by Dovecot).
func TestFrontRateLimitedIs535(t *testing.T) {
	limits := mailustandin.DefaultAuthLimits()
	limits.User = mailustandin.Rate{N: 2, Per: 24 * time.Hour}
	_, in, tlsConf := startFront(t, mailustandin.Options{AuthLimits: &limits})
	attacker := frontClient{src: "127.0.0.2", addr: in.SMTPSAddr, implicit: true, tls: tlsConf}
	user := "admin@" + frontDomain
	for _, pw := range []string{"guess-1", "guess-2"} {
		wantAuthFailed(t, "wrong password", attacker.login(t, user, pw))
	}
	wantAuthFailed(t, "right password while rate limited", attacker.login(t, user, "right-pw"))
	// Another client that never logged in is held too: the limit is the
	// user's.
	other := frontClient{src: "127.0.0.3", addr: in.SMTPAddr, tls: tlsConf}
	wantAuthFailed(t, "right password from another client", other.login(t, user, "right-pw"))
}

// TestFrontAdminFaults: what the front answers when the admin app is down
// (a temporary failure, never 535), slow, or refuses every login.
func TestFrontAdminFaults(t *testing.T) {
	m, in, tlsConf := startFront(t, mailustandin.Options{})
	cl := frontClient{src: "127.0.0.2", addr: in.SMTPSAddr, implicit: true, tls: tlsConf}
	user := "admin@" + frontDomain
	ctx := context.Background()
	set := func(f mailustandin.Faults) {
		t.Helper()
		if err := m.SetFaults(ctx, frontDomain, f); err != nil {
			t.Fatal(err)
		}
	}
	set(mailustandin.Faults{Down: true})
	err := cl.login(t, user, "right-pw")
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code/100 != 4 {
		t.Fatalf("admin app down: %v, want a temporary 4xx", err)
	}
	t.Logf("admin app down: %v", err)

	set(mailustandin.Faults{RejectSMTP: true})
	wantAuthFailed(t, "admin app refusing every login", cl.login(t, user, "right-pw"))

	set(mailustandin.Faults{RequireTokens: true})
	wantAuthFailed(t, "AUTH_REQUIRE_TOKENS", cl.login(t, user, "right-pw"))

	set(mailustandin.Faults{Delay: 300 * time.Millisecond})
	if err := cl.login(t, user, "right-pw"); err != nil {
		t.Fatalf("slow admin app: %v", err)
	}
	set(mailustandin.Faults{})
	if err := cl.login(t, user, "right-pw"); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
}

// BenchmarkFrontLogin is one right-password login through the Dovecot
// front: connect, TLS, EHLO, AUTH PLAIN (the admin app asked over HTTP,
// bcrypt at the tests' least cost), QUIT.
func BenchmarkFrontLogin(b *testing.B) {
	m := devenv.StartTestMailU(b, mailustandin.Options{})
	ctx := context.Background()
	in, err := m.AddInstance(ctx, frontDomain, "front-token-0001")
	if err != nil {
		b.Fatal(err)
	}
	user := "admin@" + frontDomain
	if err := mailu.New(in.APIURL, "front-token-0001", nil).CreateUser(ctx, mailu.UserCreate{Email: user, RawPassword: "right-pw", Enabled: true}); err != nil {
		b.Fatal(err)
	}
	tlsConf, err := m.Front.TLSConfig()
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		dial func() (*smtp.Client, error)
	}{
		{"465 implicit TLS", func() (*smtp.Client, error) { return smtp.DialTLS(in.SMTPSAddr, tlsConf) }},
		{"587 STARTTLS", func() (*smtp.Client, error) { return smtp.DialStartTLS(in.SMTPAddr, tlsConf) }},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				cl, err := c.dial()
				if err != nil {
					b.Fatal(err)
				}
				if err := cl.Auth(sasl.NewPlainClient("", user, "right-pw")); err != nil {
					b.Fatal(err)
				}
				cl.Quit()
			}
		})
	}
}
