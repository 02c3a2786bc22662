package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"smtp-vault/scripts/devenv/devissuer"
	"strings"
	"sync"
	"testing"
	"time"

	"smtp-vault/infra/openapi"
	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
)

// These tests drive the whole system as a client would: HTTP through the
// local gateway (API Gateway events, JWT authorizer), the Lambda handlers,
// the real Vault and the MailU stand-ins with their SMTP AUTH listeners.

type response struct {
	Status int
	Body   map[string]any
	Raw    string
	Header http.Header
}

func (r response) code() string {
	e, _ := r.Body["error"].(map[string]any)
	c, _ := e["code"].(string)
	return c
}

func do(t *testing.T, s *devenv.TestStack, method, path, token string, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.APIURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if rt, ok := reauthOf.Load(token); ok && req.Header.Get("X-Reauth-Token") == "" {
		req.Header.Set("X-Reauth-Token", rt.(string))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{Status: resp.StatusCode, Raw: string(raw), Header: resp.Header}
	_ = json.Unmarshal(raw, &r.Body)
	checkContract(t, method, path, r.Status, resp.Header, raw)
	return r
}

// checkContract validates every real answer against docs/openapi.yaml,
// except the gateway's own answers to paths the API does not have.
func checkContract(t *testing.T, method, path string, status int, header http.Header, raw []byte) {
	t.Helper()
	if method == http.MethodOptions || (status == http.StatusNotFound && !strings.HasPrefix(path, "/api/v1/platform-admin/")) || path == "/api/v1/nothing" {
		return
	}
	openapi.ValidateResponse(t, method, path, status, header, raw)
}

// Sessions of re-authenticated demo users: token returns the bearer token
// of the demo user holding role, after re-authenticating them once per
// stack, and do sends their re-auth token along with that bearer token,
// as the console would. Tests of the access rules themselves send headers
// explicitly (access_test.go).
var (
	sessionOf sync.Map // "<stack>/<role>" -> bearer token
	reauthOf  sync.Map // bearer token -> re-auth token
)

func token(t *testing.T, s *devenv.TestStack, role auth.Role) string {
	t.Helper()
	// Keyed by the stack's own folder: a pointer could be reused by a
	// later test's stack, whose issuer would not know the cached token.
	key := s.Dir + "/" + string(role)
	if b, ok := sessionOf.Load(key); ok {
		return b.(string)
	}
	bearer, rt, err := s.ReauthAs(role)
	if err != nil {
		t.Fatal(err)
	}
	reauthOf.Store(bearer, rt)
	sessionOf.Store(key, bearer)
	return bearer
}

func credPath(tenant string) string {
	return "/api/v1/platform-admin/tenants/" + tenant + "/smtp-credentials"
}

// seen collects every plaintext password a test handled, to search the
// logs and audit records for them at the end.
type seen struct {
	mu  sync.Mutex
	pws []string
}

func (s *seen) add(pw string) { s.mu.Lock(); s.pws = append(s.pws, pw); s.mu.Unlock() }

func (s *seen) assertAbsent(t *testing.T, what, text string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, pw := range s.pws {
		if pw != "" && strings.Contains(text, pw) {
			t.Errorf("a plaintext password appears in %s", what)
		}
	}
}

func TestRetrieveReturnsAPasswordThatLogsIn(t *testing.T) {
	s := devenv.StartTestStack(t, 2)
	var pws seen
	defer func() {
		pws.assertAbsent(t, "the audit stream", s.AuditLog.String())
		pws.assertAbsent(t, "the function logs", s.Log.String())
		pws.assertAbsent(t, "the Vault audit log", readFile(t, filepath.Join(s.Vault.Dir, "vault-audit.log")))
		pws.assertAbsent(t, "the audit bucket", s.S3.BucketText(t, devenv.AuditBucket))
		notes, _ := json.Marshal(s.Notifications.Messages())
		pws.assertAbsent(t, "the notifications", string(notes))
	}()
	ctx := context.Background()
	for _, role := range []auth.Role{auth.RoleSupport, auth.RolePlatformAdmin} {
		for _, tn := range s.Tenants {
			r := do(t, s, "GET", credPath(tn.TenantID), token(t, s, role), "", "User-Agent", "e2e-test")
			if r.Status != 200 {
				t.Fatalf("retrieve as %s: %d %s", role, r.Status, r.Raw)
			}
			pw, _ := r.Body["password"].(string)
			pws.add(pw)
			if r.Body["username"] != "admin@"+tn.Domain || r.Body["webmail_url"] != "https://mail."+tn.Domain {
				t.Fatalf("retrieve: unexpected body fields %v", r.Body)
			}
			if len(pw) != 44 {
				t.Fatalf("password length %d, want 44 (32 random bytes, base64)", len(pw))
			}
			last, err1 := time.Parse(time.RFC3339, r.Body["last_rotated"].(string))
			next, err2 := time.Parse(time.RFC3339, r.Body["next_rotation"].(string))
			if err1 != nil || err2 != nil || next.Sub(last) != 180*24*time.Hour {
				t.Fatalf("last_rotated/next_rotation: %v %v", r.Body["last_rotated"], r.Body["next_rotation"])
			}
			if r.Header.Get("Cache-Control") != "no-store" {
				t.Fatal("a credential response may be cached")
			}
			if exp, err := time.Parse(time.RFC3339, r.Body["expires_at"].(string)); err != nil || time.Until(exp) <= 0 || time.Until(exp) > 15*time.Minute {
				t.Fatalf("expires_at %v is not when the re-auth token runs out", r.Body["expires_at"])
			}
			if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, "admin@"+tn.Domain, pw, nil); err != nil {
				t.Fatalf("SMTP AUTH with the retrieved password: %v", err)
			}
			if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, "admin@"+tn.Domain, pw+"x", nil); !errors.Is(err, mailu.ErrAuthFailed) {
				t.Fatalf("SMTP AUTH with a wrong password: got %v, want ErrAuthFailed", err)
			}
			// What Vault holds is ciphertext in the seed's layout, with a
			// wrapped data key: no plaintext.
			sec, err := s.Vault.Root().KVv2("smtp").Get(ctx, tn.TenantID+"/admin")
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(sec.Data)
			if strings.Contains(string(raw), pw) {
				t.Fatal("Vault holds the plaintext password")
			}
			ct, err := base64.StdEncoding.DecodeString(sec.Data["password"].(string))
			if err != nil || len(ct) != 16+16+44 {
				t.Fatalf("stored password is not base64(IV||tag||ct): len %d, %v", len(ct), err)
			}
			if !strings.HasPrefix(sec.Data["data_key"].(string), "vault:v") {
				t.Fatal("no wrapped data key next to the ciphertext")
			}
		}
	}
	// The access is audited with user, IP and user agent.
	if !strings.Contains(s.AuditLog.String(), `"event":"smtp_credentials_accessed"`) ||
		!strings.Contains(s.AuditLog.String(), `"user_agent":"e2e-test"`) ||
		!strings.Contains(s.AuditLog.String(), `"ip":"127.0.0.1"`) {
		t.Fatalf("no complete smtp_credentials_accessed event in the audit stream")
	}
}

