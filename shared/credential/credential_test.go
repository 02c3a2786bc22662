package credential_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/app"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/vault"
)

func TestValidateTenantID(t *testing.T) {
	cases := []struct {
		name, id string
		ok       bool
	}{
		{"v4 variant 8", "550e8400-e29b-41d4-8716-446655440000", true},
		{"v4 variant 9", "550e8400-e29b-41d4-9716-446655440000", true},
		{"v4 variant a", "550e8400-e29b-41d4-a716-446655440000", true},
		{"v4 variant b", "550e8400-e29b-41d4-b716-446655440000", true},
		{"uppercase", "550E8400-E29B-41D4-A716-446655440000", false},
		{"one uppercase digit", "550e8400-e29b-41d4-a716-44665544000A", false},
		{"v1", "550e8400-e29b-11d4-a716-446655440000", false},
		{"v3", "550e8400-e29b-31d4-a716-446655440000", false},
		{"v5", "550e8400-e29b-51d4-a716-446655440000", false},
		{"v7", "01890a5d-ac96-774b-bcce-b302099a8057", false},
		{"nil uuid", "00000000-0000-0000-0000-000000000000", false},
		{"variant 0 (NCS)", "550e8400-e29b-41d4-0716-446655440000", false},
		{"variant 7", "550e8400-e29b-41d4-7716-446655440000", false},
		{"variant c (Microsoft)", "550e8400-e29b-41d4-c716-446655440000", false},
		{"variant f", "550e8400-e29b-41d4-f716-446655440000", false},
		{"empty", "", false},
		{"braces", "{550e8400-e29b-41d4-a716-446655440000}", false},
		{"urn", "urn:uuid:550e8400-e29b-41d4-a716-446655440000", false},
		{"no hyphens", "550e8400e29b41d4a716446655440000", false},
		{"trailing newline", "550e8400-e29b-41d4-a716-446655440000\n", false},
		{"leading space", " 550e8400-e29b-41d4-a716-446655440000", false},
		{"too short", "550e8400-e29b-41d4-a716-44665544000", false},
		{"too long", "550e8400-e29b-41d4-a716-4466554400000", false},
		{"not hex", "550e8400-e29b-41d4-a716-44665544000g", false},
		{"path traversal", "../550e8400-e29b-41d4-a716-446655440000", false},
		{"with path", "550e8400-e29b-41d4-a716-446655440000/admin", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := credential.ValidateTenantID(c.id)
			if c.ok && err != nil {
				t.Fatalf("%q refused: %v", c.id, err)
			}
			if !c.ok && !errors.Is(err, credential.ErrInvalidInput) {
				t.Fatalf("%q: got %v, want ErrInvalidInput", c.id, err)
			}
		})
	}
}

func validInput() credential.StoreInput {
	return credential.StoreInput{
		TenantID:      "550e8400-e29b-41d4-a716-446655440000",
		Domain:        "tenant.example.com",
		WebmailURL:    "https://mail.tenant.example.com",
		MailUAPIURL:   "https://mail.tenant.example.com/api/v1",
		SMTPAddr:      "mail.tenant.example.com:587",
		MailUAPIToken: "tok-123",
	}
}

