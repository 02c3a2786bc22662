package mailustandin

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

func TestSMTPAuth(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "right-pw")
	createUser(t, in, "off@acme.test", "off-pw")
	if r := call(t, in, http.MethodPatch, "/user/off@acme.test", bearer(testToken), `{"enabled":false}`); r.status != 200 {
		t.Fatalf("disable: %d", r.status)
	}
	// A password longer than bcrypt's 72 bytes must still count in full.
	long := strings.Repeat("x", 100) + "a"
	createUser(t, in, "long@acme.test", long)

	cases := []struct {
		name, user, pw string
		want           int // 0: success, else the SMTP code
	}{
		{"right password", "admin@acme.test", "right-pw", 0},
		{"user in other case", "ADMIN@acme.test", "right-pw", 0},
		{"wrong password", "admin@acme.test", "wrong-pw", 535},
		{"empty password", "admin@acme.test", "", 535},
		{"unknown user", "nobody@acme.test", "right-pw", 535},
		{"disabled user", "off@acme.test", "off-pw", 535},
		{"long password", "long@acme.test", long, 0},
		{"long password, last byte differs", "long@acme.test", long[:100] + "b", 535},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := smtpLogin(in.SMTPAddr(), c.user, c.pw)
			if c.want == 0 && err != nil {
				t.Fatalf("login failed: %v", err)
			}
			if c.want != 0 && smtpCode(err) != c.want {
				t.Fatalf("login error %v, want SMTP %d", err, c.want)
			}
		})
	}

	t.Run("password change takes effect at once", func(t *testing.T) {
		setPassword(t, in, "admin@acme.test", "new-pw")
		if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "right-pw"); smtpCode(err) != 535 {
			t.Fatalf("old password: %v, want 535", err)
		}
		if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "new-pw"); err != nil {
			t.Fatalf("new password: %v", err)
		}
	})

	t.Run("mail needs auth and is discarded after it", func(t *testing.T) {
		c, err := smtp.Dial(in.SMTPAddr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Mail("x@acme.test", nil); smtpCode(err) != 530 {
			t.Fatalf("MAIL before AUTH: %v, want 530", err)
		}
	})
}

// TestConcurrentPatchAndLogin changes a password over and over while
// logins run: a login with the acknowledged password must succeed unless a
// newer change was under way meanwhile, and a replaced password must fail.
func TestConcurrentPatchAndLogin(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	const user = "admin@acme.test"
	pw := func(n int64) string { return fmt.Sprintf("pw-%d", n) }
	createUser(t, in, user, pw(0))

	var started, acked atomic.Int64 // the last change begun, and acknowledged
	done := make(chan struct{})
	var wg sync.WaitGroup
	var logins atomic.Int64
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-done:
					return
				default:
				}
				n := acked.Load()
				quiet := started.Load() == n // no change under way
				err := smtpLogin(in.SMTPAddr(), user, pw(n))
				logins.Add(1)
				if err != nil && quiet && started.Load() == n {
					t.Errorf("login with the current password %s failed: %v", pw(n), err)
				}
			}
		}()
	}
	for n := int64(1); n <= 25; n++ {
		started.Store(n)
		setPassword(t, in, user, pw(n))
		acked.Store(n)
		if err := smtpLogin(in.SMTPAddr(), user, pw(n-1)); smtpCode(err) != 535 {
			t.Errorf("replaced password %s still logs in: %v", pw(n-1), err)
		}
	}
	close(done)
	wg.Wait()
	if logins.Load() == 0 {
		t.Fatal("no concurrent logins ran")
	}
}

func TestSMTPDelayEndsWhenInstanceGoesDown(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "pw")
	in.SetFaults(Faults{Delay: time.Minute})
	// The cut is only exercised on an open session: EHLO is answered
	// before the delayed AUTH is sent, not a fixed time before the cut.
	c, err := smtp.Dial(in.SMTPAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.CommandTimeout = 10 * time.Second
	if err := c.Hello("localhost"); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- c.Auth(sasl.NewPlainClient("", "admin@acme.test", "pw")) }()
	start := time.Now()
	if err := in.SetFaults(Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("login succeeded on an instance that went down")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("delayed AUTH kept running after the instance went down")
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("too slow")
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
