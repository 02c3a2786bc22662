package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"smtp-vault/scripts/devenv/devissuer"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/pquerna/otp/totp"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/api"
	"smtp-vault/shared/app"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/notify"
)

// These tests check who may do what, through the local gateway (JWT
// authorizer, CORS), the Lambda handlers and the real Vault (userpass with
// TOTP login MFA, Transit signatures, the attempt records). Every request
// here carries exactly the headers it names.

// send is do without the session helpers: only the given headers go out.
func send(t *testing.T, s *devenv.TestStack, method, path, body string, headers map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(method, s.APIURL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range headers {
		req.Header.Set(k, v)
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

func bearer(tok string) map[string]string {
	if tok == "" {
		return map[string]string{}
	}
	return map[string]string{"Authorization": "Bearer " + tok}
}

// reauthClaims reads a re-auth token's payload (without verifying it).
func reauthClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	head, _, _ := strings.Cut(tok, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

var wantSecurityHeaders = map[string]string{
	"Cache-Control":             "no-store",
	"Pragma":                    "no-cache",
	"X-Content-Type-Options":    "nosniff",
	"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
	"X-Frame-Options":           "DENY",
	"Referrer-Policy":           "no-referrer",
	"Content-Security-Policy":   "default-src 'none'; frame-ancestors 'none'",
}

func checkSecurityHeaders(t *testing.T, where string, h http.Header) {
	t.Helper()
	for k, v := range wantSecurityHeaders {
		if got := h.Get(k); got != v {
			t.Errorf("%s: %s = %q, want %q", where, k, got, v)
		}
	}
}

// The columns of the matrix: who calls, with which re-auth token.
const (
	colNoToken = iota
	colForged
	colExpiredJWT
	colWrongRole
	colNoReauth
	colOtherReauth
	colExpiredReauth
	colValid
	columns
)

var columnNames = [columns]string{"no token", "forged JWT", "expired JWT", "wrong role", "right role without re-auth", "other admin's re-auth", "expired re-auth", "valid"}

type cell struct {
	status int
	code   string // "" for a success
}

var (
	unauth   = cell{401, "unauthenticated"}
	denied   = cell{403, "forbidden"}
	reauthed = cell{401, "reauth_required"}
	page     = cell{200, ""}
	ok204    = cell{204, ""}
	ok200    = cell{200, ""}
	ok202    = cell{202, ""}
)

// row is one route's line of the matrix.
type row struct {
	route string // "METHOD PATH" as in api.Routes
	path  string // the request path
	body  string
	cells [columns]cell
}

func TestAccessMatrix(t *testing.T) {
	t.Parallel()
	s := devenv.StartTestStack(t, 1)
	tn := s.Tenants[0]
	admin, support := s.UserWithRole(auth.RolePlatformAdmin), s.UserWithRole(auth.RoleSupport)
	var responses []string // every response but retrieve's successes
	var codes []string
	code := func(user string) string {
		c, err := s.TOTPCode(user)
		if err != nil {
			t.Fatal(err)
		}
		codes = append(codes, c)
		return c
	}
	reauthAs := func(user string) (string, string) {
		b, rt, err := s.Reauth(user)
		if err != nil {
			t.Fatal(err)
		}
		return b, rt
	}
	adminJWT, adminRT := reauthAs(admin)
	supportJWT, supportRT := reauthAs(support)
	nobody, err := s.Issuer.Sign("mallory", []auth.Role{"billing"}, time.Hour) // a valid token without a known role
	if err != nil {
		t.Fatal(err)
	}
	other, err := devissuer.LoadOrCreateDevIssuer(filepath.Join(t.TempDir(), "k.jwk"), s.APIURL, devenv.Audience)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.Sign(admin, []auth.Role{auth.RolePlatformAdmin}, time.Hour)
	expiredJWT := signExpired(t, s)

	creds := credPath(tn.TenantID)
	in := s.StoreEvent(tn)
	storeBody, _ := json.Marshal(map[string]string{"domain": in.Domain, "webmail_url": in.WebmailURL, "mailu_api_url": in.MailUAPIURL, "smtp_addr": in.SMTPAddr})
	// One line per route of api.Routes (a test below checks that none is
	// missing). Columns: no token, forged JWT, expired JWT, wrong role,
	// right role without re-auth, other admin's re-auth, expired re-auth,
	// valid.
	rows := []row{
		{"POST " + "/api/v1/platform-admin/tenants/{tenant_id}/smtp-credentials", creds, string(storeBody),
			[columns]cell{unauth, unauth, unauth, denied, reauthed, reauthed, reauthed, ok200}},
		{"GET /api/v1/platform-admin/tenants/{tenant_id}/smtp-credentials", creds, "",
			[columns]cell{unauth, unauth, unauth, denied, reauthed, reauthed, reauthed, ok200}},
		{"POST /api/v1/platform-admin/tenants/{tenant_id}/smtp-credentials/rotate", creds + "/rotate", `{"reason":"matrix"}`,
			[columns]cell{unauth, unauth, unauth, denied, reauthed, reauthed, reauthed, ok200}},
		{"POST /api/v1/platform-admin/tenants/{tenant_id}/smtp-credentials/emergency-reset", creds + "/emergency-reset", `{"incident_id":"INC-1","reason":"matrix"}`,
			[columns]cell{unauth, unauth, unauth, denied, reauthed, reauthed, reauthed, ok200}},
		{"POST /api/v1/platform-admin/incidents/{incident_id}/compromise-response", "/api/v1/platform-admin/incidents/INC-2/compromise-response", `{"tenant_ids":["` + tn.TenantID + `"],"reason":"matrix"}`,
			[columns]cell{unauth, unauth, unauth, denied, reauthed, reauthed, reauthed, ok202}},
		{"GET /api/v1/platform-admin/incidents/{incident_id}/compromise-response", "/api/v1/platform-admin/incidents/INC-2/compromise-response", "",
			[columns]cell{unauth, unauth, unauth, denied, ok200, ok200, ok200, ok200}},
		{"POST /api/v1/platform-admin/tenants/{tenant_id}/smtp-credentials/events", creds + "/events", `{"event":"smtp_credentials_viewed","field":"password"}`,
			[columns]cell{unauth, unauth, unauth, denied, reauthed, reauthed, reauthed, ok204}},
		{"GET /api/v1/platform-admin/tenants/{tenant_id}/smtp-credentials/audit", creds + "/audit", "",
			[columns]cell{unauth, unauth, unauth, denied, ok200, ok200, ok200, ok200}},
		{"POST /api/v1/platform-admin/smtp-credentials/rotate-overdue", "/api/v1/platform-admin/smtp-credentials/rotate-overdue", `{}`,
			[columns]cell{unauth, unauth, unauth, denied, reauthed, reauthed, reauthed, ok200}},
		{"GET /api/v1/platform-admin/smtp-credentials", "/api/v1/platform-admin/smtp-credentials", "",
			[columns]cell{unauth, unauth, unauth, denied, ok200, ok200, ok200, ok200}},
		{"GET /api/v1/platform-admin/vault/health", "/api/v1/platform-admin/vault/health", "",
			[columns]cell{unauth, unauth, unauth, denied, ok200, ok200, ok200, ok200}},
		// The console's pages have no authorizer and hold no data: every
		// caller gets the same page.
		{"GET /platform-admin/{proxy+}", "/platform-admin/tenants/" + tn.TenantID + "/smtp-credentials", "",
			[columns]cell{page, page, page, page, page, page, page, page}},
		{"POST /api/v1/platform-admin/reauth", "/api/v1/platform-admin/reauth", "",
			[columns]cell{unauth, unauth, unauth, denied, ok200, ok200, ok200, ok200}},
	}
	covered := map[string]bool{}
	for _, r := range rows {
		covered[r.route] = true
	}
	for _, r := range api.Routes {
		if !covered[r.Key()] {
			t.Fatalf("route %s has no line in the access matrix", r.Key())
		}
	}
	routes := map[string]api.Route{}
	for _, r := range api.Routes {
		routes[r.Key()] = r
	}

	var retrieved []string
	for _, r := range rows {
		route := routes[r.route]
		// The right role is the least one the route allows; the wrong one
		// a role it does not allow (or none).
		right, rightJWT, rightRT, otherRT := admin, adminJWT, adminRT, supportRT
		wrongJWT := nobody
		if route.Roles.Has(auth.RoleSupport) {
			right, rightJWT, rightRT, otherRT = support, supportJWT, supportRT, adminRT
		} else {
			wrongJWT = supportJWT
		}
		for col := range columns {
			t.Run(r.route+"/"+columnNames[col], func(t *testing.T) {
				h := map[string]string{}
				switch col {
				case colNoToken:
				case colForged:
					h = bearer(forged)
				case colExpiredJWT:
					h = bearer(expiredJWT)
				case colWrongRole:
					h = bearer(wrongJWT)
				case colNoReauth:
					h = bearer(rightJWT)
				case colOtherReauth:
					h = bearer(rightJWT)
					h["X-Reauth-Token"] = otherRT
				case colExpiredReauth, colValid:
					h = bearer(rightJWT)
					h["X-Reauth-Token"] = rightRT
				}
				body := r.body
				if r.route == "POST /api/v1/platform-admin/reauth" {
					// A fresh code only where the request gets past the role.
					c := "000000"
					if col >= colNoReauth {
						c = code(right)
					}
					u, _ := s.User(right)
					b, _ := json.Marshal(map[string]string{"password": u.Password, "totp_code": c})
					body = string(b)
				}
				if route.Function == "rotate" && col == colValid {
					// The seeding store changed the password moments ago:
					// run past the rotation cool-down.
					s.Clock.Shift(credential.DefaultCooldown)
					defer s.Clock.Shift(-credential.DefaultCooldown)
				}
				if col == colExpiredReauth {
					// The functions' clock runs 16 minutes ahead: every
					// re-auth token issued so far has expired.
					s.Clock.Shift(16 * time.Minute)
					defer s.Clock.Shift(-16 * time.Minute)
				}
				got := send(t, s, route.Method, r.path, body, h)
				want := r.cells[col]
				if got.Status != want.status || got.code() != want.code {
					t.Fatalf("got %d %q, want %d %q: %s", got.Status, got.code(), want.status, want.code, got.Raw)
				}
				if route.Public {
					if csp := got.Header.Get("Content-Security-Policy"); csp != console.CSP {
						t.Errorf("a console page's CSP %q", csp)
					}
				} else {
					checkSecurityHeaders(t, "response", got.Header)
				}
				if route.Function == "retrieve" && got.Status == 200 {
					pw, _ := got.Body["password"].(string)
					retrieved = append(retrieved, pw)
					exp := time.Unix(int64(reauthClaims(t, rightRT)["exp"].(float64)), 0).UTC().Format(time.RFC3339)
					if got.Body["expires_at"] != exp {
						t.Errorf("expires_at %v, want the re-auth token's exp %s", got.Body["expires_at"], exp)
					}
					return
				}
				if route.Key() == "POST "+credPath("{tenant_id}")+"/emergency-reset" && got.Status == 200 {
					// The one-time display of the new password.
					pw, _ := got.Body["password"].(string)
					retrieved = append(retrieved, pw)
					return
				}
				if route.Function == "reauth" && got.Status == 200 {
					rt, _ := got.Body["reauth_token"].(string)
					c := reauthClaims(t, rt)
					if c["sub"] != right || got.Body["expires_at"] == nil {
						t.Errorf("re-auth answer %s", got.Raw)
					}
				}
				responses = append(responses, fmt.Sprint(got.Header), got.Raw)
			})
		}
	}

	// Refusals are audited with their reason.
	trail := s.AuditLog.String()
	for _, want := range []string{`"event":"authorization_denied"`, `"reason":"missing"`, `"reason":"other_subject"`, `"reason":"expired"`, `"code":"reauth_required"`} {
		if !strings.Contains(trail, want) {
			t.Errorf("no %s in the audit trail", want)
		}
	}

	// No response but retrieve's and the reset's, no log line and no audit record of the
	// whole run holds a plaintext password, a TOTP secret or code, or a
	// token. (Vault's own audit log holds HMACs.)
	var pws seen
	for _, p := range retrieved {
		pws.add(p)
	}
	for _, u := range s.Users {
		pws.add(u.Password)
		pws.add(u.TOTPSecret)
	}
	for _, c := range codes {
		pws.add(`"` + c + `"`)
	}
	pws.assertAbsent(t, "the responses", strings.Join(responses, "\n"))
	pws.assertAbsent(t, "the function logs", s.Log.String())
	pws.assertAbsent(t, "the audit stream", trail)
	pws.assertAbsent(t, "the Vault audit log", readFile(t, filepath.Join(s.Vault.Dir, "vault-audit.log")))
	var tokens seen
	for _, tok := range []string{adminJWT, supportJWT, adminRT, supportRT, forged} {
		tokens.add(tok)
	}
	tokens.assertAbsent(t, "the function logs", s.Log.String())
	tokens.assertAbsent(t, "the audit stream", trail)
}

func TestReauthLockout(t *testing.T) {
	t.Parallel()
	s := devenv.StartTestStack(t, 1)
	ctx := context.Background()
	admin, support := s.UserWithRole(auth.RolePlatformAdmin), s.UserWithRole(auth.RoleSupport)
	u, _ := s.User(admin)
	jwt, err := s.Token(admin)
	if err != nil {
		t.Fatal(err)
	}
	// A code no time step near now produces: certainly wrong.
	wrongCode := "000000"
	for i := 0; ; i++ {
		wrongCode = fmt.Sprintf("%06d", 123456+i*7919)
		clash := false
		for _, d := range []time.Duration{-time.Minute, -30 * time.Second, 0, 30 * time.Second, time.Minute} {
			if c, _ := totp.GenerateCode(u.TOTPSecret, time.Now().Add(d)); c == wrongCode {
				clash = true
			}
		}
		if !clash {
			break
		}
	}
	attempt := func(password, code string) response {
		b, _ := json.Marshal(map[string]string{"password": password, "totp_code": code})
		return send(t, s, "POST", "/api/v1/platform-admin/reauth", string(b), bearer(jwt))
	}
	attempts := []struct {
		password, code string
		want           cell
	}{
		{"not-" + u.Password, wrongCode, cell{401, "reauth_failed"}},
		{u.Password, wrongCode, cell{401, "reauth_failed"}},
		{"not-" + u.Password, wrongCode, cell{401, "reauth_failed"}},
		{u.Password, wrongCode, cell{429, "rate_limited"}}, // the fourth failure in five minutes locks
	}
	for i, a := range attempts {
		r := attempt(a.password, a.code)
		if r.Status != a.want.status || r.code() != a.want.code {
			t.Fatalf("attempt %d: got %d %s, want %d %s", i+1, r.Status, r.Raw, a.want.status, a.want.code)
		}
		checkSecurityHeaders(t, "lockout answer", r.Header)
	}
	right := func() response {
		c, err := s.TOTPCode(admin)
		if err != nil {
			t.Fatal(err)
		}
		return attempt(u.Password, c)
	}
	r := right()
	if r.Status != 429 || r.code() != "rate_limited" {
		t.Fatalf("right password and code while locked: %d %s", r.Status, r.Raw)
	}
	var retry int
	if _, err := fmt.Sscan(r.Header.Get("Retry-After"), &retry); err != nil || retry <= 0 || retry > 900 {
		t.Fatalf("Retry-After %q, want seconds up to 900", r.Header.Get("Retry-After"))
	}
	// Another instance of the function (a second App on the same Vault)
	// sees the same lock.
	a2, err := app.New(ctx, s.App.Config, app.Options{AuditOut: io.Discard, LogOut: io.Discard, Verifier: s.Verifier})
	if err != nil {
		t.Fatal(err)
	}
	bearer, err := s.Token(admin)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"password": u.Password, "totp_code": wrongCode})
	resp, err := a2.API.Reauth()(ctx, events.APIGatewayV2HTTPRequest{
		RouteKey: "POST /api/v1/platform-admin/reauth",
		Headers:  map[string]string{"content-type": "application/json", "authorization": "Bearer " + bearer},
		Body:     string(body),
		RequestContext: events.APIGatewayV2HTTPRequestContext{Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": admin, "roles": "[platform-admin]"}},
		}},
	})
	if err != nil || resp.StatusCode != 429 || resp.Headers["Retry-After"] == "" {
		t.Fatalf("second instance: %d %v %s", resp.StatusCode, err, resp.Body)
	}
	// The lock is the user's own: the other admin re-authenticates.
	if _, _, err := s.Reauth(support); err != nil {
		t.Fatalf("another user during the lock: %v", err)
	}
	// The record every instance reads says so.
	rec, err := s.Vault.Root().KVv2(devenv.AccessMount).Get(ctx, "reauth/"+admin)
	if err != nil || rec.Data["locked_until"] == "" {
		t.Fatalf("attempt record: %v %v", rec, err)
	}
	// The alert, once, and every failure with its reason; never the
	// password or code.
	trail := s.AuditLog.String()
	if n := strings.Count(trail, `"event":"reauth_locked"`); n != 1 {
		t.Fatalf("%d reauth_locked events, want 1", n)
	}
	if !strings.Contains(trail, `"event":"reauth_locked","user_id":"`+admin+`"`) || !strings.Contains(trail, `"severity":"critical"`) {
		t.Fatal("reauth_locked is not a critical event of the user")
	}
	if strings.Count(trail, `"reason":"wrong_password"`) != 2 || strings.Count(trail, `"reason":"wrong_totp_code"`) != 2 {
		t.Fatalf("failed attempts not audited with their reasons:\n%s", trail)
	}
	// The security alert, once, to the user's name; what SNS would get.
	var alerts []notify.Message
	for _, m := range s.Notifications.Messages() {
		if m.Kind == notify.KindSecurityAlert && m.Attrs["rule"] == "reauth_locked" {
			alerts = append(alerts, m)
		}
	}
	if len(alerts) != 1 || alerts[0].Attrs["user_id"] != admin {
		t.Fatalf("lockout alerts %+v, want one for %s", alerts, admin)
	}
	var pws seen
	pws.add(u.Password)
	pws.add(`"` + wrongCode + `"`)
	pws.assertAbsent(t, "the audit stream", trail)
	pws.assertAbsent(t, "the function logs", s.Log.String())
	pws.assertAbsent(t, "the alert", fmt.Sprintf("%+v", alerts))

	// Fifteen minutes later (the functions' clock) the lock is over.
	s.Clock.Shift(15*time.Minute + time.Second)
	if r := right(); r.Status != 200 {
		t.Fatalf("after the lock: %d %s", r.Status, r.Raw)
	}
}

func TestTamperedReauthTokens(t *testing.T) {
	t.Parallel()
	s := devenv.StartTestStack(t, 1)
	ctx := context.Background()
	support := s.UserWithRole(auth.RoleSupport)
	jwt, rt, err := s.Reauth(support)
	if err != nil {
		t.Fatal(err)
	}
	path := credPath(s.Tenants[0].TenantID)
	if r := send(t, s, "GET", path, "", map[string]string{"Authorization": "Bearer " + jwt, "X-Reauth-Token": rt}); r.Status != 200 {
		t.Fatalf("untampered: %d %s", r.Status, r.Raw)
	}
	head, tail, _ := strings.Cut(rt, ".")
	edit := func(change func(map[string]any)) string {
		m := reauthClaims(t, rt)
		change(m)
		b, _ := json.Marshal(m)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	// A token signed by another Transit key of the same Vault.
	if _, err := s.Vault.Root().Logical().WriteWithContext(ctx, "transit/keys/not-the-reauth-key", map[string]any{"type": "ed25519"}); err != nil {
		t.Fatal(err)
	}
	otherKey, err := s.Vault.Root().Logical().WriteWithContext(ctx, "transit/sign/not-the-reauth-key", map[string]any{"input": base64.StdEncoding.EncodeToString([]byte(head))})
	if err != nil {
		t.Fatal(err)
	}
	otherSig := base64.RawURLEncoding.EncodeToString([]byte(otherKey.Data["signature"].(string)))
	sig, _ := base64.RawURLEncoding.DecodeString(tail)
	cases := map[string]string{
		"longer life":             edit(func(m map[string]any) { m["exp"] = m["exp"].(float64) + 3600 }) + "." + tail,
		"another subject":         edit(func(m map[string]any) { m["sub"] = "alice" }) + "." + tail,
		"signed by another key":   head + "." + otherSig,
		"unknown key version":     head + "." + base64.RawURLEncoding.EncodeToString([]byte(strings.Replace(string(sig), "vault:v1:", "vault:v7:", 1))),
		"signature cut short":     rt[:len(rt)-8],
		"payload alone":           head,
		"bearer token as re-auth": jwt,
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			r := send(t, s, "GET", path, "", map[string]string{"Authorization": "Bearer " + jwt, "X-Reauth-Token": tok})
			if r.Status != 401 || r.code() != "reauth_required" || r.Body["password"] != nil {
				t.Fatalf("got %d %s", r.Status, r.Raw)
			}
		})
	}
	if !strings.Contains(s.AuditLog.String(), `"reason":"bad_signature"`) {
		t.Fatal("forged re-auth tokens not audited as such")
	}
}