func TestStoreInputValidate(t *testing.T) {
	cases := []struct {
		name   string
		change func(*credential.StoreInput)
		ok     bool
	}{
		{"valid", func(*credential.StoreInput) {}, true},
		{"no token (later runs)", func(in *credential.StoreInput) { in.MailUAPIToken = "" }, true},
		{"loopback http mailu api", func(in *credential.StoreInput) { in.MailUAPIURL = "http://127.0.0.1:8080/api/v1" }, true},
		{"localhost http mailu api", func(in *credential.StoreInput) { in.MailUAPIURL = "http://localhost:8080/api/v1" }, true},
		{"ipv6 loopback http mailu api", func(in *credential.StoreInput) { in.MailUAPIURL = "http://[::1]:8080/api/v1" }, true},
		{"loopback smtp", func(in *credential.StoreInput) { in.SMTPAddr = "127.0.0.1:2525" }, true},
		{"implicit tls", func(in *credential.StoreInput) { in.SMTPAddr = "smtps://mail.tenant.example.com:465" }, true},
		{"starttls", func(in *credential.StoreInput) { in.SMTPAddr = "smtp://mail.tenant.example.com:587" }, true},
		{"token of 512", func(in *credential.StoreInput) { in.MailUAPIToken = strings.Repeat("a", 512) }, true},

		{"bad tenant", func(in *credential.StoreInput) { in.TenantID = "not-a-uuid" }, false},
		{"domain with space", func(in *credential.StoreInput) { in.Domain = "Bad Domain" }, false},
		{"uppercase domain", func(in *credential.StoreInput) { in.Domain = "Tenant.Example.com" }, false},
		{"domain without dot", func(in *credential.StoreInput) { in.Domain = "localhost" }, false},
		{"domain leading hyphen", func(in *credential.StoreInput) { in.Domain = "-tenant.example.com" }, false},
		{"domain empty label", func(in *credential.StoreInput) { in.Domain = "tenant..example.com" }, false},
		{"domain with slash", func(in *credential.StoreInput) { in.Domain = "tenant.example.com/x" }, false},
		{"empty domain", func(in *credential.StoreInput) { in.Domain = "" }, false},
		{"http webmail", func(in *credential.StoreInput) { in.WebmailURL = "http://mail.tenant.example.com" }, false},
		{"http loopback webmail", func(in *credential.StoreInput) { in.WebmailURL = "http://127.0.0.1:8080" }, false},
		{"webmail without scheme", func(in *credential.StoreInput) { in.WebmailURL = "mail.tenant.example.com" }, false},
		{"webmail javascript", func(in *credential.StoreInput) { in.WebmailURL = "javascript:alert(1)" }, false},
		{"webmail with userinfo", func(in *credential.StoreInput) { in.WebmailURL = "https://u:p@mail.tenant.example.com" }, false},
		{"http mailu api off loopback", func(in *credential.StoreInput) { in.MailUAPIURL = "http://mail.tenant.example.com/api/v1" }, false},
		{"http mailu api on a private address", func(in *credential.StoreInput) { in.MailUAPIURL = "http://10.0.0.5/api/v1" }, false},
		{"ftp mailu api", func(in *credential.StoreInput) { in.MailUAPIURL = "ftp://127.0.0.1/api" }, false},
		{"empty mailu api", func(in *credential.StoreInput) { in.MailUAPIURL = "" }, false},
		{"smtp without port", func(in *credential.StoreInput) { in.SMTPAddr = "mail.tenant.example.com" }, false},
		{"smtp without host", func(in *credential.StoreInput) { in.SMTPAddr = ":587" }, false},
		{"smtp empty port", func(in *credential.StoreInput) { in.SMTPAddr = "mail.tenant.example.com:" }, false},
		{"smtp other scheme", func(in *credential.StoreInput) { in.SMTPAddr = "https://mail.tenant.example.com:465" }, false},
		{"smtp with a path", func(in *credential.StoreInput) { in.SMTPAddr = "smtps://mail.tenant.example.com:465/x" }, false},
		{"smtp port out of range", func(in *credential.StoreInput) { in.SMTPAddr = "mail.tenant.example.com:70000" }, false},
		{"token with space", func(in *credential.StoreInput) { in.MailUAPIToken = "tok 123" }, false},
		{"token with tab", func(in *credential.StoreInput) { in.MailUAPIToken = "tok\t123" }, false},
		{"token with newline", func(in *credential.StoreInput) { in.MailUAPIToken = "tok-123\n" }, false},
		{"token of 513", func(in *credential.StoreInput) { in.MailUAPIToken = strings.Repeat("a", 513) }, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := validInput()
			c.change(&in)
			err := in.Validate()
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok && !errors.Is(err, credential.ErrInvalidInput) {
				t.Fatalf("got %v, want ErrInvalidInput", err)
			}
			if err != nil && in.MailUAPIToken != "" && strings.Contains(err.Error(), in.MailUAPIToken) {
				t.Fatal("the validation error echoes the MailU API token")
			}
		})
	}
}

func TestViewNeverShowsThePassword(t *testing.T) {
	const pw = "Zx9-very-secret-password-value"
	v := credential.View{TenantID: "550e8400-e29b-41d4-a716-446655440000", Username: "admin@tenant.example.com", Password: pw, WebmailURL: "https://mail.tenant.example.com"}
	assertNeverShown(t, pw, v.Username, v, &v)
	r := credential.ResetResult{TenantID: v.TenantID, IncidentID: "INC-1", Username: v.Username, Password: pw}
	assertNeverShown(t, pw, r.TenantID, r, &r)
}

