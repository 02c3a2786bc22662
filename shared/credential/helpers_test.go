package credential_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/app"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/vault"
)

// clock is a test clock that only moves when told to.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock {
	c := &clock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *clock) Now() time.Time            { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration)   { c.ns.Add(int64(d)) }
func (c *clock) Set(t time.Time)           { c.ns.Store(t.UnixNano()) }
func (c *clock) Since(t time.Time) float64 { return c.Now().Sub(t).Hours() / 24 }

// faultVault is the real Vault client with per-tenant faults: when armed
// for a tenant, the n-th call (counting every method) touching that
// tenant fails with vault.ErrUnavailable before it reaches Vault.
type faultVault struct {
	credential.Vault
	mu    sync.Mutex
	armed map[string]*vaultFault
	calls atomic.Int64 // Read and Decrypt calls, for the sweep's no-secret check
}

type vaultFault struct {
	failAt, seen int
	fired        string
	// lose: a failing write is applied first and only its answer lost.
	lose bool
}

// loseResponse makes the armed fault of a tenant apply a write and then
// fail it, as a lost response would.
func (f *faultVault) loseResponse(tenant string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if v := f.armed[tenant]; v != nil {
		v.lose = true
	}
}

// losing says whether the next fault of the tenant loses a response.
func (f *faultVault) losing(tenant string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.armed[tenant]
	return v != nil && v.lose && v.seen+1 == v.failAt
}

func newFaultVault(v credential.Vault) *faultVault {
	return &faultVault{Vault: v, armed: map[string]*vaultFault{}}
}

func (f *faultVault) arm(tenant string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed[tenant] = &vaultFault{failAt: n}
}

// disarm stops the tenant's fault and says which call it failed, if any.
func (f *faultVault) disarm(tenant string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.armed[tenant]
	delete(f.armed, tenant)
	if v == nil {
		return ""
	}
	return v.fired
}

func (f *faultVault) fault(tenant, op string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.armed[tenant]
	if v == nil {
		return nil
	}
	v.seen++
	if v.seen == v.failAt {
		v.fired = op
		return fmt.Errorf("vault: %s: %w: injected fault", op, vault.ErrUnavailable)
	}
	return nil
}

func tenantOf(path string) string { t, _, _ := strings.Cut(path, "/"); return t }

func (f *faultVault) Read(ctx context.Context, path string) (*vault.Secret, error) {
	f.calls.Add(1)
	if err := f.fault(tenantOf(path), "read "+path); err != nil {
		return nil, err
	}
	return f.Vault.Read(ctx, path)
}

func (f *faultVault) WriteCAS(ctx context.Context, path string, data map[string]string, cas int) (int, error) {
	if f.losing(tenantOf(path)) {
		if _, err := f.Vault.WriteCAS(ctx, path, data, cas); err != nil {
			return 0, err
		}
	}
	if err := f.fault(tenantOf(path), "write "+path); err != nil {
		return 0, err
	}
	return f.Vault.WriteCAS(ctx, path, data, cas)
}

func (f *faultVault) PatchCustomMetadata(ctx context.Context, path string, md map[string]string) error {
	if err := f.fault(tenantOf(path), "patch metadata "+path); err != nil {
		return err
	}
	return f.Vault.PatchCustomMetadata(ctx, path, md)
}

func (f *faultVault) DataKey(ctx context.Context, key, tenant string) ([]byte, string, error) {
	if err := f.fault(tenant, "datakey"); err != nil {
		return nil, "", err
	}
	return f.Vault.DataKey(ctx, key, tenant)
}

func (f *faultVault) Decrypt(ctx context.Context, key, tenant, wrapped string) ([]byte, error) {
	f.calls.Add(1)
	if err := f.fault(tenant, "decrypt"); err != nil {
		return nil, err
	}
	return f.Vault.Decrypt(ctx, key, tenant, wrapped)
}

// faultAudit records to a stream, and fails for tenants it is armed for.
type faultAudit struct {
	rec   *audit.Recorder
	mu    sync.Mutex
	armed map[string]bool
}

func (a *faultAudit) Record(ctx context.Context, e audit.Event) error {
	a.mu.Lock()
	fail := a.armed[e.TenantID]
	a.mu.Unlock()
	if fail {
		return fmt.Errorf("%w: injected fault", audit.ErrNotRecorded)
	}
	return a.rec.Record(ctx, e)
}

func (a *faultAudit) set(tenant string, fail bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.armed[tenant] = fail
}

// env is an engine over a test stack's Vault and MailU stand-ins, wired
// as shared/app wires it but with a test clock, fault injection and hooks.
type env struct {
	stack    *devenv.TestStack
	clock    *clock
	vault    *faultVault
	audit    *faultAudit
	auditOut *devenv.SyncBuffer
	logOut   *devenv.SyncBuffer
	svc      *credential.Service
	cfg      credential.Config // svc's, for services that differ in one setting

	hookMu sync.Mutex
	hooks  map[string]credential.Hook // per tenant
}

