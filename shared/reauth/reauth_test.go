package reauth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/notify"
	"smtp-vault/shared/vault"
)

// fakeVault stands in for Vault where the rules live in this package: a
// KV v2 mount with check-and-set, an ed25519 signing key, and a userpass
// login with TOTP login MFA whose answers the test decides. The real
// Vault is exercised end to end in shared/api.
type fakeVault struct {
	mu         sync.Mutex
	kv         map[string]*vault.Secret
	keys       map[int]ed25519.PrivateKey // signing key versions
	version    int                        // the version that signs
	minVersion int                        // min_decryption_version
	keyType    string                     // "ed25519" unless a test says otherwise
	keyReads   atomic.Int32               // reads of the key's public half
	verifies   atomic.Int32               // transit/verify calls

	password, code string
	logins         atomic.Int32 // userpass logins that reached "Vault"
	revoked        atomic.Int32
	loginDelay     time.Duration
	down           bool
}

func newFakeVault() *fakeVault {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	return &fakeVault{kv: map[string]*vault.Secret{}, keys: map[int]ed25519.PrivateKey{1: k}, version: 1, minVersion: 1, keyType: "ed25519", password: "right-password", code: "123456"}
}

func (f *fakeVault) LoginUserpass(ctx context.Context, mount, user, password string) (*vault.UserpassLogin, error) {
	f.logins.Add(1)
	time.Sleep(f.loginDelay)
	if f.down {
		return nil, fmt.Errorf("login: %w", vault.ErrUnavailable)
	}
	if user != "alice" || password != f.password {
		return nil, fmt.Errorf("login: %w", vault.ErrInvalidCredentials)
	}
	return &vault.UserpassLogin{MFARequestID: "req-1", MFAConstraints: map[string][]vault.MFAMethod{
		"enforce": {{ID: "totp-1", Type: "totp", UsesPasscode: true}},
	}}, nil
}

func (f *fakeVault) ValidateMFA(ctx context.Context, requestID string, passcodes map[string]string) (string, error) {
	if requestID != "req-1" || passcodes["totp-1"] != f.code {
		return "", fmt.Errorf("mfa: %w", vault.ErrInvalidCredentials)
	}
	return "hvs.proof", nil
}

func (f *fakeVault) RevokeSelf(ctx context.Context, token string) error {
	f.revoked.Add(1)
	return nil
}

func (f *fakeVault) Sign(ctx context.Context, key string, input []byte) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return fmt.Sprintf("vault:v%d:%s", f.version, base64.StdEncoding.EncodeToString(ed25519.Sign(f.keys[f.version], input))), nil
}

// rotateKey adds a signing key version, as `vault write -f
// transit/keys/<name>/rotate` does.
func (f *fakeVault) rotateKey() {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version++
	f.keys[f.version] = k
}

func (f *fakeVault) ReadSigningKey(ctx context.Context, key string) (vault.SigningKey, error) {
	f.keyReads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return vault.SigningKey{}, fmt.Errorf("read key: %w", vault.ErrUnavailable)
	}
	out := vault.SigningKey{Type: f.keyType, MinVersion: f.minVersion, PublicKeys: map[int]string{}}
	for v, k := range f.keys {
		out.PublicKeys[v] = base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
	}
	return out, nil
}

func (f *fakeVault) Verify(ctx context.Context, key string, input []byte, signature string) (bool, error) {
	f.verifies.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return false, fmt.Errorf("verify: %w", vault.ErrUnavailable)
	}
	var v int
	var b64 string
	if n, err := fmt.Sscanf(signature, "vault:v%d:%s", &v, &b64); n != 2 || err != nil || f.keys[v] == nil || v < f.minVersion {
		return false, fmt.Errorf("verify: %w", vault.ErrBadRequest)
	}
	sig, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return false, fmt.Errorf("verify: %w", vault.ErrBadRequest)
	}
	return ed25519.Verify(f.keys[v].Public().(ed25519.PublicKey), input, sig), nil
}

func (f *fakeVault) ReadKV(ctx context.Context, mount, path string) (*vault.Secret, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.kv[mount+"/"+path]
	if !ok {
		return nil, vault.ErrNotFound
	}
	cp := *s
	return &cp, nil
}

