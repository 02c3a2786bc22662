package devenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/pquerna/otp/totp"

	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/crypto"
	"smtp-vault/shared/notify"
)

// SyncBuffer is a bytes.Buffer safe for concurrent writers, for capturing
// logs and audit records in tests.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Clock is the functions' clock in a test stack: real time plus an offset
// the test can move, to age tokens without waiting.
type Clock struct {
	mu     sync.Mutex
	offset time.Duration
}

// Now is the current time as the functions see it.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

// Shift moves the functions' clock by d (negative goes back).
func (c *Clock) Shift(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
}

// AdvanceToHour moves the clock forward to the next hour:00 UTC that is
// at least an hour ahead. The clock only goes forward: what the stack
// did before (events, locks, rotations) stays in the past, and the hour
// of margin lets its locks and cool-downs lapse, so a test sees the same
// state whatever the time of day it runs at.
func (c *Clock) AdvanceToHour(hour int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now().Add(c.offset).UTC()
	earliest := now.Add(time.Hour)
	at := time.Date(earliest.Year(), earliest.Month(), earliest.Day(), hour, 0, 0, 0, time.UTC)
	if at.Before(earliest) {
		at = at.AddDate(0, 0, 1)
	}
	c.offset += at.Sub(now)
}

// TestStack is a stack for integration tests, with what it wrote captured.
type TestStack struct {
	*Stack
	MailUHost *InProcessMailU
	AuditLog  *SyncBuffer
	Log       *SyncBuffer
	// Clock is the functions' clock (audit, tokens, JWT checks).
	Clock *Clock
	// Notifications holds what SNS would have received.
	Notifications *notify.Memory

	codesMu   sync.Mutex
	usedCodes map[string]map[int64]bool // user -> TOTP time steps used
}

// StartTestStack starts Vault, in-process MailU stand-ins and the gateway
// in a temporary folder, seeded with tenants, and stops them when the test
// ends. It is the one helper every integration test starts servers with.
// Without a Vault binary the test fails; it never skips.
func StartTestStack(t testing.TB, tenants int, sinks ...audit.Sink) *TestStack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ts, err := NewTestStack(ctx, t.TempDir(), tenants, func(o *StackOptions) { o.Sinks = sinks })
	if ts != nil {
		t.Cleanup(ts.Close)
	}
	if err != nil {
		t.Fatalf("start test stack: %v", err)
	}
	return ts
}

// NewTestStack is StartTestStack for a TestMain that shares one stack
// among a package's tests: it keeps its state in dir, adjust (optional)
// changes the options, and the caller closes it. On error it returns what
// it started, to close, or nil.
func NewTestStack(ctx context.Context, dir string, tenants int, adjust func(*StackOptions)) (*TestStack, error) {
	// Without Dovecot's 2-second delay of refused logins: the rotation
	// tests prove thousands of times that a replaced password is refused
	// (the 1,000-run fault test would take over ten minutes more). The
	// front's tests and StartTestMailU keep the delay.
	ts := &TestStack{AuditLog: &SyncBuffer{}, Log: &SyncBuffer{}, Clock: &Clock{}, Notifications: &notify.Memory{}, usedCodes: map[string]map[int64]bool{}}
	o := StackOptions{Dir: dir, Tenants: tenants, AuditOut: ts.AuditLog, LogOut: ts.Log, Now: ts.Clock.Now, Notifier: ts.Notifications}
	if adjust != nil {
		adjust(&o)
	}
	// A MailU host of the caller's (one that outlives a restart) is used
	// as it is; otherwise the stack gets its own.
	var m *InProcessMailU
	if o.MailU == nil {
		var err error
		if m, err = StartInProcessMailU(ctx, filepath.Join(dir, "mailu"), mailustandin.Options{}, -1); err != nil {
			return nil, err
		}
		o.MailU = m
	}
	ts.MailUHost = m
	s, err := StartStack(ctx, o)
	if err != nil {
		if s == nil && m != nil {
			m.Close()
		}
		return nil, err
	}
	ts.Stack = s
	if len(s.SeedProblems) > 0 {
		return ts, fmt.Errorf("test stack: seeding the demo tenants: %v", s.SeedProblems)
	}
	return ts, nil
}

// totpPeriod is the time step of the stack's TOTP method.
const totpPeriod = 30 * time.Second