// verifyLogin is the tests' own look at whether a password logs in.
func verifyLogin(ctx context.Context, addr, user, pass string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return mailu.VerifyLogin(ctx, addr, user, pass, nil)
}

func newEnv(t testing.TB, s *devenv.TestStack, cooldown time.Duration) *env {
	e := &env{
		stack:    s,
		clock:    newClock(time.Now()),
		vault:    newFaultVault(s.App.Vault),
		auditOut: &devenv.SyncBuffer{},
		logOut:   &devenv.SyncBuffer{},
		hooks:    map[string]credential.Hook{},
	}
	e.audit = &faultAudit{rec: audit.NewRecorder(e.clock.Now, audit.NewStreamSink(e.auditOut)), armed: map[string]bool{}}
	hc := &http.Client{Timeout: 10 * time.Second}
	e.cfg = credential.Config{
		Vault:      e.vault,
		TransitKey: s.App.Config.TransitKey,
		KVMount:    s.App.Config.KVMount,
		DialMailU: func(apiURL, token string) credential.MailU {
			return mailu.New(apiURL, token, hc)
		},
		// As the functions log in: TLS, checked against the front's CA.
		VerifyLogin: app.SMTPVerifier(10*time.Second, s.App.Config.MailURootCAs),
		Audit:       e.audit,
		Now:         e.clock.Now,
		Log:         slog.New(slog.NewJSONHandler(e.logOut, nil)),
		Cooldown:    cooldown,
		Hook: func(ctx context.Context, tenant string, at credential.Boundary) error {
			e.hookMu.Lock()
			h := e.hooks[tenant]
			e.hookMu.Unlock()
			if h == nil {
				return nil
			}
			return h(ctx, tenant, at)
		},
	}
	e.svc = credential.New(e.cfg)
	return e
}

// with returns a service over the same Vault, MailU and audit as e.svc,
// with the settings change applies.
func (e *env) with(change func(*credential.Config)) *credential.Service {
	cfg := e.cfg
	change(&cfg)
	return credential.New(cfg)
}

func (e *env) setHook(tenant string, h credential.Hook) {
	e.hookMu.Lock()
	defer e.hookMu.Unlock()
	e.hooks[tenant] = h
}

// current is the password Vault serves for a tenant (decrypted here).
func (e *env) current(t testing.TB, tenant string) (username, password string, rec *credential.Record) {
	t.Helper()
	ctx := context.Background()
	rec, err := e.svc.ReadRecord(ctx, tenant)
	if err != nil {
		t.Fatalf("read the record of %s: %v", tenant, err)
	}
	pw, err := e.svc.Open(ctx, tenant, credential.PasswordField, rec.Password, rec.DataKey)
	if err != nil {
		t.Fatalf("open the password of %s: %v", tenant, err)
	}
	return rec.Username, pw, rec
}

// seen collects plaintext passwords to look for in logs, audit records
// and notifications at the end of a test.
type seen struct {
	mu  sync.Mutex
	pws map[string]bool
}

func (s *seen) add(pw string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pws == nil {
		s.pws = map[string]bool{}
	}
	s.pws[pw] = true
}

func (s *seen) assertAbsent(t testing.TB, what, text string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for pw := range s.pws {
		if pw != "" && strings.Contains(text, pw) {
			t.Errorf("a plaintext password appears in %s", what)
			return
		}
	}
}

// newVPS starts another MailU (its own stand-in and Dovecot front), as a
// tenant's replaced VPS, with domain on it, and returns how to reach it
// and a service of e that trusts both fronts' CAs and allows endpoints on
// loopback.
func newVPS(t testing.TB, e *env, domain string) (devenv.MailUInstance, *credential.Service) {
	t.Helper()
	in := startVPS(t, domain, "new-vps-token")
	return in, e.with(func(c *credential.Config) {
		c.AllowedHosts = []string{"127.0.0.1"}
		c.VerifyLogin = vpsVerifier(t, e, in)
	})
}

// startVPS starts another MailU with domain on it, whose admin API takes
// token.
func startVPS(t testing.TB, domain, token string) devenv.MailUInstance {
	t.Helper()
	m := devenv.StartTestMailU(t, mailustandin.Options{})
	in, err := m.AddInstance(context.Background(), domain, token)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// vpsVerifier logs in as the functions do, trusting the stack's front and
// the fronts of vps.
func vpsVerifier(t testing.TB, e *env, vps ...devenv.MailUInstance) func(ctx context.Context, addr, user, pass string) error {
	t.Helper()
	pool := e.stack.App.Config.MailURootCAs.Clone()
	for _, in := range vps {
		pem, err := os.ReadFile(in.CAFile)
		if err != nil {
			t.Fatal(err)
		}
		if !pool.AppendCertsFromPEM(pem) {
			t.Fatal("no CA certificate in the new front's CA file")
		}
	}
	return app.SMTPVerifier(10*time.Second, pool)
}