func (f *fakeVault) WriteKVCAS(ctx context.Context, mount, path string, data map[string]string, cas int) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := 0
	if s, ok := f.kv[mount+"/"+path]; ok {
		cur = s.Version
	}
	if cas != cur {
		return 0, vault.ErrCASConflict
	}
	f.kv[mount+"/"+path] = &vault.Secret{Data: data, Version: cur + 1}
	return cur + 1, nil
}

// memAudit keeps the events recorded.
type memAudit struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

func (m *memAudit) Record(_ context.Context, e audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("audit store down")
	}
	m.events = append(m.events, e)
	return nil
}

func (m *memAudit) count(event string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, e := range m.events {
		if e.Event == event {
			n++
		}
	}
	return n
}

type memNotifier struct {
	mu   sync.Mutex
	msgs []notify.Message
}

func (m *memNotifier) Notify(_ context.Context, msg notify.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

func (m *memNotifier) count() int { m.mu.Lock(); defer m.mu.Unlock(); return len(m.msgs) }

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }
func newClock() *clock               { return &clock{now: time.Date(2026, 3, 12, 9, 0, 0, 0, time.UTC)} }
func quietLog() *slog.Logger         { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
func alice() Actor                   { return Actor{UserID: "alice", IP: "192.0.2.1", UserAgent: "test"} }
func newService(t *testing.T, f *fakeVault, a *memAudit, c *clock, ttl time.Duration) *Service {
	t.Helper()
	s, err := New(Config{Vault: f, Audit: a, Now: c.Now, Log: quietLog(), TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func kindOf(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrHeld):
		return "held"
	case errors.Is(err, ErrLocked):
		return "locked"
	case errors.Is(err, ErrFailed):
		return "failed"
	case errors.Is(err, ErrRequired):
		return "required"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, ErrAudit):
		return "audit"
	}
	return "other: " + err.Error()
}

func TestAuthenticateIssuesATokenBoundToTheSubject(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	s := newService(t, f, a, c, 0)
	got, err := s.Authenticate(context.Background(), alice(), "right-password", "123456")
	if err != nil {
		t.Fatal(err)
	}
	if got.Claims.Subject != "alice" || got.Claims.Expiry() != c.Now().Add(15*time.Minute) || got.Claims.ID == "" {
		t.Fatalf("claims %+v", got.Claims)
	}
	if f.revoked.Load() != 1 {
		t.Fatal("the Vault token of the proof was not revoked")
	}
	if a.count(audit.AdminReauthenticated) != 1 {
		t.Fatal("success not audited")
	}
	if _, err := s.Verify(context.Background(), got.Token, "alice"); err != nil {
		t.Fatalf("own token refused: %v", err)
	}
	if _, err := s.Verify(context.Background(), got.Token, "sam"); kindOf(err) != "required" {
		t.Fatalf("another subject's token: %v", err)
	}
	c.add(15*time.Minute - time.Second)
	if _, err := s.Verify(context.Background(), got.Token, "alice"); err != nil {
		t.Fatalf("token refused a second before it expires: %v", err)
	}
	c.add(time.Second)
	if _, err := s.Verify(context.Background(), got.Token, "alice"); kindOf(err) != "required" || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: %v", err)
	}
}

func TestAuthenticateFailsClosedWithoutAudit(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{fail: true}, newClock()
	s := newService(t, f, a, c, 0)
	got, err := s.Authenticate(context.Background(), alice(), "right-password", "123456")
	if kindOf(err) != "audit" || got.Token != "" {
		t.Fatalf("got %q, %v; want no token and ErrAudit", got.Token, err)
	}
}

