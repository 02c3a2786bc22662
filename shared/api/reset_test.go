package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
)

// TestEmergencyResetEndToEnd: through the local gateway against the real
// Vault and MailU stand-in, a reset sets a new 48-byte password that logs
// in while the old one is refused, marks the replaced KV version
// compromised, shows the password once, is audited as critical, alerts,
// and a second call for the same incident changes nothing.
func TestEmergencyResetEndToEnd(t *testing.T) {
	s := devenv.StartTestStack(t, 2)
	ctx := context.Background()
	tn := s.Tenants[0]
	admin := token(t, s, auth.RolePlatformAdmin)
	var pws seen
	defer func() {
		pws.assertAbsent(t, "the audit stream", s.AuditLog.String())
		pws.assertAbsent(t, "the function logs", s.Log.String())
		pws.assertAbsent(t, "the Vault audit log", readFile(t, filepath.Join(s.Vault.Dir, "vault-audit.log")))
		pws.assertAbsent(t, "the audit bucket", s.S3.BucketText(t, devenv.AuditBucket))
		notes, _ := json.Marshal(s.Notifications.Messages())
		pws.assertAbsent(t, "the notifications", string(notes))
	}()

	before := do(t, s, "GET", credPath(tn.TenantID), admin, "")
	oldPW, _ := before.Body["password"].(string)
	pws.add(oldPW)
	oldVersion := versionOf(t, s, tn.TenantID)

	// Bad input changes nothing; a missing incident id raises the alert.
	for _, c := range []struct {
		body, code string
		status     int
	}{
		{`{"reason":"leak"}`, "incident_id_required", 422},
		{`{"incident_id":"x","reason":"leak"}`, "incident_id_required", 422},
		{`{"incident_id":"-bad-start","reason":"leak"}`, "incident_id_required", 422},
		{`{"incident_id":"INC-1","reason":"two\nlines"}`, "invalid_request", 400},
		{`{"incident_id":"INC-1","extra":1}`, "unknown_field", 400},
		{`not json`, "invalid_json", 400},
	} {
		r := do(t, s, "POST", credPath(tn.TenantID)+"/emergency-reset", admin, c.body)
		if r.Status != c.status || r.code() != c.code {
			t.Fatalf("%s: %d %s, want %d %s", c.body, r.Status, r.Raw, c.status, c.code)
		}
	}
	if v := versionOf(t, s, tn.TenantID); v != oldVersion {
		t.Fatalf("refused resets changed the record: version %d -> %d", oldVersion, v)
	}
	if !strings.Contains(notesText(s), "emergency_reset_without_incident") {
		t.Fatal("a reset without an incident id raised no alert")
	}
	if r := do(t, s, "POST", credPath(tn.TenantID)+"/emergency-reset", token(t, s, auth.RoleSupport), `{"incident_id":"INC-2026-0042","reason":"x"}`); r.Status != 403 {
		t.Fatalf("support-team reset: %d %s", r.Status, r.Raw)
	}
	if r := do(t, s, "POST", credPath("9b2f3c1e-0000-4000-8000-000000000000")+"/emergency-reset", admin, `{"incident_id":"INC-2026-0042"}`); r.Status != 404 {
		t.Fatalf("unknown tenant: %d %s", r.Status, r.Raw)
	}

	r := do(t, s, "POST", credPath(tn.TenantID)+"/emergency-reset", admin, `{"incident_id":"INC-2026-0042","reason":"token found in a public repository"}`)
	if r.Status != 200 {
		t.Fatalf("reset: %d %s", r.Status, r.Raw)
	}
	newPW, _ := r.Body["password"].(string)
	pws.add(newPW)
	if len(newPW) != 64 || newPW == oldPW || r.Body["already_reset"] != false {
		t.Fatalf("reset answered password of length %d (want 64: 48 random bytes), already_reset %v", len(newPW), r.Body["already_reset"])
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Fatal("the one-time password response may be cached")
	}
	user := "admin@" + tn.Domain
	if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, user, newPW, nil); err != nil {
		t.Fatalf("the new password does not log in: %v", err)
	}
	if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, user, oldPW, nil); !errors.Is(err, mailu.ErrAuthFailed) {
		t.Fatalf("the old password still logs in: %v", err)
	}

	// The replaced version is marked compromised, for good.
	md, err := s.App.Vault.ReadMetadata(ctx, credential.AdminPath(tn.TenantID))
	if err != nil {
		t.Fatal(err)
	}
	mark := md.CustomMetadata[credential.MetaCompromisedVersion(oldVersion)]
	if md.CustomMetadata[credential.MetaCompromised] != "INC-2026-0042" || !strings.Contains(mark, "incident=INC-2026-0042") || !strings.Contains(mark, "by=") {
		t.Fatalf("compromise marks: %v", md.CustomMetadata)
	}

	// Audited as critical, with an alert in the notifications sink.
	if !strings.Contains(s.AuditLog.String(), `"event":"smtp_credentials_emergency_reset"`) || !strings.Contains(s.AuditLog.String(), `"severity":"critical"`) {
		t.Fatal("the reset is not audited as a critical smtp_credentials_emergency_reset")
	}
	if !strings.Contains(notesText(s), "emergency reset of tenant "+tn.TenantID) {
		t.Fatal("no security alert for the reset")
	}

	// A retrieve shows the compromise and serves the new password, with
	// its own audit record; the reset's answer is not served again.
	after := do(t, s, "GET", credPath(tn.TenantID), admin, "")
	comp, _ := after.Body["compromise"].(map[string]any)
	if after.Body["password"] != newPW || comp["incident_id"] != "INC-2026-0042" || int(comp["kv_version"].(float64)) != oldVersion {
		t.Fatalf("retrieve after the reset: serves the new password %v, compromise %v", after.Body["password"] == newPW, comp)
	}
	overview := do(t, s, "GET", "/api/v1/platform-admin/smtp-credentials?status=compromised", admin, "")
	if overview.Status != 200 || !strings.Contains(overview.Raw, tn.TenantID) || strings.Contains(overview.Raw, s.Tenants[1].TenantID) {
		t.Fatalf("overview of compromised credentials: %d %s", overview.Status, overview.Raw)
	}

	// The same incident again: nothing changes, no password.
	again := do(t, s, "POST", credPath(tn.TenantID)+"/emergency-reset", admin, `{"incident_id":"INC-2026-0042","reason":"again"}`)
	if again.Status != 200 || again.Body["already_reset"] != true || again.Body["password"] != nil {
		t.Fatalf("second reset for the incident: %d %s", again.Status, again.Raw)
	}
	if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, user, newPW, nil); err != nil {
		t.Fatalf("the second call changed the password: %v", err)
	}
}

