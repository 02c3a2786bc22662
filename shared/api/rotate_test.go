package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
)

func TestManualRotation(t *testing.T) {
	s := devenv.StartTestStack(t, 2)
	tn := s.Tenants[0]
	ctx := context.Background()
	var pws seen
	admin := token(t, s, auth.RolePlatformAdmin)
	retrieve := func() string {
		r := do(t, s, "GET", credPath(tn.TenantID), admin, "")
		if r.Status != 200 {
			t.Fatalf("retrieve: %d %s", r.Status, r.Raw)
		}
		pw, _ := r.Body["password"].(string)
		pws.add(pw)
		return pw
	}
	before := retrieve()
	rotate := func(body string) response { return do(t, s, "POST", credPath(tn.TenantID)+"/rotate", admin, body) }

	// The seeding store changed the password moments ago: the cool-down.
	r := rotate(`{"reason":"too soon"}`)
	if r.Status != 409 || r.code() != "rotation_cooldown" || r.Header.Get("Retry-After") == "" {
		t.Fatalf("rotation right after the store: %d %s (Retry-After %q)", r.Status, r.Raw, r.Header.Get("Retry-After"))
	}
	if wait, _ := strconv.Atoi(r.Header.Get("Retry-After")); wait < 1 || wait > int(credential.DefaultCooldown/time.Second)+1 {
		t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
	}
	s.Clock.Shift(credential.DefaultCooldown)

	for _, c := range []struct{ body, code string }{
		{`{}`, "reason_required"},
		{`{"reason":"   "}`, "reason_required"},
		{`{"reason":"` + strings.Repeat("x", 501) + `"}`, "invalid_reason"},
		{`{"reason":"a\nb"}`, "invalid_reason"},
		{`{"reason":"x","force":true}`, "unknown_field"},
		{`not json`, "invalid_json"},
	} {
		if r := rotate(c.body); r.Status != 400 || r.code() != c.code {
			t.Fatalf("body %.40q: %d %s, want 400 %s", c.body, r.Status, r.Raw, c.code)
		}
	}
	if r := do(t, s, "POST", credPath("not-a-uuid")+"/rotate", admin, `{"reason":"x"}`); r.Status != 400 {
		t.Fatalf("bad tenant id: %d %s", r.Status, r.Raw)
	}
	if r := do(t, s, "POST", credPath("7c9e6679-7425-40de-944b-e07fc1f90ae7")+"/rotate", admin, `{"reason":"x"}`); r.Status != 404 || r.code() != "not_found" {
		t.Fatalf("unknown tenant: %d %s", r.Status, r.Raw)
	}
	if retrieve() != before {
		t.Fatal("a refused rotation changed the password")
	}

	// A rotation in progress (its lock held) refuses a second one.
	kv := s.Vault.Root().KVv2(devenv.KVMount)
	lockPath := credential.LockPath(tn.TenantID)
	md, err := kv.GetMetadata(ctx, lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, lockPath, map[string]any{"owner": "other-run", "purpose": "rotate", "expires_at": s.Clock.Now().Add(time.Minute).UTC().Format(time.RFC3339Nano)}, vaultapi.WithCheckAndSet(md.CurrentVersion)); err != nil {
		t.Fatal(err)
	}
	if r := rotate(`{"reason":"while another runs"}`); r.Status != 409 || r.code() != "conflict" {
		t.Fatalf("rotation while another runs: %d %s", r.Status, r.Raw)
	}
	s.Clock.Shift(time.Minute + time.Second) // that run's lock expires

	r = rotate(`{"reason":"quarterly review"}`)
	if r.Status != 200 || r.Body["outcome"] != "rotated" {
		t.Fatalf("rotation: %d %s", r.Status, r.Raw)
	}
	last, err1 := time.Parse(time.RFC3339, r.Body["last_rotated"].(string))
	next, err2 := time.Parse(time.RFC3339, r.Body["next_rotation"].(string))
	if err1 != nil || err2 != nil || next.Sub(last) != 180*24*time.Hour || s.Clock.Now().Sub(last) > time.Minute {
		t.Fatalf("last_rotated/next_rotation: %s", r.Raw)
	}
	if strings.Contains(r.Raw, "password") {
		t.Fatal("the rotation answer mentions a password")
	}
	after := retrieve()
	if after == before {
		t.Fatal("the password did not change")
	}
	user := "admin@" + tn.Domain
	if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, user, after, nil); err != nil {
		t.Fatalf("the new password does not log in: %v", err)
	}
	if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, user, before, nil); !errors.Is(err, mailu.ErrAuthFailed) {
		t.Fatalf("the old password still logs in: %v", err)
	}
	var ev map[string]any
	for _, line := range strings.Split(s.AuditLog.String(), "\n") {
		if strings.Contains(line, `"event":"smtp_credentials_rotated"`) {
			_ = json.Unmarshal([]byte(line), &ev)
		}
	}
	d, _ := ev["details"].(map[string]any)
	if ev == nil || ev["tenant_id"] != tn.TenantID || ev["user_id"] != s.UserWithRole(auth.RolePlatformAdmin) || ev["ip"] == "" ||
		d["reason"] != "quarterly review" || d["trigger"] != "manual" {
		t.Fatalf("smtp_credentials_rotated event: %v", ev)
	}
	// Support staff may not rotate, and the refusal is audited.
	if r := do(t, s, "POST", credPath(tn.TenantID)+"/rotate", token(t, s, auth.RoleSupport), `{"reason":"x"}`); r.Status != 403 {
		t.Fatalf("support rotates: %d %s", r.Status, r.Raw)
	}
	pws.assertAbsent(t, "the audit stream", s.AuditLog.String())
	pws.assertAbsent(t, "the function logs", s.Log.String())
	pws.assertAbsent(t, "the Vault audit log", readFile(t, filepath.Join(s.Vault.Dir, "vault-audit.log")))
}

