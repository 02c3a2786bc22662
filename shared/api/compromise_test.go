package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/mailu"
)

const compromisePath = "/api/v1/platform-admin/incidents/INC-7/compromise-response"

// waitResponse polls the progress route until the response finished.
func waitResponse(t *testing.T, s *devenv.TestStack, admin string) response {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := do(t, s, "GET", compromisePath, admin, "")
		if r.Status != 200 {
			t.Fatalf("progress: %d %s", r.Status, r.Raw)
		}
		if r.Body["state"] == "finished" {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("the compromise response did not finish: %s", r.Raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func outcomes(r response) map[string]string {
	out := map[string]string{}
	results, _ := r.Body["results"].([]any)
	for _, x := range results {
		m := x.(map[string]any)
		out[m["tenant_id"].(string)] = m["outcome"].(string)
	}
	return out
}

// TestCompromiseResponse: one incident resets a list of tenants through
// the reset queue; a tenant whose MailU is down is reported failed and
// keeps its working password; running the response again resets it and
// nobody twice; start and end are audited with counts.
func TestCompromiseResponse(t *testing.T) {
	s := devenv.StartTestStack(t, 4)
	ctx := context.Background()
	admin := token(t, s, auth.RolePlatformAdmin)
	before := map[string]string{}
	for _, tn := range s.Tenants {
		r := do(t, s, "GET", credPath(tn.TenantID), admin, "")
		before[tn.TenantID] = r.Body["password"].(string)
	}
	down := s.Tenants[1]
	if err := s.MailUHost.SetFaults(ctx, down.Domain, mailustandin.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	unknown := "9b2f3c1e-0000-4000-8000-000000000000"
	ids := []string{s.Tenants[0].TenantID, down.TenantID, s.Tenants[2].TenantID, unknown}
	body, _ := json.Marshal(map[string]any{"tenant_ids": ids, "reason": "host breach"})

	for _, bad := range []string{`{}`, `{"all":true,"mailu_host":"x.example"}`, `{"tenant_ids":["nope"]}`, `{"mailu_host":"bad host!"}`} {
		if r := do(t, s, "POST", compromisePath, admin, bad); r.Status != 400 {
			t.Fatalf("%s: %d %s", bad, r.Status, r.Raw)
		}
	}
	if r := do(t, s, "POST", "/api/v1/platform-admin/incidents/x/compromise-response", admin, string(body)); r.Status != 422 || r.code() != "incident_id_required" {
		t.Fatalf("bad incident id: %d %s", r.Status, r.Raw)
	}

	r := do(t, s, "POST", compromisePath, admin, string(body))
	if r.Status != 202 || r.Body["response_id"] == "" || r.Body["total"] != float64(4) {
		t.Fatalf("start: %d %s", r.Status, r.Raw)
	}
	done := waitResponse(t, s, admin)
	got := outcomes(done)
	want := map[string]string{s.Tenants[0].TenantID: "reset", down.TenantID: "failed", s.Tenants[2].TenantID: "reset", unknown: "skipped"}
	for id, o := range want {
		if got[id] != o {
			t.Fatalf("outcomes %v, want %v", got, want)
		}
	}
	if done.Body["reset"] != float64(2) || done.Body["failed"] != float64(1) || done.Body["skipped"] != float64(1) {
		t.Fatalf("counts: %s", done.Raw)
	}
	user := func(i int) string { return "admin@" + s.Tenants[i].Domain }
	for i, tn := range s.Tenants[:3] {
		if tn.TenantID == down.TenantID {
			continue
		}
		if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, user(i), before[tn.TenantID], nil); !errors.Is(err, mailu.ErrAuthFailed) {
			t.Fatalf("tenant %d: the compromised password still logs in: %v", i, err)
		}
	}
	if err := s.MailUHost.SetFaults(ctx, down.Domain, mailustandin.Faults{}); err != nil {
		t.Fatal(err)
	}
	if err := mailu.VerifyLogin(ctx, down.MailU.SMTPAddr, user(1), before[down.TenantID], nil); err != nil {
		t.Fatalf("the failed tenant was touched: its password no longer logs in: %v", err)
	}
	untouched := s.Tenants[3]
	if err := mailu.VerifyLogin(ctx, untouched.MailU.SMTPAddr, user(3), before[untouched.TenantID], nil); err != nil {
		t.Fatalf("a tenant outside the response was reset: %v", err)
	}

	// Again: the failed one is reset, nobody twice.
	versions := map[string]int{s.Tenants[0].TenantID: versionOf(t, s, s.Tenants[0].TenantID)}
	if r := do(t, s, "POST", compromisePath, admin, string(body)); r.Status != 202 {
		t.Fatalf("second run: %d %s", r.Status, r.Raw)
	}
	got = outcomes(waitResponse(t, s, admin))
	if got[down.TenantID] != "reset" || got[s.Tenants[0].TenantID] != "already_reset" || got[s.Tenants[2].TenantID] != "already_reset" {
		t.Fatalf("second run outcomes %v", got)
	}
	if v := versionOf(t, s, s.Tenants[0].TenantID); v != versions[s.Tenants[0].TenantID] {
		t.Fatal("the second run reset a tenant again")
	}
	for i, tn := range s.Tenants[:3] {
		pw := do(t, s, "GET", credPath(tn.TenantID), admin, "").Body["password"].(string)
		if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, user(i), pw, nil); err != nil {
			t.Fatalf("tenant %d: the served password does not log in after the response: %v", i, err)
		}
	}
	audit := s.AuditLog.String()
	if strings.Count(audit, `"event":"credential_compromise_response"`) != 4 || !strings.Contains(audit, `"phase":"finished"`) {
		t.Fatalf("want a start and an end record of credential_compromise_response for each run")
	}
}

// TestForgedResetJobs (issue 20, defect 2), black-box through the
// emergency-reset function: a reset queue message, or a direct
// invocation, that names no compromise response recorded by the route
// resets nobody, writes nothing, and cannot reach another tenant's record
// through its ids.
func TestForgedResetJobs(t *testing.T) {
	s := devenv.StartTestStack(t, 2)
	ctx := context.Background()
	admin := token(t, s, auth.RolePlatformAdmin)
	victim := s.Tenants[0].TenantID
	before := do(t, s, "GET", credPath(victim), admin, "")
	version := versionOf(t, s, victim)

	// A real response of another incident, over the other tenant only.
	body, _ := json.Marshal(map[string]any{"tenant_ids": []string{s.Tenants[1].TenantID}, "reason": "drill"})
	started := do(t, s, "POST", compromisePath, admin, string(body))
	if started.Status != 202 {
		t.Fatalf("start: %d %s", started.Status, started.Raw)
	}
	waitResponse(t, s, admin)
	realID := started.Body["response_id"].(string)

	forged := []string{
		// The black-box reproduction of issue 20: the outcome of a job for
		// "tenant" admin went to incidents/INC-T2/runs/../../../<victim>/admin,
		// the victim's credential.
		`{"incident_id":"INC-T2","tenant_id":"admin","response_id":"../../../` + victim + `","requested_by":"mallory"}`,
		`{"incident_id":"INC-T2","response_id":"../../../` + victim + `","chunk":0}`,
		`{"incident_id":"INC-T2","tenant_id":"` + victim + `","response_id":"../../../` + victim + `","requested_by":"mallory"}`,
		`{"incident_id":"INC-T2","tenant_id":"` + victim + `","response_id":"","requested_by":"mallory"}`,
		`{"incident_id":"INC-T2","response_id":"0b9e7c52-1d2a-4f3b-8c4d-5e6f7a8b9c0d","chunk":0}`,
		`{"incident_id":"INC-7","response_id":"` + realID + `","chunk":9}`,
		`{"incident_id":"INC-T2","response_id":"` + realID + `","chunk":0}`,
		`{"incident_id":"../` + victim + `","response_id":"` + realID + `","chunk":0}`,
	}
	sqs := events.SQSEvent{}
	for i, b := range forged {
		sqs.Records = append(sqs.Records, events.SQSMessage{MessageId: fmt.Sprint("forged-", i), Body: b, EventSource: "aws:sqs"})
	}
	raw, _ := json.Marshal(sqs)
	out, err := s.Gateway.Invoke(ctx, "emergency-reset", raw)
	if err != nil {
		t.Fatalf("emergency-reset on forged messages: %v", err)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("forged messages should be dropped, not retried: %s", out)
	}
	for _, b := range forged {
		if _, err := s.Gateway.Invoke(ctx, "emergency-reset", []byte(b)); err == nil {
			t.Fatalf("a direct invocation with a forged job was accepted: %s", b)
		}
	}
	after := do(t, s, "GET", credPath(victim), admin, "")
	if after.Status != 200 || after.Body["password"] != before.Body["password"] || versionOf(t, s, victim) != version {
		t.Fatalf("a forged job changed the victim's credential: %d %s", after.Status, after.Raw)
	}
	if r := do(t, s, "GET", "/api/v1/platform-admin/incidents/INC-T2/compromise-response", admin, ""); r.Status != 404 {
		t.Fatalf("a forged job recorded a response: %d %s", r.Status, r.Raw)
	}
	if strings.Contains(s.AuditLog.String(), `"user_id":"mallory"`) || strings.Contains(s.AuditLog.String(), `"incident_id":"INC-T2"`) {
		t.Fatal("a forged job reached the audit trail as an action")
	}
}
