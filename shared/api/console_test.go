package api_test

import (
	"strings"
	"testing"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
)

// TestViewingEvents: the console's viewing events are recorded on the
// tenant's chain with the field, and bad input is refused with nothing
// recorded.
func TestViewingEvents(t *testing.T) {
	t.Parallel()
	s := devenv.StartTestStack(t, 1)
	tn := s.Tenants[0]
	support := token(t, s, auth.RoleSupport)
	path := credPath(tn.TenantID) + "/events"
	for _, tc := range []struct {
		body   string
		status int
		code   string
	}{
		{`{"event":"smtp_credentials_accessed","field":"password"}`, 400, "invalid_request"},
		{`{"event":"smtp_credentials_viewed","field":"data_key"}`, 400, "invalid_request"},
		{`{"event":"smtp_credentials_viewed"}`, 400, "invalid_request"},
		{`{"event":"smtp_credentials_viewed","field":"password","extra":1}`, 400, "unknown_field"},
		{`{"event":"smtp_credentials_viewed","field":"password"}{}`, 400, "invalid_json"},
	} {
		r := do(t, s, "POST", path, support, tc.body)
		if r.Status != tc.status || r.code() != tc.code {
			t.Errorf("%s: %d %q, want %d %q", tc.body, r.Status, r.code(), tc.status, tc.code)
		}
	}
	if r := do(t, s, "POST", credPath("0b6f2c1e-6a43-4c4e-9d55-0f3c2f6d1a7b")+"/events", support, `{"event":"smtp_credentials_viewed","field":"password"}`); r.Status != 404 {
		t.Errorf("unknown tenant: %d %s", r.Status, r.Raw)
	}
	for _, ev := range []string{audit.CredentialsViewed, audit.CredentialsCopied} {
		if strings.Contains(s.AuditLog.String(), `"event":"`+ev+`"`) {
			t.Fatalf("a refused request recorded %s", ev)
		}
	}
	for _, body := range []string{`{"event":"smtp_credentials_viewed","field":"password"}`, `{"event":"smtp_credentials_copied","field":"username"}`} {
		if r := do(t, s, "POST", path, support, body); r.Status != 204 || r.Raw != "" {
			t.Fatalf("%s: %d %s", body, r.Status, r.Raw)
		}
	}
	page := do(t, s, "GET", credPath(tn.TenantID)+"/audit?per_page=5", support, "")
	events, _ := page.Body["events"].([]any)
	got := map[string]string{}
	for _, e := range events {
		m := e.(map[string]any)
		d, _ := m["details"].(map[string]any)
		if f, ok := d["field"].(string); ok && m["user_id"] == s.UserWithRole(auth.RoleSupport) && m["severity"] == "info" {
			got[m["event"].(string)] = f
		}
	}
	if got[audit.CredentialsViewed] != "password" || got[audit.CredentialsCopied] != "username" {
		t.Errorf("the trail holds %v; want the viewed password and the copied username: %s", got, page.Raw)
	}
}

// TestConsolePagesThroughTheGateway: the local gateway serves the console
// at the paths API Gateway does, with the console's headers.
func TestConsolePagesThroughTheGateway(t *testing.T) {
	t.Parallel()
	s := devenv.StartTestStack(t, 1)
	for path, status := range map[string]int{
		console.Prefix + "smtp-credentials":                                       200,
		console.Prefix + "sign-in":                                                200,
		console.Prefix + "tenants/" + s.Tenants[0].TenantID + "/smtp-credentials": 200,
		console.Prefix + "assets/console.css":                                     200,
		console.Prefix + "nothing":                                                404,
	} {
		r := do(t, s, "GET", path, "", "")
		if r.Status != status || r.Header.Get("Content-Security-Policy") != console.CSP || r.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d, CSP %q", path, r.Status, r.Header.Get("Content-Security-Policy"))
		}
	}
}
