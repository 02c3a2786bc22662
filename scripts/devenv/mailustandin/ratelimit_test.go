package mailustandin

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"
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

// authEndpoint asks the internal auth endpoint as the Dovecot front does.
type authEndpoint struct {
	t   *testing.T
	url string
}

// ask returns the Auth-Status of one login: "OK", "invalid" or
// "ratelimit".
func (e authEndpoint) ask(ip, user, pw string) string {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.url+InternalAuthPath, nil)
	req.Header.Set("Auth-Method", "PLAIN")
	req.Header.Set("Auth-Protocol", "submission")
	req.Header.Set("Auth-User", url.PathEscape(user))
	req.Header.Set("Auth-Pass", url.PathEscape(pw))
	req.Header.Set("Auth-Port", "465")
	req.Header.Set("Client-Ip", url.PathEscape(ip))
	req.Header.Set("Client-Port", "40000")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("auth endpoint answered %d", resp.StatusCode)
	}
	switch st := resp.Header.Get("Auth-Status"); st {
	case statusOK:
		if resp.Header.Get("Auth-Server") != "127.0.0.1" || resp.Header.Get("Auth-Port") != "10025" {
			e.t.Fatalf("OK without the relay to proxy to: %v", resp.Header)
		}
		return "OK"
	case statusInvalid:
		if resp.Header.Get("Auth-Error-Code") != codeInvalid {
			e.t.Fatalf("invalid with code %q", resp.Header.Get("Auth-Error-Code"))
		}
		return "invalid"
	case statusRateLimited:
		if resp.Header.Get("Auth-Error-Code") != codeRateLimited {
			e.t.Fatalf("rate limit with code %q", resp.Header.Get("Auth-Error-Code"))
		}
		return "ratelimit"
	default:
		e.t.Fatalf("unexpected Auth-Status %q", st)
		return ""
	}
}

func limitedEndpoint(t *testing.T, limits AuthLimits) (authEndpoint, *Instance, *testClock) {
	clock := &testClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	s := newTestServer(t, Options{AuthLimits: &limits, Now: clock.now})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "right-pw")
	ts := httptest.NewServer(s.InternalHandler("127.0.0.1:10025"))
	t.Cleanup(ts.Close)
	return authEndpoint{t: t, url: ts.URL}, in, clock
}

// step is one login (or a move of the clock) and the answer it must get.
type step struct {
	advance      time.Duration
	ip, user, pw string
	times        int // repeat the login; 0 means once
	distinctPW   bool
	want         string
}

func run(t *testing.T, e authEndpoint, clock *testClock, steps []step) {
	t.Helper()
	for n, s := range steps {
		clock.add(s.advance)
		if s.user == "" {
			continue
		}
		times := max(s.times, 1)
		for k := range times {
			pw := s.pw
			if s.distinctPW {
				pw = fmt.Sprintf("%s-%d", s.pw, k)
			}
			got := e.ask(s.ip, s.user, pw)
			if got != s.want {
				t.Fatalf("step %d (%s as %s, try %d of %d): %s, want %s", n, s.ip, s.user, k+1, times, got, s.want)
			}
		}
	}
}

