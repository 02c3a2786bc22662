package mailustandin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// AuthLimits are MailU's limits on failed logins (its AUTH_RATELIMIT_*
// settings), which the admin app applies to every SMTP AUTH that nginx
// asks it about:
//
//   - a client network (/24 for IPv4, /56 for IPv6) whose failed logins
//     for unknown users reach IPFailures within IPWindow is refused,
//     before its credentials are even checked;
//   - a user whose failed logins (distinct wrong passwords) reach
//     UserFailures within UserWindow is refused the same way;
//   - a client IP that logged in successfully is exempt from both for
//     Exemption afterwards, and its failures are not counted meanwhile.
//
// A refused login is answered "451 4.3.2": a temporary failure, which
// clients must not take for a wrong password.
type AuthLimits struct {
	IPFailures   int
	IPWindow     time.Duration
	UserFailures int
	UserWindow   time.Duration
	Exemption    time.Duration
}

// DefaultAuthLimits are MailU's defaults: AUTH_RATELIMIT_IP=60/hour,
// AUTH_RATELIMIT_USER=100/day, AUTH_RATELIMIT_EXEMPTION_LENGTH=86400.
func DefaultAuthLimits() AuthLimits {
	return AuthLimits{IPFailures: 60, IPWindow: time.Hour, UserFailures: 100, UserWindow: 24 * time.Hour, Exemption: 24 * time.Hour}
}

var (
	errRateLimitedIP   = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Authentication rate limit from one source exceeded"}
	errRateLimitedUser = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: "Authentication rate limit for this username exceeded"}
)

// authLimiter keeps one instance's counts in memory (MailU keeps them in
// redis); they do not survive a restart.
type authLimiter struct {
	limits AuthLimits
	now    func() time.Time
	key    []byte // keys the digests of attempted passwords

	mu       sync.Mutex
	networks map[string][]time.Time            // network -> failures
	users    map[string]map[[32]byte]time.Time // user -> digest of a wrong password -> last try
	exempt   map[string]time.Time              // client IP -> exempt until
}

func newAuthLimiter(l AuthLimits, now func() time.Time) *authLimiter {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &authLimiter{limits: l, now: now, key: key,
		networks: map[string][]time.Time{}, users: map[string]map[[32]byte]time.Time{}, exempt: map[string]time.Time{}}
}

// network is the client's /24 or /56, as MailU counts it.
func network(ip string) string {
	a := net.ParseIP(ip)
	if a == nil {
		return ip
	}
	if v4 := a.To4(); v4 != nil {
		return v4.Mask(net.CIDRMask(24, 32)).String()
	}
	return a.Mask(net.CIDRMask(56, 128)).String()
}

func (l *authLimiter) exemptLocked(ip string, now time.Time) bool {
	return now.Before(l.exempt[ip])
}

// refuse says whether a login from ip as user (known: the user exists)
// is refused before its password is checked.
func (l *authLimiter) refuse(ip, user string, known bool) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.exemptLocked(ip, now) {
		return nil
	}
	if l.limits.IPFailures > 0 && recent(l.networks[network(ip)], now, l.limits.IPWindow) >= l.limits.IPFailures {
		return errRateLimitedIP
	}
	if known && l.limits.UserFailures > 0 {
		n := 0
		for _, at := range l.users[user] {
			if now.Sub(at) < l.limits.UserWindow {
				n++
			}
		}
		if n >= l.limits.UserFailures {
			return errRateLimitedUser
		}
	}
	return nil
}

// failed counts a failed login: on the user when it exists (each distinct
// wrong password once), on the client's network otherwise.
func (l *authLimiter) failed(ip, user, password string, known bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if l.exemptLocked(ip, now) {
		return
	}
	if !known {
		n := network(ip)
		l.networks[n] = append(pruned(l.networks[n], now, l.limits.IPWindow), now)
		return
	}
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(password))
	var d [32]byte
	copy(d[:], m.Sum(nil))
	if l.users[user] == nil {
		l.users[user] = map[[32]byte]time.Time{}
	}
	l.users[user][d] = now
}

// succeeded exempts the client IP.
func (l *authLimiter) succeeded(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exempt[ip] = l.now().Add(l.limits.Exemption)
}

func recent(ts []time.Time, now time.Time, window time.Duration) int {
	return len(pruned(ts, now, window))
}

func pruned(ts []time.Time, now time.Time, window time.Duration) []time.Time {
	out := ts[:0:0]
	for _, t := range ts {
		if now.Sub(t) < window {
			out = append(out, t)
		}
	}
	return out
}