func TestLockout(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	s := newService(t, f, a, c, 0)
	ctx := context.Background()
	try := func(pw, code string) error {
		_, err := s.Authenticate(ctx, alice(), pw, code)
		return err
	}
	// Three failures are answered as failures, spread over the window.
	for i, in := range [][2]string{{"wrong", "123456"}, {"right-password", "000000"}, {"right-password", "999999"}} {
		if err := try(in[0], in[1]); kindOf(err) != "failed" {
			t.Fatalf("failure %d: %v", i+1, err)
		}
		c.add(time.Minute)
	}
	// The fourth within five minutes locks, and says for how long.
	err := try("right-password", "111111")
	var re *Error
	if kindOf(err) != "locked" || !errors.As(err, &re) || re.RetryAfter != LockDuration || !errors.Is(err, ErrFailed) || re.Reason != "wrong_totp_code" {
		t.Fatalf("fourth failure: %v", err)
	}
	if a.count(audit.ReauthLocked) != 1 {
		t.Fatal("no reauth_locked event")
	}
	// While locked, even the right password and code are refused, without
	// asking Vault.
	logins := f.logins.Load()
	c.add(10 * time.Minute)
	err = try("right-password", "123456")
	if kindOf(err) != "locked" || !errors.As(err, &re) || re.RetryAfter != 5*time.Minute || errors.Is(err, ErrFailed) {
		t.Fatalf("right credentials while locked: %v", err)
	}
	if f.logins.Load() != logins {
		t.Fatal("Vault was asked while the user is locked")
	}
	if a.count(audit.ReauthLocked) != 1 {
		t.Fatal("the lock was alerted twice")
	}
	// Once the lock ends, the right credentials work and clear the count.
	c.add(5 * time.Minute)
	if err := try("right-password", "123456"); err != nil {
		t.Fatalf("after the lock: %v", err)
	}
	for i := range MaxFailures {
		if err := try("wrong", "123456"); kindOf(err) != "failed" {
			t.Fatalf("failure %d after a success: %v", i+1, err)
		}
	}
}