// TestLimiter follows MailU 2024.06's limiter (core/admin/mailu/limiter.py)
// and its use by internal/views/auth.py, with the defaults of
// configuration.py.
func TestLimiter(t *testing.T) {
	const admin = "admin@acme.test"
	v4Exempt, _ := ParseExemption("198.51.100.0/24, 2001:db8:ffff::/48")
	cases := []struct {
		name   string
		adjust func(*AuthLimits)
		steps  []step
	}{
		{name: "5 distinct unknown users from a /24 limit the whole /24 for an hour", steps: []step{
			{ip: "203.0.113.7", user: "nobody@acme.test", pw: "x", want: "invalid"},
			{ip: "203.0.113.7", user: "ghost@acme.test", pw: "x", want: "invalid"},
			{ip: "203.0.113.8", user: "ghost2@acme.test", pw: "x", want: "invalid"},
			{ip: "203.0.113.9", user: "ghost3@acme.test", pw: "x", want: "invalid"},
			{ip: "203.0.113.9", user: "ghost4@acme.test", pw: "x", want: "invalid"},
			{ip: "203.0.113.99", user: admin, pw: "right-pw", want: "ratelimit"},
			{ip: "203.0.114.1", user: admin, pw: "right-pw", want: "OK"},
			{advance: 59 * time.Minute, ip: "203.0.113.5", user: admin, pw: "right-pw", want: "ratelimit"},
			{advance: time.Minute, ip: "203.0.113.5", user: admin, pw: "right-pw", want: "OK"},
		}},
		{name: "one unknown user tried again and again counts once per hour", steps: []step{
			{ip: "203.0.113.7", user: "nobody@acme.test", pw: "x", times: 20, want: "invalid"},
			{ip: "203.0.113.7", user: admin, pw: "right-pw", want: "OK"},
		}},
		{name: "a known user's failures hit the network once per hour", steps: []step{
			{ip: "203.0.113.7", user: admin, pw: "wrong", times: 10, distinctPW: true, want: "invalid"},
			{ip: "203.0.113.7", user: "a@acme.test", pw: "x", want: "invalid"},
			{ip: "203.0.113.7", user: "b@acme.test", pw: "x", want: "invalid"},
			{ip: "203.0.113.7", user: "c@acme.test", pw: "x", want: "invalid"},
			// 1 (admin) + 3 unknown = 4 hits: one more is allowed...
			{ip: "203.0.113.7", user: "d@acme.test", pw: "x", want: "invalid"},
			// ...and then the network is over its limit.
			{ip: "203.0.113.7", user: admin, pw: "right-pw", want: "ratelimit"},
		}},
		{name: "50 distinct wrong passwords a day limit the user, from anywhere", steps: []step{
			{ip: "203.0.113.7", user: admin, pw: "guess", times: 50, distinctPW: true, want: "invalid"},
			{ip: "192.0.2.1", user: admin, pw: "right-pw", want: "ratelimit"},
			{advance: 23 * time.Hour, ip: "192.0.2.1", user: admin, pw: "right-pw", want: "ratelimit"},
			{advance: time.Hour, ip: "192.0.2.1", user: admin, pw: "right-pw", want: "OK"},
		}},
		{name: "the same wrong password counts once a day", steps: []step{
			{ip: "203.0.113.7", user: admin, pw: "guess", times: 49, distinctPW: true, want: "invalid"},
			{ip: "203.0.113.7", user: admin, pw: "guess-0", times: 10, want: "invalid"},
			{ip: "192.0.2.1", user: admin, pw: "right-pw", want: "OK"},
		}},
		{name: "a client that logged in is exempt for 24 hours and its failures do not count", steps: []step{
			{ip: "192.0.2.10", user: admin, pw: "right-pw", want: "OK"},
			{ip: "203.0.113.7", user: admin, pw: "guess", times: 50, distinctPW: true, want: "invalid"},
			{ip: "203.0.113.8", user: admin, pw: "right-pw", want: "ratelimit"},
			{ip: "192.0.2.10", user: admin, pw: "right-pw", want: "OK"},
			{ip: "192.0.2.10", user: "x@acme.test", pw: "x", times: 10, distinctPW: true, want: "invalid"},
			// The exemption is the address's, not its network's.
			{ip: "192.0.2.11", user: admin, pw: "right-pw", want: "ratelimit"},
			{advance: 24 * time.Hour, ip: "192.0.2.10", user: admin, pw: "right-pw", want: "OK"},
		}},
		{name: "the exemption lapses 24 hours after the last success", steps: []step{
			{ip: "192.0.2.10", user: admin, pw: "right-pw", want: "OK"},
			{advance: 24 * time.Hour, ip: "192.0.2.10", user: "a@acme.test", pw: "x", want: "invalid"},
			{ip: "192.0.2.10", user: "b@acme.test", pw: "x", want: "invalid"},
			{ip: "192.0.2.10", user: "c@acme.test", pw: "x", want: "invalid"},
			{ip: "192.0.2.10", user: "d@acme.test", pw: "x", want: "invalid"},
			{ip: "192.0.2.10", user: "e@acme.test", pw: "x", want: "invalid"},
			{ip: "192.0.2.10", user: admin, pw: "right-pw", want: "ratelimit"},
		}},
		{name: "AUTH_RATELIMIT_EXEMPTION networks are never limited", adjust: func(l *AuthLimits) { l.Exemption = v4Exempt }, steps: []step{
			{ip: "198.51.100.20", user: "nobody@acme.test", pw: "x", times: 10, distinctPW: true, want: "invalid"},
			{ip: "203.0.113.7", user: admin, pw: "guess", times: 50, distinctPW: true, want: "invalid"},
			{ip: "203.0.113.8", user: admin, pw: "right-pw", want: "ratelimit"},
			{ip: "198.51.100.20", user: admin, pw: "right-pw", want: "OK"},
			{ip: "2001:db8:ffff:1::5", user: admin, pw: "right-pw", want: "OK"},
		}},
		{name: "IPv6 clients are counted per /48", steps: []step{
			{ip: "2001:db8:1:1::1", user: "a@acme.test", pw: "x", want: "invalid"},
			{ip: "2001:db8:1:2::1", user: "b@acme.test", pw: "x", want: "invalid"},
			{ip: "2001:db8:1:3::1", user: "c@acme.test", pw: "x", want: "invalid"},
			{ip: "2001:db8:1:4::1", user: "d@acme.test", pw: "x", want: "invalid"},
			{ip: "2001:db8:1:5::1", user: "e@acme.test", pw: "x", want: "invalid"},
			{ip: "2001:db8:1:ffff::9", user: admin, pw: "right-pw", want: "ratelimit"},
			{ip: "2001:db8:2::1", user: admin, pw: "right-pw", want: "OK"},
		}},
		{name: "the limits are settings", adjust: func(l *AuthLimits) { l.User = Rate{2, time.Hour} }, steps: []step{
			{ip: "203.0.113.7", user: admin, pw: "guess", times: 2, distinctPW: true, want: "invalid"},
			{ip: "192.0.2.1", user: admin, pw: "right-pw", want: "ratelimit"},
			{advance: time.Hour, ip: "192.0.2.1", user: admin, pw: "right-pw", want: "OK"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			limits := DefaultAuthLimits()
			if c.adjust != nil {
				c.adjust(&limits)
			}
			e, _, clock := limitedEndpoint(t, limits)
			run(t, e, clock, c.steps)
		})
	}
}

// TestAppTokenShapedPasswordBypassesNetworkLimit: MailU skips the
// network check for a password that looks like an app token.
func TestAppTokenShapedPasswordBypassesNetworkLimit(t *testing.T) {
	e, in, _ := limitedEndpoint(t, DefaultAuthLimits())
	const token = "0123456789abcdef0123456789abcdef"
	createUser(t, in, "app@acme.test", token)
	for k := range 5 {
		if got := e.ask("203.0.113.7", fmt.Sprintf("ghost%d@acme.test", k), "x"); got != "invalid" {
			t.Fatalf("unknown user: %s", got)
		}
	}
	if got := e.ask("203.0.113.7", "admin@acme.test", "right-pw"); got != "ratelimit" {
		t.Fatalf("password from a limited network: %s, want ratelimit", got)
	}
	if got := e.ask("203.0.113.7", "app@acme.test", token); got != "OK" {
		t.Fatalf("app-token-shaped password from a limited network: %s, want OK", got)
	}
}

func TestParseExemption(t *testing.T) {
	got, err := ParseExemption(" 10.1.2.3/8 ,, 192.0.2.7, 2001:db8::1/32 ")
	if err != nil {
		t.Fatal(err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ParseExemption: %v, want %v", got, want)
	}
	if _, err := ParseExemption("10.0.0.0/33"); err == nil {
		t.Fatal("a bad CIDR was accepted")
	}
}