func TestOverviewAndRotateOverdue(t *testing.T) {
	s := devenv.StartTestStack(t, 3)
	admin := token(t, s, auth.RolePlatformAdmin)
	list := func(query string) response {
		return do(t, s, "GET", "/api/v1/platform-admin/smtp-credentials"+query, admin, "")
	}
	total := func(query string) int {
		t.Helper()
		r := list(query)
		if r.Status != 200 {
			t.Fatalf("overview %s: %d %s", query, r.Status, r.Raw)
		}
		return int(r.Body["total"].(float64))
	}
	for _, c := range []struct{ query, code string }{
		{"?status=late", "invalid_status"},
		{"?status=", "invalid_status"},
		{"?page=0", "invalid_page"},
		{"?page=x", "invalid_page"},
		{"?per_page=0", "invalid_per_page"},
		{"?per_page=101", "invalid_per_page"},
		{"?sort=due", "unknown_parameter"},
	} {
		if r := list(c.query); r.Status != 400 || r.code() != c.code {
			t.Fatalf("overview %s: %d %s, want 400 %s", c.query, r.Status, r.Raw, c.code)
		}
	}
	r := list("?per_page=2&page=1")
	items, _ := r.Body["credentials"].([]any)
	if r.Status != 200 || len(items) != 2 || r.Body["total"].(float64) != 3 || r.Body["page"].(float64) != 1 || r.Body["per_page"].(float64) != 2 {
		t.Fatalf("overview page 1: %d %s", r.Status, r.Raw)
	}
	first := items[0].(map[string]any)
	if first["status"] != "ok" || first["rotation_state"] != "current" || first["days_until_due"].(float64) != 180 ||
		!strings.HasPrefix(first["username"].(string), "admin@") || !strings.HasPrefix(first["webmail_url"].(string), "https://mail.") {
		t.Fatalf("overview item: %v", first)
	}
	if strings.Contains(r.Raw, "password") {
		t.Fatal("the overview mentions a password")
	}
	if r := list("?per_page=2&page=2"); len(r.Body["credentials"].([]any)) != 1 {
		t.Fatalf("overview page 2: %s", r.Raw)
	}
	if total("?status=ok") != 3 || total("?status=overdue") != 0 || total("?status=compromised") != 0 {
		t.Fatal("fresh credentials are not all ok")
	}
	// Each listing is audited on the platform chain with who asked and
	// what; the refused ones are request_rejected instead.
	viewed := platformEvents(t, s, audit.OverviewViewed)
	if len(viewed) != 5 {
		t.Fatalf("%d overview_viewed records for 5 listings", len(viewed))
	}
	for _, e := range viewed {
		if e.UserID != s.UserWithRole(auth.RolePlatformAdmin) || e.TenantID != "" {
			t.Fatalf("overview record: %+v", e)
		}
	}
	if filtered := platformEvents(t, s, audit.OverviewViewed)[0]; filtered.Details["filter_status"] != "compromised" || filtered.Details["total"] != float64(0) {
		t.Fatalf("newest overview record: %+v", filtered)
	}

	s.Clock.Shift(175 * 24 * time.Hour)
	admin, rt := timeTravelSession(t, s)
	if total("?status=due_soon") != 3 {
		t.Fatal("credentials due in 5 days are not due_soon")
	}
	s.Clock.Shift(6 * 24 * time.Hour)
	admin, rt = timeTravelSession(t, s) // the last re-auth token expired meanwhile
	if total("?status=overdue") != 3 {
		t.Fatal("credentials 181 days old are not overdue")
	}
	r = do(t, s, "POST", "/api/v1/platform-admin/smtp-credentials/rotate-overdue", admin, `{"reason":"catch up"}`, "X-Reauth-Token", rt)
	if r.Status != 200 || r.Body["overdue"].(float64) != 3 || r.Body["queued"].(float64) != 3 {
		t.Fatalf("rotate-overdue: %d %s", r.Status, r.Raw)
	}
	if err := s.RotateQueue.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	// The console answers from a read of the status index up to
	// INDEX_CACHE_TTL old: the rotations show within it.
	for deadline := time.Now().Add(s.Apps["console"].Config.IndexCacheTTL + 5*time.Second); total("?status=overdue") != 0 || total("?status=ok") != 3; {
		if time.Now().After(deadline) {
			t.Fatal("rotate-overdue left overdue credentials")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Search by domain (any case) or part of the tenant id, and the
	// failing filter, all from the status index.
	tn := s.Tenants[1]
	r = list("?q=" + strings.ToUpper(tn.Domain))
	if items, _ := r.Body["credentials"].([]any); r.Status != 200 || len(items) != 1 ||
		items[0].(map[string]any)["tenant_id"] != tn.TenantID || items[0].(map[string]any)["domain"] != tn.Domain {
		t.Fatalf("search by domain %s: %d %s", tn.Domain, r.Status, r.Raw)
	}
	if total("?q="+tn.TenantID[9:23]) != 1 || total("?q=no-such-tenant.invalid") != 0 || total("?status=failing") != 0 {
		t.Fatal("search by tenant id, a search matching nothing or the failing filter is wrong")
	}
	if r := list("?q=a%00b"); r.Status != 400 || r.code() != "invalid_search" {
		t.Fatalf("a search with a control character: %d %s", r.Status, r.Raw)
	}
	for _, tn := range s.Tenants {
		v, err := s.App.API.Credentials.Retrieve(context.Background(), tn.TenantID, credential.Actor{UserID: "test"})
		if err != nil {
			t.Fatal(err)
		}
		if err := mailu.VerifyLogin(context.Background(), tn.MailU.SMTPAddr, v.Username, v.Password, nil); err != nil {
			t.Fatalf("after rotate-overdue the password of %s does not log in: %v", tn.TenantID, err)
		}
	}
	// The request itself is on the platform chain, before its rotations.
	bulk := platformEvents(t, s, audit.BulkRotationRequested)
	if len(bulk) != 1 || bulk[0].UserID != s.UserWithRole(auth.RolePlatformAdmin) || bulk[0].Details["reason"] != "catch up" || bulk[0].Details["overdue"] != float64(3) {
		t.Fatalf("the bulk request's audit records: %+v", bulk)
	}
	if c := strings.Count(s.AuditLog.String(), `"reason":"catch up"`); c != 1+3 {
		t.Fatalf("%d events carry the bulk request's reason, want 4 (the request and its 3 rotations)", c)
	}
	if c := strings.Count(s.AuditLog.String(), `"trigger":"bulk"`); c != 3 {
		t.Fatalf("%d bulk rotations audited, want 3", c)
	}
	// Nothing overdue any more: a second bulk request does nothing.
	r = do(t, s, "POST", "/api/v1/platform-admin/smtp-credentials/rotate-overdue", admin, `{}`, "X-Reauth-Token", rt)
	if r.Status != 200 || r.Body["overdue"].(float64) != 0 {
		t.Fatalf("second rotate-overdue: %d %s", r.Status, r.Raw)
	}
}

// TestRotateQueueMessages invokes the rotate function with SQS batches as
// RotateQueueMapping would: a malformed message is dropped, a rotation
// that cannot run now (MailU down) is reported for redelivery, a job for
// a credential not due changes nothing.
func TestRotateQueueMessages(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	tn := s.Tenants[0]
	ctx := context.Background()
	batch := func(bodies ...string) []string {
		var ev struct {
			Records []map[string]string `json:"Records"`
		}
		for i, b := range bodies {
			ev.Records = append(ev.Records, map[string]string{"messageId": strconv.Itoa(i), "body": b, "eventSource": "aws:sqs"})
		}
		raw, _ := json.Marshal(ev)
		out, err := s.Gateway.Invoke(ctx, "rotate", raw)
		if err != nil {
			t.Fatal(err)
		}
		var resp struct {
			BatchItemFailures []struct {
				ItemIdentifier string `json:"itemIdentifier"`
			} `json:"batchItemFailures"`
		}
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("rotate answered %s", out)
		}
		var failed []string
		for _, f := range resp.BatchItemFailures {
			failed = append(failed, f.ItemIdentifier)
		}
		return failed
	}
	job := `{"tenant_id":"` + tn.TenantID + `","reason":"scheduled"}`
	if f := batch(`not json`, `{"tenant_id":"x","reason":"scheduled"}`, job); len(f) != 0 {
		t.Fatalf("failures %v: malformed messages are dropped, a job not due succeeds", f)
	}
	s.Clock.Shift(181 * 24 * time.Hour)
	if err := s.MailU.SetFaults(ctx, tn.Domain, standinDown()); err != nil {
		t.Fatal(err)
	}
	if f := batch(`not json`, job); len(f) != 1 || f[0] != "1" {
		t.Fatalf("failures %v, want only the job whose MailU is down", f)
	}
	if !strings.Contains(s.AuditLog.String(), `"event":"action_failed"`) || !strings.Contains(s.AuditLog.String(), `"trigger":"schedule"`) {
		t.Fatal("the failed scheduled rotation is not audited")
	}
	if err := s.MailU.SetFaults(ctx, tn.Domain, standinUp()); err != nil {
		t.Fatal(err)
	}
	if f := batch(job); len(f) != 0 {
		t.Fatalf("redelivered job: failures %v", f)
	}
	v, err := s.App.API.Credentials.Retrieve(ctx, tn.TenantID, credential.Actor{UserID: "test"})
	if err != nil || time.Since(v.LastRotated) > 0 {
		t.Fatalf("the redelivered job did not rotate: %v %v", v.LastRotated, err)
	}
	if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, v.Username, v.Password, nil); err != nil {
		t.Fatal(err)
	}
}

