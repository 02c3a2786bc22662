package mailustandin

import (
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// testClock is the rate limits' clock, moved by the test.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func limitedServer(t *testing.T) (*Instance, *testClock) {
	clock := &testClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	s := newTestServer(t, Options{
		AuthLimits: &AuthLimits{IPFailures: 3, IPWindow: time.Hour, UserFailures: 2, UserWindow: 24 * time.Hour, Exemption: 24 * time.Hour},
		Now:        clock.now,
	})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "right-pw")
	return in, clock
}

// TestSourceRateLimit: failed logins for unknown users from one network
// make MailU refuse that network, even with right credentials, with a
// temporary 451 until the window has passed; a success then exempts the
// client.
func TestSourceRateLimit(t *testing.T) {
	in, clock := limitedServer(t)
	for range 3 {
		if err := smtpLogin(in.SMTPAddr(), "nobody@acme.test", "x"); smtpCode(err) != 535 {
			t.Fatalf("unknown user: %v, want 535", err)
		}
	}
	err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "right-pw")
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 2}) {
		t.Fatalf("right credentials from a limited source: %v, want 451 4.3.2", err)
	}
	clock.add(time.Hour)
	if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "right-pw"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
	// Exempt now: failures no longer count.
	for range 5 {
		if err := smtpLogin(in.SMTPAddr(), "nobody@acme.test", "x"); smtpCode(err) != 535 {
			t.Fatalf("unknown user from an exempt client: %v, want 535", err)
		}
	}
	if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "right-pw"); err != nil {
		t.Fatalf("exempt client: %v", err)
	}
	// The exemption ends; the earlier failures were never counted.
	clock.add(24 * time.Hour)
	if err := smtpLogin(in.SMTPAddr(), "nobody@acme.test", "x"); smtpCode(err) != 535 {
		t.Fatalf("first failure after the exemption: %v, want 535", err)
	}
}

// TestUserRateLimit: distinct wrong passwords for one user count toward
// its limit (the same one again does not); then even the right password
// gets 451 until the window has passed.
func TestUserRateLimit(t *testing.T) {
	in, clock := limitedServer(t)
	for range 3 {
		if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "wrong-1"); smtpCode(err) != 535 {
			t.Fatalf("wrong password: %v, want 535", err)
		}
	}
	if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "wrong-2"); smtpCode(err) != 535 {
		t.Fatalf("a second wrong password: %v, want 535", err)
	}
	err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "right-pw")
	if se, ok := err.(*smtp.SMTPError); !ok || se.Code != 451 || se.Message != errRateLimitedUser.Message {
		t.Fatalf("right password of a limited user: %v, want 451 for the username", err)
	}
	clock.add(24 * time.Hour)
	if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "right-pw"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// TestAuthLogin: the LOGIN mechanism, with and without an initial
// response, checks the same users as PLAIN.
func TestAuthLogin(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "right-pw")
	login := func(user, pw string) error {
		c, err := smtp.Dial(in.SMTPAddr())
		if err != nil {
			return err
		}
		defer c.Close()
		if ok, mechs := c.Extension("AUTH"); !ok || mechs != "PLAIN LOGIN" {
			t.Fatalf("AUTH mechanisms %q", mechs)
		}
		return c.Auth(sasl.NewLoginClient(user, pw))
	}
	if err := login("admin@acme.test", "right-pw"); err != nil {
		t.Fatalf("LOGIN: %v", err)
	}
	if err := login("admin@acme.test", "wrong"); smtpCode(err) != 535 {
		t.Fatalf("LOGIN with a wrong password: %v, want 535", err)
	}
	// Without an initial response the server asks for the username.
	l := &loginServer{auth: func(u, p string) error {
		if u != "admin@acme.test" || p != "right-pw" {
			return errAuthInvalid
		}
		return nil
	}}
	if ch, done, err := l.Next(nil); string(ch) != "Username:" || done || err != nil {
		t.Fatalf("first step: %q %v %v", ch, done, err)
	}
	if ch, done, err := l.Next([]byte("admin@acme.test")); string(ch) != "Password:" || done || err != nil {
		t.Fatalf("second step: %q %v %v", ch, done, err)
	}
	if _, done, err := l.Next([]byte("right-pw")); !done || err != nil {
		t.Fatalf("last step: %v %v", done, err)
	}
}