func notesText(s *devenv.TestStack) string {
	b, _ := json.Marshal(s.Notifications.Messages())
	return string(b)
}

// TestForgedClaimsOnDirectInvocation: an HTTP-shaped event invoked
// directly, with authorizer claims naming a platform-admin but no valid
// bearer token, is refused by the function itself; so is a token whose
// roles claim is a string rather than a JSON array.
func TestForgedClaimsOnDirectInvocation(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	ctx := context.Background()
	tn := s.Tenants[0]
	event := func(authz string) []byte {
		ev := events.APIGatewayV2HTTPRequest{
			RouteKey:       "GET /api/v1/platform-admin/tenants/{tenant_id}/smtp-credentials",
			RawPath:        credPath(tn.TenantID),
			PathParameters: map[string]string{"tenant_id": tn.TenantID},
			Headers:        map[string]string{"x-reauth-token": "forged"},
		}
		if authz != "" {
			ev.Headers["authorization"] = authz
		}
		ev.RequestContext.HTTP.Method = "GET"
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": "mallory", "roles": "[platform-admin]"}},
		}
		b, _ := json.Marshal(ev)
		return b
	}
	status := func(raw []byte) (int, string) {
		var resp events.APIGatewayV2HTTPResponse
		if err := json.Unmarshal(raw, &resp); err != nil {
			t.Fatalf("answer %s: %v", raw, err)
		}
		return resp.StatusCode, resp.Body
	}
	stringRoles, err := s.Issuer.SignClaims("mallory", map[string]any{"roles": "x platform-admin"}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := s.Issuer.Sign("someone-else", []auth.Role{auth.RolePlatformAdmin}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, authz string
		want        int
	}{
		{"no token", "", 401},
		{"garbage token", "Bearer not.a.jwt", 401},
		{"roles as a string", "Bearer " + stringRoles, 403},
		{"token of another subject than the claims", "Bearer " + other, 401},
	} {
		out, err := s.Gateway.Invoke(ctx, "retrieve", event(c.authz))
		if err != nil {
			t.Fatalf("%s: invoke: %v", c.name, err)
		}
		if code, body := status(out); code != c.want || strings.Contains(body, "password\"") {
			t.Fatalf("%s: %d %s, want %d", c.name, code, body, c.want)
		}
	}
}

