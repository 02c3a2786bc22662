package mailu_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/mailu"
)

func TestVerifyLogin(t *testing.T) {
	in, c := startMailU(t, mailustandin.Options{})
	ctx := context.Background()
	const pw = "the-Current-pw"
	if err := c.CreateUser(ctx, mailu.UserCreate{Email: admin, RawPassword: pw, GlobalAdmin: true, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := c.CreateUser(ctx, mailu.UserCreate{Email: "off@acme.test", RawPassword: pw, Enabled: false}); err != nil {
		t.Fatal(err)
	}
	closed := freeAddr(t) // nothing listens here

	cases := []struct {
		name   string
		faults mailustandin.Faults
		addr   string
		user   string
		pw     string
		ctx    func() (context.Context, context.CancelFunc)
		want   error // nil: success
	}{
		{name: "right password", user: admin, pw: pw},
		{name: "wrong password", user: admin, pw: "wrong-pw", want: mailu.ErrAuthFailed},
		{name: "unknown user", user: "nobody@acme.test", pw: pw, want: mailu.ErrAuthFailed},
		{name: "disabled user", user: "off@acme.test", pw: pw, want: mailu.ErrAuthFailed},
		{name: "server rejects every login", faults: mailustandin.Faults{RejectSMTP: true}, user: admin, pw: pw, want: mailu.ErrAuthFailed},
		{name: "server down", faults: mailustandin.Faults{Down: true}, user: admin, pw: pw, want: mailu.ErrUnavailable},
		{name: "nothing listening", addr: closed, user: admin, pw: pw, want: mailu.ErrUnavailable},
		{name: "slow within deadline", faults: mailustandin.Faults{Delay: 100 * time.Millisecond}, user: admin, pw: pw},
		{name: "slow past deadline", faults: mailustandin.Faults{Delay: 5 * time.Second}, user: admin, pw: pw, want: context.DeadlineExceeded,
			ctx: func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 200*time.Millisecond) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := in.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			defer in.SetFaults(mailustandin.Faults{})
			addr := in.SMTPAddr()
			if tc.addr != "" {
				addr = tc.addr
			}
			cctx, cancel := context.WithCancel(ctx)
			if tc.ctx != nil {
				cctx, cancel = tc.ctx()
			}
			defer cancel()
			start := time.Now()
			err := mailu.VerifyLogin(cctx, addr, tc.user, tc.pw, nil)
			if tc.want == nil {
				if err != nil {
					t.Fatalf("VerifyLogin: %v", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("VerifyLogin: %v, want %v", err, tc.want)
			}
			if tc.want == context.DeadlineExceeded {
				if !errors.Is(err, mailu.ErrUnavailable) {
					t.Errorf("deadline is not ErrUnavailable: %v", err)
				}
				if time.Since(start) > 2*time.Second {
					t.Errorf("deadline not honoured: took %v", time.Since(start))
				}
			}
			if errors.Is(err, mailu.ErrAuthFailed) == errors.Is(err, mailu.ErrUnavailable) {
				t.Errorf("error must be exactly one of auth failed / unavailable: %v", err)
			}
			assertNoSecret(t, tc.name, err, tc.pw)
		})
	}
}

func TestVerifyLoginSTARTTLS(t *testing.T) {
	cert, pool := selfSigned(t)
	in, c := startMailU(t, mailustandin.Options{SMTPTLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}})
	ctx := context.Background()
	const pw = "tls-only-pw"
	if err := c.CreateUser(ctx, mailu.UserCreate{Email: admin, RawPassword: pw, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	trusted := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}

	if err := mailu.VerifyLogin(ctx, in.SMTPAddr(), admin, pw, trusted); err != nil {
		t.Fatalf("login over STARTTLS: %v", err)
	}
	if err := mailu.VerifyLogin(ctx, in.SMTPAddr(), admin, "wrong", trusted); !errors.Is(err, mailu.ErrAuthFailed) {
		t.Fatalf("wrong password over STARTTLS: %v", err)
	}
	// Like MailU's submission port, AUTH is not offered before STARTTLS.
	if err := mailu.VerifyLogin(ctx, in.SMTPAddr(), admin, pw, nil); !errors.Is(err, mailu.ErrUnavailable) {
		t.Fatalf("clear-text login to a STARTTLS server: %v", err)
	}
	// An untrusted certificate stops the login before the password is sent.
	err := mailu.VerifyLogin(ctx, in.SMTPAddr(), admin, pw, &tls.Config{MinVersion: tls.VersionTLS12})
	if !errors.Is(err, mailu.ErrUnavailable) {
		t.Fatalf("untrusted certificate: %v", err)
	}
	assertNoSecret(t, "untrusted", err, pw)
}

func TestVerifyLoginRefusesCleartextWhenTLSExpected(t *testing.T) {
	// A server without STARTTLS (or a downgrade attack stripping it) must
	// never see the password when the caller asked for TLS.
	var sawAuth atomic.Bool
	addr := fakeSMTP(t, func(username, password string) error { sawAuth.Store(true); return nil }, true)
	err := mailu.VerifyLogin(context.Background(), addr, admin, "never-sent", &tls.Config{ServerName: "mail.acme.test"})
	if !errors.Is(err, mailu.ErrUnavailable) {
		t.Fatalf("VerifyLogin: %v", err)
	}
	if sawAuth.Load() {
		t.Fatal("password sent without TLS")
	}
}

func TestVerifyLoginTemporaryFailure(t *testing.T) {
	addr := fakeSMTP(t, func(string, string) error {
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	}, true)
	err := mailu.VerifyLogin(context.Background(), addr, admin, "pw", nil)
	if !errors.Is(err, mailu.ErrUnavailable) || errors.Is(err, mailu.ErrAuthFailed) {
		t.Fatalf("454: %v, want ErrUnavailable", err)
	}
}

// TestVerifyLoginRateLimited: MailU 2024.06's front (real Dovecot here,
// asking the stand-in admin app) answers a login refused by the rate
// limits with the very "535 5.7.8 Authentication failed." of a wrong
// password: the client cannot tell them apart from the SMTP answer alone.
// The user limit is lowered to 2 failures to keep the test short (each
// failure waits out Dovecot's 2 s auth_failure_delay).
func TestVerifyLoginRateLimited(t *testing.T) {
	limits := mailustandin.DefaultAuthLimits()
	limits.User = mailustandin.Rate{N: 2, Per: 24 * time.Hour}
	m := devenv.StartTestMailU(t, mailustandin.Options{AuthLimits: &limits})
	ctx := context.Background()
	in, err := m.AddInstance(ctx, domain, token)
	if err != nil {
		t.Fatal(err)
	}
	c := mailu.New(in.APIURL, token, nil)
	if err := c.CreateUser(ctx, mailu.UserCreate{Email: admin, RawPassword: "pw-right", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	for _, pw := range []string{"guess-1", "guess-2"} {
		if err := mailu.VerifyLogin(ctx, in.SMTPAddr, admin, pw, nil); !errors.Is(err, mailu.ErrAuthFailed) {
			t.Fatalf("wrong password: %v, want ErrAuthFailed", err)
		}
	}
	err = mailu.VerifyLogin(ctx, in.SMTPAddr, admin, "pw-right", nil)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) || se.Message != "Authentication failed." {
		t.Fatalf("rate-limited login: %v, want Dovecot's 535 5.7.8 Authentication failed.", err)
	}
}

func TestVerifyLoginGreetingRefused(t *testing.T) {
	// A server that answers 554 at connect (overloaded, blocked) says
	// nothing about the password.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(conn, "554 5.3.2 Not accepting connections\r\n")
			conn.Close()
		}
	}()
	err = mailu.VerifyLogin(context.Background(), ln.Addr().String(), admin, "pw", nil)
	if !errors.Is(err, mailu.ErrUnavailable) {
		t.Fatalf("greeting 554: %v", err)
	}
}

// fakeSMTP runs a go-smtp server whose AUTH PLAIN calls check.
func fakeSMTP(t *testing.T, check func(username, password string) error, insecureAuth bool) string {
	t.Helper()
	s := smtp.NewServer(fakeBackend{check})
	s.AllowInsecureAuth = insecureAuth
	s.ErrorLog = nopLogger{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close(); ln.Close() })
	return ln.Addr().String()
}

type fakeBackend struct{ check func(string, string) error }

func (b fakeBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return fakeSession(b), nil }

type fakeSession fakeBackend

func (s fakeSession) AuthMechanisms() []string { return []string{sasl.Plain} }
func (s fakeSession) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, u, p string) error { return s.check(u, p) }), nil
}
func (fakeSession) Mail(string, *smtp.MailOptions) error { return nil }
func (fakeSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (fakeSession) Data(io.Reader) error                 { return nil }
func (fakeSession) Reset()                               {}
func (fakeSession) Logout() error                        { return nil }

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}