// TOTPCode returns a TOTP code of user that this stack's Vault has not
// seen yet. Vault accepts each code once and the codes of the time steps
// next to the current one (skew 1), so up to three codes are available at
// once; when they are used up, it waits for the next time step.
func (s *TestStack) TOTPCode(user string) (string, error) {
	u, ok := s.User(user)
	if !ok || u.TOTPSecret == "" {
		return "", fmt.Errorf("no demo user %q with a TOTP secret", user)
	}
	s.codesMu.Lock()
	defer s.codesMu.Unlock()
	used := s.usedCodes[user]
	if used == nil {
		used = map[int64]bool{}
		s.usedCodes[user] = used
	}
	for {
		now := time.Now() // Vault's clock, not the shifted one
		step := now.Unix() / int64(totpPeriod/time.Second)
		into := now.Sub(time.Unix(step*int64(totpPeriod/time.Second), 0))
		candidates := []int64{step, step + 1}
		if into < totpPeriod-3*time.Second {
			// The previous step stays valid for the rest of this one.
			candidates = append(candidates, step-1)
		}
		for _, c := range candidates {
			if used[c] {
				continue
			}
			code, err := totp.GenerateCode(u.TOTPSecret, time.Unix(c*int64(totpPeriod/time.Second), 0))
			if err != nil {
				return "", err
			}
			used[c] = true
			return code, nil
		}
		time.Sleep(totpPeriod - into + 100*time.Millisecond)
	}
}