func TestBadInputAndAuth(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	tn := s.Tenants[0]
	support := token(t, s, auth.RoleSupport)
	admin := token(t, s, auth.RolePlatformAdmin)
	other, err := devissuer.LoadOrCreateDevIssuer(filepath.Join(t.TempDir(), "k.jwk"), s.APIURL, devenv.Audience)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.Sign("alice", []auth.Role{auth.RolePlatformAdmin}, time.Hour)
	expired := signExpired(t, s)
	storeBody := `{"domain":"` + tn.Domain + `","webmail_url":"https://mail.` + tn.Domain + `","mailu_api_url":"` + tn.MailU.APIURL + `","smtp_addr":"` + tn.MailU.SMTPAddr + `"}`
	cases := []struct {
		name, method, path, token, body string
		status                          int
		code                            string
	}{
		{"no token", "GET", credPath(tn.TenantID), "", "", 401, "unauthenticated"},
		{"forged token", "GET", credPath(tn.TenantID), forged, "", 401, "unauthenticated"},
		{"expired token", "GET", credPath(tn.TenantID), expired, "", 401, "unauthenticated"},
		{"garbage token", "GET", credPath(tn.TenantID), "not.a.jwt", "", 401, "unauthenticated"},
		{"uppercase uuid", "GET", credPath(strings.ToUpper(tn.TenantID)), support, "", 400, "invalid_request"},
		{"uuid v1", "GET", credPath("550e8400-e29b-11d4-a716-446655440000"), support, "", 400, "invalid_request"},
		{"dot segment", "GET", credPath("%2e%2e"), support, "", 400, "invalid_request"},
		{"unknown tenant", "GET", credPath("0b9e1b2c-7f3a-4d5e-9c8b-1a2b3c4d5e6f"), support, "", 404, "not_found"},
		{"support may not store", "POST", credPath(tn.TenantID), support, storeBody, 403, "forbidden"},
		{"store unknown field", "POST", credPath(tn.TenantID), admin, `{"domain":"a.example.com","password":"x"}`, 400, "unknown_field"},
		{"store wrong type", "POST", credPath(tn.TenantID), admin, `{"domain":42}`, 422, "invalid_field"},
		{"store not json", "POST", credPath(tn.TenantID), admin, `domain=x`, 400, "invalid_json"},
		{"store two objects", "POST", credPath(tn.TenantID), admin, `{} {}`, 400, "invalid_json"},
		{"store too large", "POST", credPath(tn.TenantID), admin, `{"domain":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "body_too_large"},
		{"store http webmail", "POST", credPath(tn.TenantID), admin, strings.Replace(storeBody, "https://mail.", "http://mail.", 1), 400, "invalid_request"},
		{"store bad domain", "POST", credPath(tn.TenantID), admin, strings.Replace(storeBody, `"domain":"`, `"domain":"Bad Domain`, 1), 400, "invalid_request"},
		{"store bad tenant", "POST", credPath("not-a-uuid"), admin, storeBody, 400, "invalid_request"},
		{"unknown route", "GET", "/api/v1/nothing", admin, "", 404, "not_found"},
		{"reset without an incident", "POST", credPath(tn.TenantID) + "/emergency-reset", admin, `{"incident_id":"x","reason":"x"}`, 422, "incident_id_required"},
		{"rotation right after the store", "POST", credPath(tn.TenantID) + "/rotate", admin, `{"reason":"x"}`, 409, "rotation_cooldown"},
		{"rotation without a reason", "POST", credPath(tn.TenantID) + "/rotate", admin, `{}`, 400, "reason_required"},
	}
	before := versionOf(t, s, tn.TenantID)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := do(t, s, c.method, c.path, c.token, c.body)
			if r.Status != c.status || r.code() != c.code {
				t.Fatalf("got %d %q, want %d %q: %s", r.Status, r.code(), c.status, c.code, r.Raw)
			}
			if m, _ := r.Body["error"].(map[string]any)["message"].(string); m == "" {
				t.Fatal("error without a message")
			}
		})
	}
	if after := versionOf(t, s, tn.TenantID); after != before {
		t.Fatalf("bad requests changed the credential: version %d -> %d", before, after)
	}
	for _, ev := range []string{`"event":"authorization_denied"`, `"event":"request_rejected"`} {
		if !strings.Contains(s.AuditLog.String(), ev) {
			t.Errorf("no %s event for the refused requests", ev)
		}
	}
}

func TestStoreIsIdempotentAndRepairs(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	ctx := context.Background()
	admin := token(t, s, auth.RolePlatformAdmin)
	support := token(t, s, auth.RoleSupport)
	tn := s.Tenants[0]
	in := s.StoreEvent(tn)
	body := func(webmail string) string {
		b, _ := json.Marshal(map[string]string{"domain": in.Domain, "webmail_url": webmail, "mailu_api_url": in.MailUAPIURL, "smtp_addr": in.SMTPAddr})
		return string(b)
	}
	pw1 := do(t, s, "GET", credPath(tn.TenantID), support, "").Body["password"]

	r := do(t, s, "POST", credPath(tn.TenantID), admin, body(in.WebmailURL))
	if r.Status != 200 || r.Body["action"] != "unchanged" {
		t.Fatalf("re-store: %d %s", r.Status, r.Raw)
	}
	if _, ok := r.Body["password"]; ok {
		t.Fatal("store response carries a password")
	}
	// A store that changes nothing is still audited, with who asked.
	unchanged := 0
	for _, rec := range chainRecords(t, s, tn.TenantID) {
		if rec.Event.Event == audit.CredentialsStored && rec.Event.Details["action"] == "unchanged" && rec.Event.UserID == s.UserWithRole(auth.RolePlatformAdmin) {
			unchanged++
		}
	}
	if unchanged != 1 {
		t.Fatalf("%d audit records of the unchanged store in the bucket, want 1", unchanged)
	}
	r = do(t, s, "POST", credPath(tn.TenantID), admin, body("https://webmail."+in.Domain))
	if r.Status != 200 || r.Body["action"] != "updated" {
		t.Fatalf("store with a new webmail_url: %d %s", r.Status, r.Raw)
	}
	got := do(t, s, "GET", credPath(tn.TenantID), support, "")
	if got.Body["password"] != pw1 || got.Body["webmail_url"] != "https://webmail."+in.Domain {
		t.Fatalf("after update: password kept=%v webmail=%v", got.Body["password"] == pw1, got.Body["webmail_url"])
	}

	// MailU lost its admin (a rebuilt VPS): store replaces the password.
	mc := mailu.New(tn.MailU.APIURL, tn.MailUToken, nil)
	if err := mc.DeleteUser(ctx, "admin@"+in.Domain); err != nil {
		t.Fatal(err)
	}
	r = do(t, s, "POST", credPath(tn.TenantID), admin, body(in.WebmailURL))
	if r.Status != 200 || r.Body["action"] != "replaced" {
		t.Fatalf("store after MailU lost the admin: %d %s", r.Status, r.Raw)
	}
	pw2, _ := do(t, s, "GET", credPath(tn.TenantID), support, "").Body["password"].(string)
	if pw2 == pw1 {
		t.Fatal("password not replaced")
	}
	if err := mailu.VerifyLogin(ctx, in.SMTPAddr, "admin@"+in.Domain, pw2, nil); err != nil {
		t.Fatalf("replaced password does not log in: %v", err)
	}

	// A new tenant through the API: 201 created, then retrievable.
	m2, err := s.MailUHost.AddInstance(ctx, "new.example.test", "tok-new-tenant")
	if err != nil {
		t.Fatal(err)
	}
	newID := "3f2b7c1e-9d4a-4b8e-a1c2-d3e4f5a6b7c8"
	nb, _ := json.Marshal(map[string]string{"domain": "new.example.test", "webmail_url": "https://mail.new.example.test", "mailu_api_url": m2.APIURL, "smtp_addr": m2.SMTPAddr, "mailu_api_token": "tok-new-tenant"})
	r = do(t, s, "POST", credPath(newID), admin, string(nb))
	if r.Status != 201 || r.Body["action"] != "created" {
		t.Fatalf("store a new tenant: %d %s", r.Status, r.Raw)
	}
	pw3, _ := do(t, s, "GET", credPath(newID), support, "").Body["password"].(string)
	if err := mailu.VerifyLogin(ctx, m2.SMTPAddr, "admin@new.example.test", pw3, nil); err != nil {
		t.Fatalf("new tenant's password does not log in: %v", err)
	}
	// A new tenant without a MailU token is refused before anything runs.
	nb2, _ := json.Marshal(map[string]string{"domain": "new.example.test", "webmail_url": "https://mail.new.example.test", "mailu_api_url": m2.APIURL, "smtp_addr": m2.SMTPAddr})
	if r := do(t, s, "POST", credPath("9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"), admin, string(nb2)); r.Status != 400 {
		t.Fatalf("new tenant without token: %d %s", r.Status, r.Raw)
	}
	if !strings.Contains(s.AuditLog.String(), `"event":"smtp_credentials_stored"`) {
		t.Fatal("no smtp_credentials_stored event")
	}
}

func TestFaultsLoseNothing(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	ctx := context.Background()
	admin := token(t, s, auth.RolePlatformAdmin)
	support := token(t, s, auth.RoleSupport)
	tn := s.Tenants[0]
	in := s.StoreEvent(tn)
	user := "admin@" + in.Domain
	pw1, _ := do(t, s, "GET", credPath(tn.TenantID), support, "").Body["password"].(string)
	mc := mailu.New(tn.MailU.APIURL, tn.MailUToken, nil)
	storeBody, _ := json.Marshal(map[string]string{"domain": in.Domain, "webmail_url": in.WebmailURL, "mailu_api_url": in.MailUAPIURL, "smtp_addr": in.SMTPAddr})

	// MailU down: store answers 503 and nothing changes.
	if err := s.MailU.SetFaults(ctx, in.Domain, mailustandin.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	v := versionOf(t, s, tn.TenantID)
	if r := do(t, s, "POST", credPath(tn.TenantID), admin, string(storeBody)); r.Status != 503 || r.code() != "upstream_unavailable" {
		t.Fatalf("store with MailU down: %d %s", r.Status, r.Raw)
	}
	if versionOf(t, s, tn.TenantID) != v {
		t.Fatal("store with MailU down wrote to Vault")
	}
	_ = s.MailU.SetFaults(ctx, in.Domain, mailustandin.Faults{})

	// MailU loses the admin, then fails after the pending password is
	// recorded: the next store run finishes the change.
	if err := mc.DeleteUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	if err := s.MailU.SetFaults(ctx, in.Domain, mailustandin.Faults{RejectAPI: true}); err != nil {
		t.Fatal(err)
	}
	if r := do(t, s, "POST", credPath(tn.TenantID), admin, string(storeBody)); r.Status < 500 {
		t.Fatalf("store with MailU rejecting writes: %d %s", r.Status, r.Raw)
	}
	sec, err := s.Vault.Root().KVv2("smtp").Get(ctx, tn.TenantID+"/admin")
	if err != nil || sec.Data["pending_password"] == nil {
		t.Fatalf("the pending password was not recorded before MailU was called: %v", err)
	}
	// Readers still get the current password meanwhile.
	if r := do(t, s, "GET", credPath(tn.TenantID), support, ""); r.Body["password"] != pw1 {
		t.Fatal("retrieve during a pending change did not serve the current password")
	}
	_ = s.MailU.SetFaults(ctx, in.Domain, mailustandin.Faults{})
	r := do(t, s, "POST", credPath(tn.TenantID), admin, string(storeBody))
	if r.Status != 200 {
		t.Fatalf("store after MailU recovered: %d %s", r.Status, r.Raw)
	}
	pw2, _ := do(t, s, "GET", credPath(tn.TenantID), support, "").Body["password"].(string)
	if err := mailu.VerifyLogin(ctx, in.SMTPAddr, user, pw2, nil); err != nil {
		t.Fatalf("after recovery the served password does not log in: %v", err)
	}
	sec, _ = s.Vault.Root().KVv2("smtp").Get(ctx, tn.TenantID+"/admin")
	if sec.Data["pending_password"] != nil {
		t.Fatal("a pending password was left behind")
	}

	// MailU applies the new password but the answer is lost (a crash right
	// after setSecret): Vault still records it as pending, and the next run
	// sees that MailU accepts it and promotes it.
	if err := mc.SetPassword(ctx, user, "drifted-"+pw2); err != nil {
		t.Fatal(err)
	}
	if err := s.MailU.SetFaults(ctx, in.Domain, mailustandin.Faults{DropNextWriteResponses: 1}); err != nil {
		t.Fatal(err)
	}
	if r := do(t, s, "POST", credPath(tn.TenantID), admin, string(storeBody)); r.Status != 503 {
		t.Fatalf("store with the MailU answer lost: %d %s", r.Status, r.Raw)
	}
	_ = s.MailU.SetFaults(ctx, in.Domain, mailustandin.Faults{})
	if r := do(t, s, "POST", credPath(tn.TenantID), admin, string(storeBody)); r.Status != 200 || r.Body["action"] != "unchanged" {
		t.Fatalf("store after a lost MailU answer: %d %s", r.Status, r.Raw)
	}
	pw2, _ = do(t, s, "GET", credPath(tn.TenantID), support, "").Body["password"].(string)
	if err := mailu.VerifyLogin(ctx, in.SMTPAddr, user, pw2, nil); err != nil {
		t.Fatalf("the promoted pending password does not log in: %v", err)
	}
	if !strings.Contains(s.AuditLog.String(), `"resumed":true`) {
		t.Fatal("finishing an interrupted change was not audited as resumed")
	}

	// Vault sealed: retrieve and store answer 503 and nothing is lost.
	v = versionOf(t, s, tn.TenantID)
	if err := s.Vault.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if r := do(t, s, "GET", credPath(tn.TenantID), support, ""); r.Status != 503 || r.Body["password"] != nil {
		t.Fatalf("retrieve with Vault sealed: %d %s", r.Status, r.Raw)
	}
	if r := do(t, s, "POST", credPath(tn.TenantID), admin, string(storeBody)); r.Status != 503 {
		t.Fatalf("store with Vault sealed: %d %s", r.Status, r.Raw)
	}
	if err := s.Vault.Unseal(ctx); err != nil {
		t.Fatal(err)
	}
	if versionOf(t, s, tn.TenantID) != v {
		t.Fatal("requests against a sealed Vault changed the credential")
	}
	if r := do(t, s, "GET", credPath(tn.TenantID), support, ""); r.Status != 200 || r.Body["password"] != pw2 {
		t.Fatalf("after unseal: %d", r.Status)
	}
}

// TestStoreKeepsTheTenantsDomain: the hosts a tenant's endpoints may move
// to are those under its domain, so a store naming another domain must not
// choose its own allow-list. A platform-admin's store (with any MailU
// token) that names a domain of its choosing, with endpoints under it, is
// refused before anything is called: the tenant keeps its record, its
// password and its MailU.
func TestStoreKeepsTheTenantsDomain(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	admin := token(t, s, auth.RolePlatformAdmin)
	support := token(t, s, auth.RoleSupport)
	tn := s.Tenants[0]
	in := s.StoreEvent(tn)
	before := do(t, s, "GET", credPath(tn.TenantID), support, "")
	changes := func() int {
		n := 0
		for _, rec := range chainRecords(t, s, tn.TenantID) {
			if rec.Event.Event == audit.EndpointChanged || rec.Event.Event == audit.CredentialsStored {
				n++
			}
		}
		return n
	}
	seeded := changes()
	for name, body := range map[string]map[string]string{
		"move to a host under a domain of the caller's choosing": {
			"domain": "evil.example.test", "webmail_url": "https://mail.evil.example.test",
			"mailu_api_url": "https://mail.evil.example.test/api/v1", "smtp_addr": "mail.evil.example.test:465",
			"mailu_api_token": "attacker-token",
		},
		"another domain at the same endpoints": {
			"domain": "evil.example.test", "webmail_url": in.WebmailURL, "mailu_api_url": in.MailUAPIURL, "smtp_addr": in.SMTPAddr,
		},
	} {
		t.Run(name, func(t *testing.T) {
			b, _ := json.Marshal(body)
			r := do(t, s, "POST", credPath(tn.TenantID), admin, string(b))
			if r.Status != 400 || r.code() != "invalid_request" || !strings.Contains(r.Raw, "domain") {
				t.Fatalf("store naming another domain: %d %s", r.Status, r.Raw)
			}
			after := do(t, s, "GET", credPath(tn.TenantID), support, "")
			for _, f := range []string{"username", "password", "webmail_url", "last_rotated"} {
				if after.Body[f] != before.Body[f] {
					t.Fatalf("%s changed: %v -> %v", f, before.Body[f], after.Body[f])
				}
			}
		})
	}
	if n := changes(); n != seeded {
		t.Fatalf("%d store and endpoint records after the refused stores, %d before", n, seeded)
	}
	if err := mailu.VerifyLogin(context.Background(), in.SMTPAddr, before.Body["username"].(string), before.Body["password"].(string), nil); err != nil {
		t.Fatalf("the tenant's password no longer logs in at its MailU: %v", err)
	}
}

func TestConcurrentStoresOfOneTenant(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	admin := token(t, s, auth.RolePlatformAdmin)
	tn := s.Tenants[0]
	in := s.StoreEvent(tn)
	// Make every run change the password: MailU forgot the admin.
	if err := mailu.New(tn.MailU.APIURL, tn.MailUToken, nil).DeleteUser(context.Background(), "admin@"+in.Domain); err != nil {
		t.Fatal(err)
	}
	_ = s.MailU.SetFaults(context.Background(), in.Domain, mailustandin.Faults{Delay: 300 * time.Millisecond})
	body, _ := json.Marshal(map[string]string{"domain": in.Domain, "webmail_url": in.WebmailURL, "mailu_api_url": in.MailUAPIURL, "smtp_addr": in.SMTPAddr})
	var wg sync.WaitGroup
	statuses := make([]int, 4)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			statuses[i] = do(t, s, "POST", credPath(tn.TenantID), admin, string(body)).Status
		}()
	}
	wg.Wait()
	_ = s.MailU.SetFaults(context.Background(), in.Domain, mailustandin.Faults{})
	ok, conflict := 0, 0
	for _, st := range statuses {
		switch st {
		case 200:
			ok++
		case 409:
			conflict++
		default:
			t.Fatalf("concurrent store: unexpected status %d", st)
		}
	}
	if ok < 1 || conflict < 1 {
		t.Fatalf("concurrent stores: %d succeeded, %d conflicted; want one change and the rest refused", ok, conflict)
	}
	pw, _ := do(t, s, "GET", credPath(tn.TenantID), token(t, s, auth.RoleSupport), "").Body["password"].(string)
	if err := mailu.VerifyLogin(context.Background(), in.SMTPAddr, "admin@"+in.Domain, pw, nil); err != nil {
		t.Fatalf("after concurrent stores the served password does not log in: %v", err)
	}
}

func TestDirectStoreInvocation(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	ctx := context.Background()
	m, err := s.MailUHost.AddInstance(ctx, "direct.example.test", "tok-direct")
	if err != nil {
		t.Fatal(err)
	}
	id := "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	ev, _ := json.Marshal(map[string]string{"tenant_id": id, "domain": "direct.example.test", "webmail_url": "https://mail.direct.example.test", "mailu_api_url": m.APIURL, "smtp_addr": m.SMTPAddr, "mailu_api_token": "tok-direct", "requested_by": "provisioner"})
	out, err := s.Gateway.Invoke(ctx, "store", ev)
	if err != nil {
		t.Fatalf("direct store: %v", err)
	}
	var res credential.StoreResult
	if err := json.Unmarshal(out, &res); err != nil || res.Action != "created" || res.Username != "admin@direct.example.test" {
		t.Fatalf("direct store result: %s %v", out, err)
	}
	if strings.Contains(string(out), "password") {
		t.Fatal("direct store result mentions a password")
	}
	// Bad input by direct invocation is an error and writes nothing.
	bad, _ := json.Marshal(map[string]string{"tenant_id": "NOT-A-UUID", "domain": "x.example.test"})
	if _, err := s.Gateway.Invoke(ctx, "store", bad); err == nil || !strings.Contains(err.Error(), "invalid") {
		t.Fatalf("direct store with a bad tenant id: %v", err)
	}
	if !strings.Contains(s.AuditLog.String(), `"user_id":"provisioning:provisioner"`) {
		t.Fatal("direct store not audited with its requester")
	}
}

func signExpired(t *testing.T, s *devenv.TestStack) string {
	t.Helper()
	// Sign with the stack's own key, as the issuer would, then wait it out.
	tok, err := s.Issuer.Sign("alice", []auth.Role{auth.RolePlatformAdmin}, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1100 * time.Millisecond)
	return tok
}

func versionOf(t *testing.T, s *devenv.TestStack, tenant string) int {
	t.Helper()
	md, err := s.Vault.Root().KVv2("smtp").GetMetadata(context.Background(), tenant+"/admin")
	if err != nil {
		t.Fatal(err)
	}
	return md.CurrentVersion
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := readAll(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// switchSink is an audit sink that fails while its switch is on, standing
// in for an unreachable audit store.
type switchSink struct {
	mu   sync.Mutex
	fail bool
}

func (s *switchSink) set(fail bool) { s.mu.Lock(); s.fail = fail; s.mu.Unlock() }

func (s *switchSink) Write(context.Context, audit.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return errors.New("audit store unreachable")
	}
	return nil
}

func TestAuditFailsClosed(t *testing.T) {
	sink := &switchSink{}
	s := devenv.StartTestStack(t, 1, sink)
	ctx := context.Background()
	tn := s.Tenants[0]
	in := s.StoreEvent(tn)
	support := token(t, s, auth.RoleSupport)
	admin := token(t, s, auth.RolePlatformAdmin)
	pw1, _ := do(t, s, "GET", credPath(tn.TenantID), support, "").Body["password"].(string)

	sink.set(true)
	r := do(t, s, "GET", credPath(tn.TenantID), support, "")
	if r.Status != 503 || r.code() != "audit_unavailable" || strings.Contains(r.Raw, pw1) {
		t.Fatalf("retrieve without an audit trail: %d %s", r.Status, r.Raw)
	}
	// A change is not promoted without its audit record: MailU lost the
	// admin, the store run recreates it but may not promote.
	user := "admin@" + in.Domain
	if err := mailu.New(tn.MailU.APIURL, tn.MailUToken, nil).DeleteUser(ctx, user); err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"domain": in.Domain, "webmail_url": in.WebmailURL, "mailu_api_url": in.MailUAPIURL, "smtp_addr": in.SMTPAddr})
	if r := do(t, s, "POST", credPath(tn.TenantID), admin, string(body)); r.Status != 503 || r.code() != "audit_unavailable" {
		t.Fatalf("store without an audit trail: %d %s", r.Status, r.Raw)
	}
	sec, err := s.Vault.Root().KVv2("smtp").Get(ctx, tn.TenantID+"/admin")
	if err != nil || sec.Data["pending_password"] == nil {
		t.Fatalf("the unaudited change was promoted or lost: %v", err)
	}
	sink.set(false)
	if r := do(t, s, "POST", credPath(tn.TenantID), admin, string(body)); r.Status != 200 {
		t.Fatalf("store once the audit trail is back: %d %s", r.Status, r.Raw)
	}
	pw2, _ := do(t, s, "GET", credPath(tn.TenantID), support, "").Body["password"].(string)
	if pw2 == pw1 {
		t.Fatal("the interrupted change was not finished")
	}
	if err := mailu.VerifyLogin(ctx, in.SMTPAddr, user, pw2, nil); err != nil {
		t.Fatalf("after the audit trail is back the served password does not log in: %v", err)
	}
}