// TestFailedResetIsNotAlreadyReset (issue 20, defect 1), black-box: an
// emergency reset that MailU refused, rolled back by the sweep, does not
// count as done for its incident. Until it is done again Vault serves no
// password (the one it holds is marked compromised); the retry with the
// same incident sets a new password and the old one stops logging in.
func TestFailedResetIsNotAlreadyReset(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	tn := s.Tenants[0]
	admin := token(t, s, auth.RolePlatformAdmin)
	before := do(t, s, "GET", credPath(tn.TenantID), admin, "")
	oldPW, user := before.Body["password"].(string), before.Body["username"].(string)

	if err := s.MailUHost.SetFaults(ctx, tn.Domain, mailustandin.Faults{RejectAPI: true}); err != nil {
		t.Fatal(err)
	}
	body := `{"incident_id":"INC-T1","reason":"leaked in a ticket"}`
	if r := do(t, s, "POST", credPath(tn.TenantID)+"/emergency-reset", admin, body); r.Status == 200 {
		t.Fatalf("the reset went through while MailU rejects its API: %s", r.Raw)
	}
	if err := s.MailUHost.SetFaults(ctx, tn.Domain, mailustandin.Faults{}); err != nil {
		t.Fatal(err)
	}
	event, err := os.ReadFile("../../events/rotate-sweep.json")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Gateway.Invoke(ctx, "rotate-sweep", event); err != nil {
		t.Fatal(err)
	}
	if err := s.RotateQueue.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, user, oldPW, nil); err != nil {
		t.Fatalf("after the rollback MailU should still hold the old password: %v", err)
	}
	if r := do(t, s, "GET", credPath(tn.TenantID), admin, ""); r.Status != 409 || r.code() != "credential_compromised" {
		t.Fatalf("Vault serves a password marked compromised: %d %s", r.Status, r.Raw)
	}

	r := do(t, s, "POST", credPath(tn.TenantID)+"/emergency-reset", admin, body)
	newPW, _ := r.Body["password"].(string)
	if r.Status != 200 || r.Body["already_reset"] != false || len(newPW) == 0 || newPW == oldPW {
		t.Fatalf("the retry of the incident: %d already_reset=%v", r.Status, r.Body["already_reset"])
	}
	if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, user, oldPW, nil); !errors.Is(err, mailu.ErrAuthFailed) {
		t.Fatalf("the compromised password still logs in: %v", err)
	}
	if got := do(t, s, "GET", credPath(tn.TenantID), admin, ""); got.Status != 200 || got.Body["password"] != newPW {
		t.Fatalf("after the retry Vault does not serve the new password: %d", got.Status)
	}
	if r := do(t, s, "POST", credPath(tn.TenantID)+"/emergency-reset", admin, body); r.Status != 200 || r.Body["already_reset"] != true {
		t.Fatalf("a third call for the incident: %d %s", r.Status, r.Raw)
	}
}