// TestSlowGuessingIsHeld: a guesser who stays under the lockout (3 every
// 5 minutes, about 860 a day) is held after DailyMaxFailures failures in a
// day, even with the user's own successful sign-ins in between; the hold
// does not end with time, refuses even the right password and code without
// asking Vault, is alerted once, and only Lift ends it.
func TestSlowGuessingIsHeld(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	alerts := &memNotifier{}
	s, err := New(Config{Vault: f, Audit: a, Alerts: alerts, Now: c.Now, Log: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	try := func(pw, code string) error {
		_, err := s.Authenticate(ctx, alice(), pw, code)
		return err
	}
	for i := range DailyMaxFailures {
		if err := try("right-password", "000000"); kindOf(err) != "failed" {
			t.Fatalf("guess %d: %v", i+1, err)
		}
		if i == DailyMaxFailures/2 {
			// The user signs in between the guesses: it forgives nothing.
			if err := try("right-password", "123456"); err != nil {
				t.Fatalf("the user's own sign-in: %v", err)
			}
		}
		c.add(FailureWindow/MaxFailures + time.Second) // never locked by the 5-minute rule
	}
	if a.count(audit.ReauthLocked) != 0 {
		t.Fatal("locked before the daily cap")
	}
	err = try("right-password", "000001")
	var re *Error
	if kindOf(err) != "held" || !errors.As(err, &re) || re.RetryAfter != 0 || !errors.Is(err, ErrFailed) || re.Failures != DailyMaxFailures+1 {
		t.Fatalf("guess %d: %v", DailyMaxFailures+1, err)
	}
	if a.count(audit.ReauthLocked) != 1 || alerts.count() != 1 {
		t.Fatalf("%d reauth_locked events and %d alerts, want 1 each", a.count(audit.ReauthLocked), alerts.count())
	}
	// Days later the hold stands, even for the right password and code.
	logins := f.logins.Load()
	c.add(3 * DailyWindow)
	if err := try("right-password", "123456"); kindOf(err) != "held" || errors.Is(err, ErrFailed) {
		t.Fatalf("right credentials while held: %v", err)
	}
	if f.logins.Load() != logins {
		t.Fatal("Vault was asked while the user is held")
	}
	if a.count(audit.ReauthLocked) != 1 || alerts.count() != 1 {
		t.Fatal("the hold was alerted twice")
	}
	// Lifting it lets the user in again, with a fresh count.
	if held, err := Lift(ctx, f, "", "Alice", c.Now()); err != nil || !held {
		t.Fatalf("Lift = %v, %v", held, err)
	}
	if err := try("right-password", "123456"); err != nil {
		t.Fatalf("after the hold was lifted: %v", err)
	}
	if held, err := Lift(ctx, f, "", "alice", c.Now()); err != nil || held {
		t.Fatalf("Lift of a user not held = %v, %v", held, err)
	}
	if _, err := Lift(ctx, f, "", "../alice", c.Now()); err == nil {
		t.Fatal("Lift took a name that is no Vault user")
	}
}

// TestDailyFailuresAgeOut: failures older than DailyWindow no longer
// count towards the hold.
func TestDailyFailuresAgeOut(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	s := newService(t, f, a, c, 0)
	for i := range 3 * DailyMaxFailures {
		if _, err := s.Authenticate(context.Background(), alice(), "wrong", "123456"); kindOf(err) != "failed" {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		c.add(DailyWindow/DailyMaxFailures + time.Minute) // never more than the cap within a day
	}
}

func TestFailuresOutsideTheWindowDoNotCount(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	s := newService(t, f, a, c, 0)
	for i := range 10 {
		if _, err := s.Authenticate(context.Background(), alice(), "wrong", "123456"); kindOf(err) != "failed" {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
		c.add(FailureWindow/MaxFailures + time.Second) // never more than 3 within 5 minutes
	}
}

// TestParallelAttemptsGetNoMoreGuesses fires many wrong attempts at once:
// attempts in flight count, so at most MaxFailures+1 reach Vault.
func TestParallelAttemptsGetNoMoreGuesses(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	f.loginDelay = 50 * time.Millisecond
	s := newService(t, f, a, c, 0)
	var wg sync.WaitGroup
	kinds := make([]string, 20)
	for i := range kinds {
		wg.Go(func() {
			_, err := s.Authenticate(context.Background(), alice(), "wrong", "123456")
			kinds[i] = kindOf(err)
		})
	}
	wg.Wait()
	if n := f.logins.Load(); n > MaxFailures+1 {
		t.Fatalf("%d guesses reached Vault, want at most %d", n, MaxFailures+1)
	}
	for _, k := range kinds {
		if k != "failed" && k != "locked" {
			t.Fatalf("attempt answered %s", k)
		}
	}
	if _, err := s.Authenticate(context.Background(), alice(), "right-password", "123456"); kindOf(err) != "locked" {
		t.Fatalf("after the burst: %v", err)
	}
}

func TestVaultDownIsNotAFailure(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	s := newService(t, f, a, c, 0)
	f.down = true
	for range 6 {
		if _, err := s.Authenticate(context.Background(), alice(), "right-password", "123456"); kindOf(err) != "unavailable" {
			t.Fatalf("Vault down: %v", err)
		}
	}
	f.down = false
	if _, err := s.Authenticate(context.Background(), alice(), "right-password", "123456"); err != nil {
		t.Fatalf("Vault back: %v (attempts Vault never judged were counted)", err)
	}
}

func TestSubjectsThatCannotNameAVaultUser(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	s := newService(t, f, a, c, 0)
	for _, sub := range []string{"", "../sys/seal", "a/b", "a..b", "-x", "with space", strings.Repeat("a", 129)} {
		_, err := s.Authenticate(context.Background(), Actor{UserID: sub}, "right-password", "123456")
		if kindOf(err) != "failed" {
			t.Errorf("subject %q: %v", sub, err)
		}
	}
	if f.logins.Load() != 0 {
		t.Fatal("Vault was asked about an unusable subject")
	}
}

func TestVerifyRefusesTamperedTokens(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	s := newService(t, f, a, c, 0)
	ctx := context.Background()
	good, err := s.Authenticate(ctx, alice(), "right-password", "123456")
	if err != nil {
		t.Fatal(err)
	}
	head, tail, _ := strings.Cut(good.Token, ".")
	reencode := func(edit func(map[string]any)) string {
		raw, _ := base64.RawURLEncoding.DecodeString(head)
		var m map[string]any
		_ = json.Unmarshal(raw, &m)
		edit(m)
		b, _ := json.Marshal(m)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	sign := func(h string) string {
		sig, _ := f.Sign(ctx, "", []byte(h))
		return h + "." + base64.RawURLEncoding.EncodeToString([]byte(sig))
	}
	sigV2 := base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(mustDecode(t, tail), "vault:v1:", "vault:v2:", 1)))
	cases := map[string]struct{ token, reason string }{
		"empty":                 {"", "missing"},
		"garbage":               {"not-a-token", "malformed"},
		"three parts":           {good.Token + ".x", "malformed"},
		"bad base64":            {head + ".***", "malformed"},
		"signature not Vault's": {head + "." + base64.RawURLEncoding.EncodeToString([]byte("abc")), "malformed"},
		"too long":              {strings.Repeat("a", 3000), "malformed"},
		"other subject":         {reencode(func(m map[string]any) { m["sub"] = "mallory" }) + "." + tail, "bad_signature"},
		"longer life":           {reencode(func(m map[string]any) { m["exp"] = m["exp"].(float64) + 3600 }) + "." + tail, "bad_signature"},
		"unknown key version":   {head + "." + sigV2, "bad_signature"},
		"signed, too long":      {sign(reencode(func(m map[string]any) { m["exp"] = m["iat"].(float64) + 3600 })), "invalid_lifetime"},
		"signed, no otp":        {sign(reencode(func(m map[string]any) { m["amr"] = []string{"pwd"} })), "insufficient_proof"},
		"signed, extra field":   {sign(reencode(func(m map[string]any) { m["admin"] = true })), "malformed"},
		"signed, future iat":    {sign(reencode(func(m map[string]any) { m["iat"] = m["iat"].(float64) + 120; m["exp"] = m["iat"].(float64) + 60 })), "invalid_lifetime"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.Verify(ctx, tc.token, "alice")
			var re *Error
			if !errors.As(err, &re) || re.Kind != ErrRequired || re.Reason != tc.reason {
				t.Fatalf("got %v, want ErrRequired (%s)", err, tc.reason)
			}
		})
	}
	// Signatures were checked with the public key read once, not by
	// asking Transit per token.
	if f.keyReads.Load() != 1 || f.verifies.Load() != 0 {
		t.Fatalf("%d key reads and %d transit/verify calls for %d tokens, want 1 and 0", f.keyReads.Load(), f.verifies.Load(), len(cases))
	}
	// Vault down: an instance that has the key goes on verifying until
	// its copy is KeyCacheTTL old; one without it cannot verify.
	f.down = true
	if _, err := s.Verify(ctx, good.Token, "alice"); err != nil {
		t.Fatalf("Vault down, key known: %v", err)
	}
	cold := newService(t, f, a, c, 0)
	if _, err := cold.Verify(ctx, good.Token, "alice"); kindOf(err) != "unavailable" {
		t.Fatalf("Vault down, key never read: %v", err)
	}
	s.keys.now = func() time.Time { return time.Now().Add(KeyCacheTTL) }
	if _, err := s.Verify(ctx, good.Token, "alice"); kindOf(err) != "unavailable" {
		t.Fatalf("Vault down, key copy expired: %v", err)
	}
}

// TestSigningKeyRotationReachesVerifiers: a token signed by a new key
// version is accepted at once (the verifier reads the key again), and a
// version retired with min_decryption_version is refused once the
// verifiers' copy of the key is renewed.
func TestSigningKeyRotationReachesVerifiers(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	s := newService(t, f, a, c, 0)
	ctx := context.Background()
	now := time.Now()
	s.keys.now = func() time.Time { return now }
	v1, err := s.Authenticate(ctx, alice(), "right-password", "123456")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Verify(ctx, v1.Token, "alice"); err != nil {
		t.Fatal(err)
	}
	f.rotateKey()
	v2, err := s.Authenticate(ctx, alice(), "right-password", "123456")
	if err != nil {
		t.Fatal(err)
	}
	// Within a few seconds of the last read an unknown version is
	// refused without asking Vault (forged versions cannot make every
	// request read the key)...
	reads := f.keyReads.Load()
	if _, err := s.Verify(ctx, v2.Token, "alice"); kindOf(err) != "required" {
		t.Fatalf("new version right after a read: %v", err)
	}
	if f.keyReads.Load() != reads {
		t.Fatal("an unknown version read the key again within seconds of the last read")
	}
	// ...after that it makes the verifier read the key again.
	now = now.Add(unknownVersionRefresh)
	if _, err := s.Verify(ctx, v2.Token, "alice"); err != nil {
		t.Fatalf("a token of the new key version: %v", err)
	}
	if _, err := s.Verify(ctx, v1.Token, "alice"); err != nil {
		t.Fatalf("a token of the old version before it is retired: %v", err)
	}
	f.minVersion = 2 // vault write transit/keys/reauth-signing/config min_decryption_version=2
	now = now.Add(KeyCacheTTL)
	if _, err := s.Verify(ctx, v1.Token, "alice"); kindOf(err) != "required" {
		t.Fatalf("a token of a retired version: %v", err)
	}
	if _, err := s.Verify(ctx, v2.Token, "alice"); err != nil {
		t.Fatalf("a token of the current version: %v", err)
	}
}

// TestOtherKeyTypesAreVerifiedByTransit: for a key that is not ed25519
// every signature goes to transit/verify.
func TestOtherKeyTypesAreVerifiedByTransit(t *testing.T) {
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	f.keyType = "ecdsa-p256"
	s := newService(t, f, a, c, 0)
	ctx := context.Background()
	tok, err := s.Authenticate(ctx, alice(), "right-password", "123456")
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Verify(ctx, tok.Token, "alice"); err != nil {
			t.Fatal(err)
		}
	}
	if f.verifies.Load() != 3 {
		t.Fatalf("%d transit/verify calls for 3 checks of an ecdsa-signed token, want 3", f.verifies.Load())
	}
}

func TestTTLBounds(t *testing.T) {
	for _, ttl := range []time.Duration{-time.Second, MaxTTL + time.Second} {
		if _, err := New(Config{Vault: newFakeVault(), TTL: ttl}); err == nil {
			t.Errorf("TTL %v accepted", ttl)
		}
	}
	f, a, c := newFakeVault(), &memAudit{}, newClock()
	s := newService(t, f, a, c, 20*time.Second)
	got, err := s.Authenticate(context.Background(), alice(), "right-password", "123456")
	if err != nil || got.Claims.ExpiresAt-got.Claims.IssuedAt != 20 {
		t.Fatalf("REAUTH_TTL=20s: %+v %v", got.Claims, err)
	}
}

func mustDecode(t *testing.T, s string) string {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestOnlyRealFailuresLock replays two attempts that overlap after two
// failures: one succeeds, one fails. Three failures in all: no lock.
func TestOnlyRealFailuresLock(t *testing.T) {
	f, c := newFakeVault(), newClock()
	a := attempts{vault: f, mount: "smtp-access"}
	ctx := context.Background()
	for range 2 {
		st, _, err := a.begin(ctx, "alice", c.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, _, _, _, err := a.fail(ctx, "alice", st, c.Now()); err != nil {
			t.Fatal(err)
		}
	}
	first, _, err1 := a.begin(ctx, "alice", c.Now())
	second, _, err2 := a.begin(ctx, "alice", c.Now())
	if err1 != nil || err2 != nil {
		t.Fatalf("two attempts within the limit: %v %v", err1, err2)
	}
	// A third one in flight would make five possible failures: refused,
	// but not locked.
	_, lockedNow, err := a.begin(ctx, "alice", c.Now())
	var re *Error
	if !errors.As(err, &re) || re.Kind != ErrLocked || re.Reason != "attempts_in_flight" || lockedNow || re.RetryAfter > 5*time.Second {
		t.Fatalf("attempt beyond the limit in flight: %v (locked now %v)", err, lockedNow)
	}
	if err := a.succeed(ctx, "alice", second, c.Now()); err != nil {
		t.Fatal(err)
	}
	n, lockedFor, _, _, err := a.fail(ctx, "alice", first, c.Now())
	if err != nil || n != 1 || lockedFor != 0 {
		t.Fatalf("after a success and a failure: %d failures, locked for %v, %v", n, lockedFor, err)
	}
}

// TestUnfinishedAttemptsCountAsFailed: an instance that crashed between
// asking Vault and recording the outcome leaves a pending attempt, which
// counts as failed once it is older than any function may run.
func TestUnfinishedAttemptsCountAsFailed(t *testing.T) {
	f, c := newFakeVault(), newClock()
	a := attempts{vault: f, mount: "smtp-access"}
	ctx := context.Background()
	for range MaxFailures + 1 {
		if _, _, err := a.begin(ctx, "alice", c.Now()); err != nil {
			t.Fatal(err)
		}
	}
	c.add(pendingTimeout + time.Second)
	_, lockedNow, err := a.begin(ctx, "alice", c.Now())
	if !errors.Is(err, ErrLocked) || !lockedNow {
		t.Fatalf("four abandoned attempts: %v, locked now %v", err, lockedNow)
	}
}