func TestCORS(t *testing.T) {
	t.Parallel()
	s := devenv.StartTestStack(t, 1)
	path := credPath(s.Tenants[0].TenantID)
	preflight := func(origin string) response {
		return send(t, s, "OPTIONS", path, "", map[string]string{
			"Origin":                         origin,
			"Access-Control-Request-Method":  "GET",
			"Access-Control-Request-Headers": "authorization,x-reauth-token",
		})
	}
	r := preflight(s.ConsoleOrigin)
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != s.ConsoleOrigin ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Headers"), "x-reauth-token") ||
		!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "GET") {
		t.Fatalf("preflight from the console: %d %v", r.Status, r.Header)
	}
	r = preflight("https://evil.example")
	if r.Status != 204 || r.Header.Get("Access-Control-Allow-Origin") != "" || r.Header.Get("Access-Control-Allow-Headers") != "" {
		t.Fatalf("preflight from another origin: %d %v", r.Status, r.Header)
	}
	// Actual requests: the origin is allowed only for the console, on
	// refusals as well.
	r = send(t, s, "GET", path, "", map[string]string{"Origin": s.ConsoleOrigin})
	if r.Status != 401 || r.Header.Get("Access-Control-Allow-Origin") != s.ConsoleOrigin || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "retry-after") {
		t.Fatalf("request from the console: %d %v", r.Status, r.Header)
	}
	checkSecurityHeaders(t, "gateway refusal", r.Header)
	jwt, rt, err := s.ReauthAs(auth.RoleSupport)
	if err != nil {
		t.Fatal(err)
	}
	r = send(t, s, "GET", path, "", map[string]string{"Origin": "https://evil.example", "Authorization": "Bearer " + jwt, "X-Reauth-Token": rt})
	if r.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("request from another origin allowed: %v", r.Header)
	}
	if r := send(t, s, "GET", "/nothing", "", nil); r.Status != 404 {
		t.Fatalf("unknown path: %d", r.Status)
	} else {
		checkSecurityHeaders(t, "gateway 404", r.Header)
	}
}