// Reauth re-authenticates a demo user through the gateway, as the console
// would, and returns their bearer token and re-auth token.
func (s *TestStack) Reauth(user string) (bearer, reauthToken string, err error) {
	u, ok := s.User(user)
	if !ok {
		return "", "", fmt.Errorf("no demo user %q", user)
	}
	if bearer, err = s.Token(user); err != nil {
		return "", "", err
	}
	code, err := s.TOTPCode(user)
	if err != nil {
		return "", "", err
	}
	body, _ := json.Marshal(map[string]string{"password": u.Password, "totp_code": code})
	req, err := http.NewRequest(http.MethodPost, s.APIURL+"/api/v1/platform-admin/reauth", bytes.NewReader(body))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		ReauthToken string `json:"reauth_token"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(raw, &out) != nil || out.ReauthToken == "" {
		return "", "", fmt.Errorf("re-authenticate %s: %d %s", user, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	return bearer, out.ReauthToken, nil
}

// ReauthAs is Reauth for the first demo user holding role.
func (s *TestStack) ReauthAs(role auth.Role) (bearer, reauthToken string, err error) {
	return s.Reauth(s.UserWithRole(role))
}

// SeedSealedTenants writes n tenants' admin records directly, 32 writes in
// flight, each password sealed as the store function seals it (a data key
// of the tenant's derived Transit key, AAD <tenant>/password), for
// benchmarks that need many tenants without their MailU. It returns the
// tenant ids.
func (s *TestStack) SeedSealedTenants(tb testing.TB, n int) []string {
	tb.Helper()
	ctx := context.Background()
	v := s.App.Vault
	last := credential.FormatTime(time.Now().Add(-24 * time.Hour))
	return seedParallel(tb, n, func(i int, id string) error {
		dk, wrapped, err := v.DataKey(ctx, s.App.Config.TransitKey, id)
		if err != nil {
			return err
		}
		sealed, err := crypto.Seal(dk, []byte("bench-"+id), crypto.AAD(id, "password"))
		if err != nil {
			return err
		}
		_, err = v.WriteCAS(ctx, credential.AdminPath(id), map[string]string{
			"username": "admin@" + id[:8] + ".example.test", "password": sealed, "data_key": wrapped,
			"webmail_url": "https://mail." + id[:8] + ".example.test", "created_at": last, "last_rotated": last,
			"rotation_policy": credential.RotationPolicy, "smtp_addr": "127.0.0.1:1",
		}, 0)
		return err
	})
}

// SeedSealedTenantsAt is SeedSealedTenants with tenant i last rotated at
// lastRotated(i), under the domain tNNNNNN.example.test, and with the
// custom_metadata a store writes: tenants that the sweep, the overview,
// the index rebuild and the backup check all see as real ones.
func (s *TestStack) SeedSealedTenantsAt(tb testing.TB, n int, lastRotated func(i int) time.Time) []string {
	tb.Helper()
	ctx := context.Background()
	v := s.App.Vault
	return seedParallel(tb, n, func(i int, id string) error {
		dk, wrapped, err := v.DataKey(ctx, s.App.Config.TransitKey, id)
		if err != nil {
			return err
		}
		sealed, err := crypto.Seal(dk, []byte("bench-"+id), crypto.AAD(id, "password"))
		if err != nil {
			return err
		}
		last := credential.FormatTime(lastRotated(i))
		domain := fmt.Sprintf("t%06d.example.test", i)
		if _, err = v.WriteCAS(ctx, credential.AdminPath(id), map[string]string{
			"username": "admin@" + domain, "password": sealed, "data_key": wrapped,
			"webmail_url": "https://mail." + domain, "created_at": last, "last_rotated": last,
			"rotation_policy": credential.RotationPolicy, "smtp_addr": "127.0.0.1:1",
		}, 0); err != nil {
			return err
		}
		return v.PatchCustomMetadata(ctx, credential.AdminPath(id), map[string]string{
			credential.MetaState: credential.StateCurrent, credential.MetaLastRotated: last,
			credential.MetaUsername: "admin@" + domain, credential.MetaWebmailURL: "https://mail." + domain,
		})
	})
}

// SeedPlaceholderTenants writes n tenants' admin records and their
// custom_metadata directly, 32 writes in flight, with placeholder secret
// fields (for benchmarks of the sweep and the overview, which never read
// one), tenant i last rotated at lastRotated(i) under the domain
// tNNNNN.example.test. It returns the tenant ids.
func (s *TestStack) SeedPlaceholderTenants(tb testing.TB, n int, lastRotated func(i int) time.Time) []string {
	tb.Helper()
	ctx := context.Background()
	v := s.App.Vault
	return seedParallel(tb, n, func(i int, id string) error {
		last := credential.FormatTime(lastRotated(i))
		domain := fmt.Sprintf("t%05d.example.test", i)
		_, err := v.WriteCAS(ctx, credential.AdminPath(id), map[string]string{
			"username": "admin@" + domain, "password": "placeholder", "data_key": "placeholder",
			"webmail_url": "https://mail." + domain, "created_at": last, "last_rotated": last,
			"rotation_policy": credential.RotationPolicy, "smtp_addr": "127.0.0.1:1",
		}, 0)
		if err != nil {
			return err
		}
		return v.PatchCustomMetadata(ctx, credential.AdminPath(id), map[string]string{
			credential.MetaState: credential.StateCurrent, credential.MetaLastRotated: last,
			credential.MetaUsername: "admin@" + domain, credential.MetaWebmailURL: "https://mail." + domain,
		})
	})
}

// seedParallel calls write for n new tenant ids, 32 at a time, and fails
// tb with the first error.
func seedParallel(tb testing.TB, n int, write func(i int, id string) error) []string {
	tb.Helper()
	ids := make([]string, n)
	var (
		wg   sync.WaitGroup
		once sync.Once
		werr error
	)
	next := make(chan int)
	for range 32 {
		wg.Go(func() {
			for i := range next {
				ids[i] = uuid.NewString()
				if err := write(i, ids[i]); err != nil {
					once.Do(func() { werr = fmt.Errorf("seed %s: %w", ids[i], err) })
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if werr != nil {
		tb.Fatal(werr)
	}
	return ids
}

// ReadEveryMetadata is the Vault work of reading every tenant's state
// without an index: one LIST of the KV mount and each admin record's
// metadata, credential.DefaultConcurrency reads at a time. The sweep and
// overview benchmarks time it as their baseline. It returns how many
// folders it read.
func (s *TestStack) ReadEveryMetadata(tb testing.TB) int {
	tb.Helper()
	ctx := context.Background()
	v := s.App.Vault
	keys, err := v.List(ctx, "")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	next := make(chan string)
	for range credential.DefaultConcurrency {
		wg.Go(func() {
			for k := range next {
				if _, err := v.ReadMetadata(ctx, credential.AdminPath(strings.TrimSuffix(k, "/"))); err != nil {
					tb.Error(err)
				}
			}
		})
	}
	for _, k := range keys {
		next <- k
	}
	close(next)
	wg.Wait()
	return len(keys)
}

// EnvCount is a benchmark's or long test's size knob: the positive
// integer in the environment variable name, or def when it is unset. A
// value that is not one fails tb.
func EnvCount(tb testing.TB, name string, def int) int {
	tb.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		tb.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}