// assertNeverShown formats v (and ptr, a pointer to it) every way a log
// line or an error could, and fails if pw shows; must, which every output
// names, proves the output is about v.
func assertNeverShown(t *testing.T, pw, must string, v, ptr any) {
	t.Helper()
	outputs := map[string]string{
		"String()": fmt.Sprint(v),
		"%v":       fmt.Sprintf("%v", v),
		"%+v":      fmt.Sprintf("%+v", v),
		"%s":       fmt.Sprintf("%s", v),
		"%#v":      fmt.Sprintf("%#v", v),
		"%v ptr":   fmt.Sprintf("%v", ptr),
		"%#v ptr":  fmt.Sprintf("%#v", ptr),
		"error":    fmt.Errorf("showing %v: %w", v, errors.New("x")).Error(),
	}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("value", "credential", v)
	log.Info("value ptr", "credential", ptr)
	log.Info("value attr", slog.Any("credential", v))
	log.With("credential", v).Info("with")
	outputs["slog json"] = buf.String()
	var tbuf bytes.Buffer
	slog.New(slog.NewTextHandler(&tbuf, nil)).Info("value", "credential", v)
	outputs["slog text"] = tbuf.String()
	for name, out := range outputs {
		if strings.Contains(out, pw) {
			t.Errorf("%T: %s shows the password: %s", v, name, out)
		}
		if !strings.Contains(out, must) {
			t.Errorf("%T: %s does not even name %s, so it proves nothing: %s", v, name, must, out)
		}
	}
}

// faultyVault is the real Vault client with one WriteCAS made to fail: the
// failAt-th write (counting from 1) is refused with vault.ErrUnavailable
// before it reaches Vault. It records the path of every write it sees.
type faultyVault struct {
	credential.Vault
	mu     sync.Mutex
	failAt int
	writes []string
}

func (f *faultyVault) WriteCAS(ctx context.Context, path string, data map[string]string, cas int) (int, error) {
	f.mu.Lock()
	f.writes = append(f.writes, path)
	n := len(f.writes)
	f.mu.Unlock()
	if n == f.failAt {
		return 0, fmt.Errorf("vault: write %s: %w: injected fault", path, vault.ErrUnavailable)
	}
	return f.Vault.WriteCAS(ctx, path, data, cas)
}

func (f *faultyVault) reset(failAt int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failAt, f.writes = failAt, nil
}

func (f *faultyVault) seen() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.writes...)
}

type harness struct {
	stack    *devenv.TestStack
	tenant   devenv.DemoTenant
	in       credential.StoreInput
	user     string
	vault    *faultyVault
	svc      *credential.Service
	auditOut *devenv.SyncBuffer
	logOut   *devenv.SyncBuffer
}

// newService wires a Service the way shared/app does, over v, with MailU
// reached through dial.
func newService(s *devenv.TestStack, v credential.Vault, dial func(apiURL, token string) credential.MailU, auditOut, logOut *devenv.SyncBuffer) *credential.Service {
	return credential.New(credential.Config{
		Vault:      v,
		TransitKey: s.App.Config.TransitKey,
		KVMount:    s.App.Config.KVMount,
		DialMailU:  dial,
		// As the functions log in: TLS, checked against the front's CA.
		VerifyLogin: app.SMTPVerifier(10*time.Second, s.App.Config.MailURootCAs),
		Audit:       audit.NewRecorder(nil, audit.NewStreamSink(auditOut)),
		Log:         slog.New(slog.NewJSONHandler(logOut, nil)),
	})
}

func dialMailU(apiURL, token string) credential.MailU {
	return mailu.New(apiURL, token, &http.Client{Timeout: 10 * time.Second})
}

func newHarness(t *testing.T) *harness {
	t.Helper()
	s := devenv.StartTestStack(t, 1)
	h := &harness{
		stack:    s,
		tenant:   s.Tenants[0],
		in:       s.StoreEvent(s.Tenants[0]),
		vault:    &faultyVault{Vault: s.App.Vault},
		auditOut: &devenv.SyncBuffer{},
		logOut:   &devenv.SyncBuffer{},
	}
	h.user = "admin@" + h.in.Domain
	h.svc = newService(s, h.vault, dialMailU, h.auditOut, h.logOut)
	return h
}

// forgetAdmin deletes the MailU admin, as a rebuilt VPS would: the stored
// password no longer logs in and the next Store must change it.
func (h *harness) forgetAdmin(t *testing.T) {
	t.Helper()
	if err := mailu.New(h.tenant.MailU.APIURL, h.tenant.MailUToken, nil).DeleteUser(context.Background(), h.user); err != nil {
		t.Fatalf("delete the MailU admin: %v", err)
	}
}