func standinDown() mailustandin.Faults { return mailustandin.Faults{Down: true} }
func standinUp() mailustandin.Faults   { return mailustandin.Faults{} }

// timeTravelSession is a platform-admin's bearer token (valid for a year,
// as the dev issuer signs on the real clock) and a re-auth token issued on
// the stack's shifted clock, for tests that move the clock by months.
func timeTravelSession(t *testing.T, s *devenv.TestStack) (bearer, reauthToken string) {
	t.Helper()
	name := s.UserWithRole(auth.RolePlatformAdmin)
	u, _ := s.User(name)
	bearer, err := s.Issuer.Sign(name, u.Roles, 400*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	code, err := s.TOTPCode(name)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"password": u.Password, "totp_code": code})
	r := do(t, s, "POST", "/api/v1/platform-admin/reauth", bearer, string(body))
	rt, _ := r.Body["reauth_token"].(string)
	if r.Status != 200 || rt == "" {
		t.Fatalf("re-authenticate: %d %s", r.Status, r.Raw)
	}
	return bearer, rt
}

// platformEvents returns the events called name on the platform chain in
// the audit bucket, newest first.
func platformEvents(t *testing.T, s *devenv.TestStack, name string) []audit.Event {
	t.Helper()
	var out []audit.Event
	for _, r := range chainRecords(t, s, audit.PlatformChain) {
		if r.Event.Event == name {
			out = append(out, r.Event)
		}
	}
	return out
}
