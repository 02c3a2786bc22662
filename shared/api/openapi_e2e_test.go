package api_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"smtp-vault/infra/openapi"
	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/api"
	"smtp-vault/shared/auth"
)

// TestResponsesMatchTheContract drives every route of api.Routes through
// the local gateway, with answers that succeed and answers that refuse,
// and validates each real response against docs/openapi.yaml: status,
// security headers and body.
func TestResponsesMatchTheContract(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	tenant := s.Tenants[0]
	admin := token(t, s, auth.RolePlatformAdmin)
	support := token(t, s, auth.RoleSupport)
	in := s.StoreEvent(tenant)
	storeBody, err := json.Marshal(map[string]string{
		"domain": in.Domain, "webmail_url": in.WebmailURL, "mailu_api_url": in.MailUAPIURL, "smtp_addr": in.SMTPAddr,
	})
	if err != nil {
		t.Fatal(err)
	}
	const unknownTenant = "0b6f2c1e-6a43-4c4e-9d55-0f3c2f6d1a7b"
	creds := credPath(tenant.TenantID)

	reached := map[string]bool{} // route keys answered at least once
	for _, tc := range []struct {
		name         string
		method, path string
		bearer, body string
		headers      []string
		route        string // the api.Routes key the request reaches
		wantStatus   int
		// after moves the functions' clock once the request is answered.
		after time.Duration
	}{
		{"reauth: malformed", "POST", "/api/v1/platform-admin/reauth", support, `{"password":"x","totp_code":"12"}`, nil, "POST /api/v1/platform-admin/reauth", 400, 0},
		{"reauth: unknown field", "POST", "/api/v1/platform-admin/reauth", support, `{"password":"x","totp_code":"123456","extra":1}`, nil, "POST /api/v1/platform-admin/reauth", 400, 0},
		{"store: unchanged", "POST", creds, admin, string(storeBody), nil, "POST " + credPath("{tenant_id}"), 200, 0},
		{"store: not JSON", "POST", creds, admin, "{", nil, "POST " + credPath("{tenant_id}"), 400, 0},
		{"store: support may not", "POST", creds, support, string(storeBody), nil, "POST " + credPath("{tenant_id}"), 403, 0},
		{"store: wrong media type", "POST", creds, admin, string(storeBody), []string{"Content-Type", "text/plain"}, "POST " + credPath("{tenant_id}"), 415, 0},
		{"store: body too large", "POST", creds, admin, `{"domain":"` + strings.Repeat("a", 70<<10) + `"}`, nil, "POST " + credPath("{tenant_id}"), 413, 0},
		{"retrieve", "GET", creds, support, "", nil, "GET " + credPath("{tenant_id}"), 200, 0},
		{"retrieve: no bearer token", "GET", creds, "", "", nil, "GET " + credPath("{tenant_id}"), 401, 0},
		{"retrieve: no re-auth token", "GET", creds, support, "", []string{"X-Reauth-Token", "forged"}, "GET " + credPath("{tenant_id}"), 401, 0},
		{"retrieve: no credential", "GET", credPath(unknownTenant), support, "", nil, "GET " + credPath("{tenant_id}"), 404, 0},
		{"retrieve: bad tenant id", "GET", credPath("not-a-uuid"), support, "", nil, "GET " + credPath("{tenant_id}"), 400, 0},
		{"rotate: no reason", "POST", creds + "/rotate", admin, `{}`, nil, "POST " + credPath("{tenant_id}") + "/rotate", 400, 0},
		// The tenant was stored moments ago: the cool-down (10 minutes)
		// refuses, then, later (and within the re-auth window), rotates.
		{"rotate: cool-down", "POST", creds + "/rotate", admin, `{"reason":"contract test"}`, nil, "POST " + credPath("{tenant_id}") + "/rotate", 409, 11 * time.Minute},
		{"rotate", "POST", creds + "/rotate", admin, `{"reason":"contract test"}`, nil, "POST " + credPath("{tenant_id}") + "/rotate", 200, 0},
		{"emergency reset: no incident", "POST", creds + "/emergency-reset", admin, `{}`, nil, "POST " + credPath("{tenant_id}") + "/emergency-reset", 422, 0},
		{"emergency reset", "POST", creds + "/emergency-reset", admin, `{"incident_id":"INC-3","reason":"contract test"}`, nil, "POST " + credPath("{tenant_id}") + "/emergency-reset", 200, 0},
		{"emergency reset: again", "POST", creds + "/emergency-reset", admin, `{"incident_id":"INC-3"}`, nil, "POST " + credPath("{tenant_id}") + "/emergency-reset", 200, 0},
		{"compromise response: no selector", "POST", "/api/v1/platform-admin/incidents/INC-3/compromise-response", admin, `{}`, nil, "POST /api/v1/platform-admin/incidents/{incident_id}/compromise-response", 400, 0},
		{"compromise response", "POST", "/api/v1/platform-admin/incidents/INC-3/compromise-response", admin, `{"tenant_ids":["` + tenant.TenantID + `"]}`, nil, "POST /api/v1/platform-admin/incidents/{incident_id}/compromise-response", 202, 0},
		{"compromise response: progress", "GET", "/api/v1/platform-admin/incidents/INC-3/compromise-response", admin, "", nil, "GET /api/v1/platform-admin/incidents/{incident_id}/compromise-response", 200, 0},
		{"compromise response: unknown incident", "GET", "/api/v1/platform-admin/incidents/INC-404/compromise-response", admin, "", nil, "GET /api/v1/platform-admin/incidents/{incident_id}/compromise-response", 404, 0},
		{"audit", "GET", creds + "/audit?per_page=5", support, "", nil, "GET " + credPath("{tenant_id}") + "/audit", 200, 0},
		{"audit: bad parameter", "GET", creds + "/audit?colour=red", support, "", nil, "GET " + credPath("{tenant_id}") + "/audit", 400, 0},
		{"rotate overdue", "POST", "/api/v1/platform-admin/smtp-credentials/rotate-overdue", admin, `{"reason":"contract test"}`, nil, "POST /api/v1/platform-admin/smtp-credentials/rotate-overdue", 200, 0},
		{"overview", "GET", "/api/v1/platform-admin/smtp-credentials?status=ok", admin, "", nil, "GET /api/v1/platform-admin/smtp-credentials", 200, 0},
		{"overview: bad status", "GET", "/api/v1/platform-admin/smtp-credentials?status=late", admin, "", nil, "GET /api/v1/platform-admin/smtp-credentials", 400, 0},
		{"overview: support may not", "GET", "/api/v1/platform-admin/smtp-credentials", support, "", nil, "GET /api/v1/platform-admin/smtp-credentials", 403, 0},
		{"vault health", "GET", "/api/v1/platform-admin/vault/health", admin, "", nil, "GET /api/v1/platform-admin/vault/health", 200, 0},
		{"vault health: support may not", "GET", "/api/v1/platform-admin/vault/health", support, "", nil, "GET /api/v1/platform-admin/vault/health", 403, 0},
		{"console page", "GET", "/platform-admin/smtp-credentials", "", "", nil, "GET /platform-admin/{proxy+}", 200, 0},
		{"console config", "GET", "/platform-admin/config.json", "", "", nil, "GET /platform-admin/{proxy+}", 200, 0},
		{"console script", "GET", "/platform-admin/assets/console.js", "", "", nil, "GET /platform-admin/{proxy+}", 200, 0},
		{"console: no such page", "GET", "/platform-admin/tenants", "", "", nil, "GET /platform-admin/{proxy+}", 404, 0},
		{"viewing event", "POST", creds + "/events", support, `{"event":"smtp_credentials_copied","field":"username"}`, nil, "POST " + credPath("{tenant_id}") + "/events", 204, 0},
		{"viewing event: bad field", "POST", creds + "/events", support, `{"event":"smtp_credentials_copied","field":"data_key"}`, nil, "POST " + credPath("{tenant_id}") + "/events", 400, 0},
	} {
		r := do(t, s, tc.method, tc.path, tc.bearer, tc.body, tc.headers...)
		if r.Status != tc.wantStatus {
			t.Errorf("%s: status %d, want %d: %s", tc.name, r.Status, tc.wantStatus, r.Raw)
		}
		openapi.ValidateResponse(t, tc.method, tc.path, r.Status, r.Header, []byte(r.Raw))
		reached[tc.route] = true
		s.Clock.Shift(tc.after)
	}
	// Re-authentication by hand, as the console does it, and once with a
	// wrong password (one failure, far from the lockout).
	u, ok := s.User(s.UserWithRole(auth.RoleSupport))
	if !ok {
		t.Fatal("no support-team demo user")
	}
	code, err := s.TOTPCode(u.Name)
	if err != nil {
		t.Fatal(err)
	}
	good, err := json.Marshal(map[string]string{"password": u.Password, "totp_code": code})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		body       string
		wantStatus int
	}{{string(good), 200}, {`{"password":"wrong","totp_code":"000000"}`, 401}} {
		r := do(t, s, "POST", "/api/v1/platform-admin/reauth", support, tc.body)
		if r.Status != tc.wantStatus {
			t.Errorf("reauth: status %d, want %d: %s", r.Status, tc.wantStatus, r.Raw)
		}
		openapi.ValidateResponse(t, "POST", "/api/v1/platform-admin/reauth", r.Status, r.Header, []byte(r.Raw))
	}
	for _, route := range api.Routes {
		if !reached[route.Key()] {
			t.Errorf("%s was not exercised; add a request for it", route.Key())
		}
	}
}