func (h *harness) adminRecord(t *testing.T) *vaultapi.KVSecret {
	t.Helper()
	sec, err := h.stack.Vault.Root().KVv2(devenv.KVMount).Get(context.Background(), credential.AdminPath(h.tenant.TenantID))
	if err != nil {
		t.Fatalf("read the admin record: %v", err)
	}
	return sec
}

// assertConsistent checks that Vault and MailU agree: the password Vault
// serves logs in over SMTP AUTH and no change is left pending.
func (h *harness) assertConsistent(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	v, err := h.svc.Retrieve(ctx, h.tenant.TenantID, credential.Actor{UserID: "test"})
	if err != nil {
		t.Fatalf("retrieve: %v", err)
	}
	if err := mailu.VerifyLogin(ctx, h.in.SMTPAddr, h.user, v.Password, nil); err != nil {
		t.Fatalf("the password Vault serves does not log in: %v", err)
	}
	if p, ok := h.adminRecord(t).Data["pending_password"]; ok {
		t.Fatalf("a pending password was left in the record: %v", p != nil)
	}
	return v.Password
}

func TestStoreSurvivesAFailedVaultWriteAtEveryPosition(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	actor := credential.Actor{UserID: "provisioning:test"}
	adminPath := credential.AdminPath(h.tenant.TenantID)

	// A healthy run that must change the password shows which writes a
	// Store makes.
	h.forgetAdmin(t)
	h.vault.reset(0)
	res, err := h.svc.Store(ctx, h.in, actor)
	if err != nil || res.Action != "replaced" {
		t.Fatalf("healthy store: %+v %v", res, err)
	}
	writes := h.vault.seen()
	promotion := -1
	adminWrites := 0
	for i, p := range writes {
		if p == adminPath {
			promotion = i + 1
			adminWrites++
		}
	}
	if adminWrites < 2 {
		t.Fatalf("writes %v: want a pending write before MailU is touched and a promotion after", writes)
	}
	pw := h.assertConsistent(t)
	t.Logf("writes of a changing store: %v (promotion is write %d)", writes, promotion)

	for pos := 1; pos <= len(writes); pos++ {
		t.Run(fmt.Sprintf("write %d of %d (%s)", pos, len(writes), writes[pos-1]), func(t *testing.T) {
			h.forgetAdmin(t)
			h.vault.reset(pos)
			res, err := h.svc.Store(ctx, h.in, actor)
			switch {
			case pos > promotion:
				if err != nil {
					t.Fatalf("store with write %d failing after promotion: %v", pos, err)
				}
			case err == nil:
				t.Fatalf("store succeeded although write %d (before promotion) failed: %+v", pos, res)
			case !errors.Is(err, credential.ErrUnavailable):
				t.Fatalf("store with write %d failing: %v, want ErrUnavailable", pos, err)
			}
			if got := h.vault.seen(); len(got) < pos {
				t.Fatalf("only %d writes happened, the fault at %d never fired", len(got), pos)
			}
			if err != nil && strings.Contains(err.Error(), pw) {
				t.Fatal("the error shows a password")
			}

			h.vault.reset(0)
			if _, err := h.svc.Store(ctx, h.in, actor); err != nil {
				t.Fatalf("store with a healthy Vault after the fault: %v", err)
			}
			newPW := h.assertConsistent(t)
			if newPW == pw {
				t.Fatal("the password was not changed although MailU lost the admin")
			}
			pw = newPW
		})
	}
	for _, out := range []string{h.auditOut.String(), h.logOut.String()} {
		if strings.Contains(out, pw) {
			t.Fatal("a password appears in the audit stream or the logs")
		}
	}
}

// gatedMailU holds every GetUser until open is closed, so the Store that
// took the lock is still inside it when the other one asks for it.
type gatedMailU struct {
	credential.MailU
	open  <-chan struct{}
	calls *int
	mu    *sync.Mutex
}

func (g gatedMailU) GetUser(ctx context.Context, email string) (mailu.User, error) {
	g.mu.Lock()
	*g.calls++
	g.mu.Unlock()
	select {
	case <-g.open:
	case <-ctx.Done():
		return mailu.User{}, ctx.Err()
	}
	return g.MailU.GetUser(ctx, email)
}

