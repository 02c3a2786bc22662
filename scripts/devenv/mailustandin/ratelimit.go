package mailustandin

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// Rate is a MailU limit like "5/hour": at most N hits in any window of
// Per (the limits library's moving window, which MailU's limiter uses).
type Rate struct {
	N   int
	Per time.Duration
}

func (r Rate) String() string { return fmt.Sprintf("%d/%v", r.N, r.Per) }

// AuthLimits are MailU 2024.06's AUTH_RATELIMIT_* settings, with its
// defaults from core/admin/mailu/configuration.py.
type AuthLimits struct {
	IP       Rate // AUTH_RATELIMIT_IP: failed logins per client network
	IPv4Mask int  // AUTH_RATELIMIT_IP_V4_MASK: the network of an IPv4 client
	IPv6Mask int  // AUTH_RATELIMIT_IP_V6_MASK
	User     Rate // AUTH_RATELIMIT_USER: failed logins per known user
	// Exemption are the AUTH_RATELIMIT_EXEMPTION networks, never limited.
	Exemption []netip.Prefix
	// ExemptionLength is AUTH_RATELIMIT_EXEMPTION_LENGTH: how long a
	// client address stays exempt after a successful login.
	ExemptionLength time.Duration
}

// DefaultAuthLimits are MailU 2024.06's defaults: 5/hour per /24 (IPv4)
// or /48 (IPv6), 50/day per user, no exempt network, 86400 s of exemption.
func DefaultAuthLimits() AuthLimits {
	return AuthLimits{
		IP: Rate{5, time.Hour}, IPv4Mask: 24, IPv6Mask: 48,
		User:            Rate{50, 24 * time.Hour},
		ExemptionLength: 24 * time.Hour,
	}
}

// ParseExemption reads AUTH_RATELIMIT_EXEMPTION: comma-separated CIDRs,
// host bits allowed (MailU parses them with strict=False).
func ParseExemption(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if !strings.Contains(f, "/") {
			a, err := netip.ParseAddr(f)
			if err != nil {
				return nil, fmt.Errorf("AUTH_RATELIMIT_EXEMPTION: %w", err)
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("AUTH_RATELIMIT_EXEMPTION: %w", err)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// authLimiter is one instance's copy of MailU 2024.06's limiter
// (core/admin/mailu/limiter.py), kept in memory where MailU uses redis:
// counts do not survive a restart of the stand-in.
//
//   - A client network (the address masked to IPv4Mask/IPv6Mask bits)
//     collects hits; once it has IP.N within IP.Per, logins from it are
//     refused before their credentials are checked, and the admin API
//     answers 429. A failed login for an unknown user hits it once per
//     network and user name per IP.Per (so distinct unknown names count),
//     a wrong API token every time.
//   - A known user collects hits for distinct wrong passwords (each
//     password once per User.Per); once it has User.N, its logins are
//     refused, right password or not. Each such failure also hits the
//     client's network, once per network and user per IP.Per.
//   - A client address that logged in is exempt from both for
//     ExemptionLength (renewed by each success), and so is any address in
//     Exemption; failures from exempt addresses are not counted.
type authLimiter struct {
	limits AuthLimits
	now    func() time.Time
	key    []byte // keys the digests of wrong passwords (dedup only)

	mu     sync.Mutex
	hits   map[string][]time.Time // "ip:<network>" or "user:<name>" -> hits
	dedup  map[string]time.Time   // dedup key -> until
	exempt map[string]time.Time   // client address -> until
}

func newAuthLimiter(l AuthLimits, now func() time.Time) *authLimiter {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	return &authLimiter{limits: l, now: now, key: key,
		hits: map[string][]time.Time{}, dedup: map[string]time.Time{}, exempt: map[string]time.Time{}}
}

// network is the client's network as MailU's utils.extract_network_from_ip
// computes it.
func (l *authLimiter) network(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	bits := l.limits.IPv6Mask
	if a.Is4() {
		bits = l.limits.IPv4Mask
	}
	p, err := a.Prefix(bits)
	if err != nil {
		return ip
	}
	return p.Addr().String()
}

// subjectLocked is is_subject_to_rate_limits: neither in an exempt
// network nor exempt after a recent success.
func (l *authLimiter) subjectLocked(ip string, now time.Time) bool {
	if a, err := netip.ParseAddr(ip); err == nil {
		a = a.Unmap()
		for _, p := range l.limits.Exemption {
			if p.Contains(a) {
				return false
			}
		}
	}
	return !now.Before(l.exempt[ip])
}

// countLocked is the number of hits of key in the window ending now.
func (l *authLimiter) countLocked(key string, window time.Duration, now time.Time) int {
	kept := l.hits[key][:0]
	for _, t := range l.hits[key] {
		if now.Sub(t) < window {
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		delete(l.hits, key)
	} else {
		l.hits[key] = kept
	}
	return len(kept)
}

// limitIP is should_rate_limit_ip.
func (l *authLimiter) limitIP(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return l.subjectLocked(ip, now) && l.countLocked("ip:"+l.network(ip), l.limits.IP.Per, now) >= l.limits.IP.N
}

// limitUser is should_rate_limit_user.
func (l *authLimiter) limitUser(user, ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return l.subjectLocked(ip, now) && l.countLocked("user:"+user, l.limits.User.Per, now) >= l.limits.User.N
}

// hitIP is rate_limit_ip: user "" (a wrong API token) always hits; a
// named user hits once per network and name per IP.Per.
func (l *authLimiter) hitIP(ip, user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.hitIPLocked(ip, user, l.now())
}

func (l *authLimiter) hitIPLocked(ip, user string, now time.Time) {
	if !l.subjectLocked(ip, now) {
		return
	}
	network := l.network(ip)
	dk := "ip|" + network + "|" + user
	if user != "" && now.Before(l.dedup[dk]) {
		return
	}
	l.dedup[dk] = now.Add(l.limits.IP.Per)
	l.hits["ip:"+network] = append(l.hits["ip:"+network], now)
}

// hitUser is rate_limit_user: a known user's failed login, counted once
// per distinct password per User.Per, and against the client's network.
func (l *authLimiter) hitUser(user, ip, password string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if !l.subjectLocked(ip, now) {
		return
	}
	m := hmac.New(sha256.New, l.key)
	m.Write([]byte(user))
	m.Write([]byte{0})
	m.Write([]byte(password))
	dk := "user|" + user + "|" + hex.EncodeToString(m.Sum(nil))
	if password != "" && now.Before(l.dedup[dk]) {
		return
	}
	l.dedup[dk] = now.Add(l.limits.User.Per)
	l.hits["user:"+user] = append(l.hits["user:"+user], now)
	l.hitIPLocked(ip, user, now)
	l.sweepLocked(now)
}

// exemptClient is exempt_ip_from_ratelimits, after a successful login.
func (l *authLimiter) exemptClient(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.exempt[ip] = l.now().Add(l.limits.ExemptionLength)
}

// sweepLocked forgets expired dedup marks now and then, so that a long
// run of distinct wrong passwords does not grow the maps for ever.
func (l *authLimiter) sweepLocked(now time.Time) {
	if len(l.dedup) < 4096 {
		return
	}
	for k, until := range l.dedup {
		if !now.Before(until) {
			delete(l.dedup, k)
		}
	}
}