func TestConcurrentStoresOfOneTenantConflict(t *testing.T) {
	h := newHarness(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	h.forgetAdmin(t)
	if err := h.stack.MailU.SetFaults(ctx, h.in.Domain, mailustandin.Faults{Delay: 200 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	open := make(chan struct{})
	var mu sync.Mutex
	calls := 0
	svc := newService(h.stack, h.stack.App.Vault, func(apiURL, token string) credential.MailU {
		return gatedMailU{MailU: dialMailU(apiURL, token), open: open, calls: &calls, mu: &mu}
	}, h.auditOut, h.logOut)

	errs := make(chan error, 2)
	start := make(chan struct{})
	var once sync.Once
	for i := 0; i < 2; i++ {
		go func() {
			<-start
			_, err := svc.Store(ctx, h.in, credential.Actor{UserID: fmt.Sprint("racer-", i)})
			once.Do(func() { close(open) }) // the first to finish lets the other go on
			errs <- err
		}()
	}
	close(start)
	var ok, conflict int
	for i := 0; i < 2; i++ {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case errors.Is(err, credential.ErrConflict):
			conflict++
		default:
			t.Errorf("racing store: %v", err)
		}
	}
	if ok != 1 || conflict != 1 {
		t.Fatalf("racing stores: %d succeeded, %d conflicted; want 1 and 1", ok, conflict)
	}
	mu.Lock()
	if calls != 1 {
		t.Errorf("MailU was asked %d times; the refused store must stop at the lock", calls)
	}
	mu.Unlock()
	if err := h.stack.MailU.SetFaults(ctx, h.in.Domain, mailustandin.Faults{}); err != nil {
		t.Fatal(err)
	}
	h.assertConsistent(t)
}

func TestLockOfACrashedHolderDoesNotBlock(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	kv := h.stack.Vault.Root().KVv2(devenv.KVMount)
	lockPath := credential.LockPath(h.tenant.TenantID)
	writeLock := func(t *testing.T, expires time.Time) {
		t.Helper()
		md, err := kv.GetMetadata(ctx, lockPath)
		if err != nil {
			t.Fatalf("the seeding store left no lock record: %v", err)
		}
		if _, err := kv.Put(ctx, lockPath, map[string]any{
			"owner":      "crashed-run",
			"purpose":    "store",
			"expires_at": expires.UTC().Format(time.RFC3339Nano),
		}, vaultapi.WithCheckAndSet(md.CurrentVersion)); err != nil {
			t.Fatal(err)
		}
	}
	h.forgetAdmin(t)
	before := h.adminRecord(t).VersionMetadata.Version

	// A live holder blocks, and the refused store changes nothing.
	writeLock(t, time.Now().Add(time.Hour))
	if _, err := h.svc.Store(ctx, h.in, credential.Actor{}); !errors.Is(err, credential.ErrConflict) {
		t.Fatalf("store under a live lock: %v, want ErrConflict", err)
	}
	if v := h.adminRecord(t).VersionMetadata.Version; v != before {
		t.Fatalf("a store refused by the lock wrote the credential: version %d -> %d", before, v)
	}

	// The holder crashed: its lock expired and is overtaken.
	writeLock(t, time.Now().Add(-time.Minute))
	res, err := h.svc.Store(ctx, h.in, credential.Actor{})
	if err != nil || res.Action != "replaced" {
		t.Fatalf("store after the holder's lock expired: %+v %v", res, err)
	}
	h.assertConsistent(t)
	sec, err := kv.Get(ctx, lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if sec.Data["owner"] == "crashed-run" || sec.Data["released"] != "true" {
		t.Fatalf("lock after the store: %v; want it taken over and released", sec.Data)
	}
	// Released means the next store goes ahead at once.
	if _, err := h.svc.Store(ctx, h.in, credential.Actor{}); err != nil {
		t.Fatalf("store after a released lock: %v", err)
	}
	// Even when the instance that released it has a clock ahead of ours:
	// a release stamps its own time, and a released lock is free.
	md, err := kv.GetMetadata(ctx, lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, lockPath, map[string]any{
		"owner": "fast-clock", "purpose": "store", "released": "true",
		"expires_at": time.Now().Add(5 * time.Minute).UTC().Format(time.RFC3339Nano),
	}, vaultapi.WithCheckAndSet(md.CurrentVersion)); err != nil {
		t.Fatal(err)
	}
	h.forgetAdmin(t)
	if _, err := h.svc.Store(ctx, h.in, credential.Actor{}); err != nil {
		t.Fatalf("store after a lock released by a clock ahead of ours: %v", err)
	}
}
