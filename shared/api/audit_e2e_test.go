package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/alert"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/notify"
)

// These tests show the audit trail end to end: the retrieve route through
// the gateway, the Object Lock bucket on the real S3 server, the query
// route, the verify invocation and the alert rules.

// chainRecords reads a tenant's records from the bucket, newest first.
func chainRecords(t *testing.T, s *devenv.TestStack, tenant string) []audit.Record {
	t.Helper()
	c := s.S3.Client()
	out, err := c.ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(devenv.AuditBucket), Prefix: aws.String(audit.ChainPrefix(tenant))})
	if err != nil {
		t.Fatal(err)
	}
	var recs []audit.Record
	for _, o := range out.Contents {
		obj, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(devenv.AuditBucket), Key: o.Key})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(obj.Body)
		obj.Body.Close()
		var r audit.Record
		if err := json.Unmarshal(b, &r); err != nil {
			t.Fatalf("%s: %v", aws.ToString(o.Key), err)
		}
		recs = append(recs, r)
	}
	return recs
}

// daytime moves the functions' clock forward to the next 12:00 UTC, so
// the night rule stays out of tests of the others.
func daytime(s *devenv.TestStack) { s.Clock.AdvanceToHour(12) }

func alertsOf(s *devenv.TestStack, rule string) []notify.Message {
	var out []notify.Message
	for _, m := range s.Notifications.Messages() {
		if m.Kind == notify.KindSecurityAlert && m.Attrs["rule"] == rule {
			out = append(out, m)
		}
	}
	return out
}

// TestRetrieveLeavesALockedAuditObject: a retrieve creates a record in the
// bucket that can be neither deleted nor overwritten before its retention
// date, and that holds no password.
func TestRetrieveLeavesALockedAuditObject(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	daytime(s)
	ctx := context.Background()
	tn := s.Tenants[0]
	r := do(t, s, "GET", credPath(tn.TenantID), token(t, s, auth.RoleSupport), "", "User-Agent", "audit-e2e")
	if r.Status != 200 {
		t.Fatalf("retrieve: %d %s", r.Status, r.Raw)
	}
	pw := r.Body["password"].(string)
	recs := chainRecords(t, s, tn.TenantID)
	if len(recs) == 0 || recs[0].Event.Event != audit.CredentialsAccessed || recs[0].UserAgent != "audit-e2e" || recs[0].UserID != s.UserWithRole(auth.RoleSupport) {
		t.Fatalf("newest record of the tenant is not the access: %+v", recs)
	}
	if recs[0].Seq != uint64(len(recs)) || recs[0].PrevHash == audit.GenesisHash {
		t.Fatalf("the access is not chained after the store: seq %d of %d", recs[0].Seq, len(recs))
	}
	c := s.S3.Client()
	key := audit.ChainKey(tn.TenantID, recs[0].Seq)
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if head.ObjectLockMode != s3types.ObjectLockModeCompliance || aws.ToTime(head.ObjectLockRetainUntilDate).Before(time.Now().AddDate(6, 11, 0)) {
		t.Fatalf("object lock %s until %v, want COMPLIANCE for %d years", head.ObjectLockMode, aws.ToTime(head.ObjectLockRetainUntilDate), s.App.Config.AuditRetentionYears)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(key), VersionId: head.VersionId}); err == nil {
		t.Fatal("the audit record of a retrieve was deleted")
	}
	_, _ = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(key), Body: strings.NewReader(`{}`)})
	orig, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(key), VersionId: head.VersionId})
	if err != nil {
		t.Fatalf("the original version is gone after an overwrite: %v", err)
	}
	b, _ := io.ReadAll(orig.Body)
	orig.Body.Close()
	if !strings.Contains(string(b), `"event":"smtp_credentials_accessed"`) {
		t.Fatalf("the original version changed: %s", b)
	}
	text := s.S3.BucketText(t, devenv.AuditBucket)
	if strings.Contains(text, pw) || strings.Contains(text, s.S3.SecretKey) || strings.Contains(text, tn.MailUToken) {
		t.Fatal("a secret is in the audit bucket")
	}
	// The verifier reports the overwrite attempt.
	out, err := s.Gateway.Invoke(ctx, "audit", []byte(`{"action":"verify","tenant_id":"`+tn.TenantID+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var rep audit.Report
	if err := json.Unmarshal(out, &rep); err != nil || rep.Intact || rep.Break == nil || rep.Break.Key != key {
		t.Fatalf("verify after an overwrite attempt: %s (%v)", out, err)
	}
}

// TestRetrieveFailsClosedWithTheS3ServerStopped: no audit object, no
// password, nothing changed; once S3 is back, retrieve works and the chain
// is intact.
func TestRetrieveFailsClosedWithTheS3ServerStopped(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	daytime(s)
	ctx := context.Background()
	tn := s.Tenants[0]
	support := token(t, s, auth.RoleSupport)
	admin := token(t, s, auth.RolePlatformAdmin)
	pw, _ := do(t, s, "GET", credPath(tn.TenantID), support, "").Body["password"].(string)
	stored := func() string {
		sec, err := s.Vault.Root().KVv2("smtp").Get(ctx, tn.TenantID+"/admin")
		if err != nil {
			t.Fatal(err)
		}
		return sec.Data["password"].(string)
	}
	before := stored()
	records := len(chainRecords(t, s, tn.TenantID))

	if err := s.S3.Stop(); err != nil {
		t.Fatal(err)
	}
	r := do(t, s, "GET", credPath(tn.TenantID), support, "")
	if r.Status != 503 || r.code() != "audit_unavailable" || strings.Contains(r.Raw, pw) || r.Body["password"] != nil {
		t.Fatalf("retrieve with S3 down: %d %s", r.Status, r.Raw)
	}
	in := s.StoreEvent(tn)
	body, _ := json.Marshal(map[string]string{"domain": in.Domain, "webmail_url": in.WebmailURL, "mailu_api_url": in.MailUAPIURL, "smtp_addr": in.SMTPAddr})
	// A store that would change nothing is refused too: it cannot be
	// audited.
	if r := do(t, s, "POST", credPath(tn.TenantID), admin, string(body)); r.Status != 503 || r.code() != "audit_unavailable" {
		t.Fatalf("unchanged store with S3 down: %d %s", r.Status, r.Raw)
	}
	// A store that has something to change (MailU lost the admin) is
	// not promoted.
	if err := mailu.New(tn.MailU.APIURL, tn.MailUToken, nil).DeleteUser(ctx, "admin@"+in.Domain); err != nil {
		t.Fatal(err)
	}
	if r := do(t, s, "POST", credPath(tn.TenantID), admin, string(body)); r.Status != 503 {
		t.Fatalf("store with S3 down: %d %s", r.Status, r.Raw)
	}
	if r := do(t, s, "GET", credPath(tn.TenantID)+"/audit", support, ""); r.Status != 503 || r.code() != "audit_unavailable" {
		t.Fatalf("audit query with S3 down: %d %s", r.Status, r.Raw)
	}
	if stored() != before {
		t.Fatal("the credential Vault serves changed while nothing could be audited")
	}

	if err := s.S3.Start(ctx); err != nil {
		t.Fatal(err)
	}
	// Nothing reached MailU while nothing could be audited: the refused
	// store recorded its password as pending but never set it
	// (smtp_credentials_change_started is written before MailU is
	// touched), so MailU still lacks the admin it lost.
	if _, err := mailu.New(tn.MailU.APIURL, tn.MailUToken, nil).GetUser(ctx, "admin@"+in.Domain); !errors.Is(err, mailu.ErrNotFound) {
		t.Fatalf("MailU changed while the audit trail was down: %v", err)
	}
	if got := len(chainRecords(t, s, tn.TenantID)); got != records {
		t.Fatalf("%d records after the outage, want %d (nothing from the refused requests)", got, records)
	}
	// Once S3 is back, the store finishes what it left and the retrieve
	// serves a password that logs in.
	if r := do(t, s, "POST", credPath(tn.TenantID), admin, string(body)); r.Status != 200 && r.Status != 201 {
		t.Fatalf("store once S3 is back: %d %s", r.Status, r.Raw)
	}
	r = do(t, s, "GET", credPath(tn.TenantID), support, "")
	pw2, _ := r.Body["password"].(string)
	if r.Status != 200 || pw2 == "" {
		t.Fatalf("retrieve once S3 is back: %d %s", r.Status, r.Raw)
	}
	if err := mailu.VerifyLogin(ctx, tn.MailU.SMTPAddr, "admin@"+in.Domain, pw2, nil); err != nil {
		t.Fatalf("the password served once S3 is back does not log in: %v", err)
	}
	out, err := s.Gateway.Invoke(ctx, "audit", []byte(`{"action":"verify","tenant_id":"`+tn.TenantID+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	var rep audit.Report
	if err := json.Unmarshal(out, &rep); err != nil || !rep.Intact {
		t.Fatalf("verify after the outage: %s (%v)", out, err)
	}
	// The S3 errors were logged; the keys that sign S3 requests were not.
	if !strings.Contains(s.Log.String(), "audit_unavailable") {
		t.Error("the refused retrieve was not logged")
	}
	for where, text := range map[string]string{"the function logs": s.Log.String(), "the audit stream": s.AuditLog.String(), "the audit bucket": s.S3.BucketText(t, devenv.AuditBucket)} {
		if strings.Contains(text, s.S3.SecretKey) || strings.Contains(text, pw) || strings.Contains(text, pw2) {
			t.Errorf("a secret (S3 secret key or password) is in %s", where)
		}
	}
}

func TestAuditQueryRoute(t *testing.T) {
	s := devenv.StartTestStack(t, 2)
	daytime(s)
	tn, other := s.Tenants[0], s.Tenants[1]
	support := token(t, s, auth.RoleSupport)
	admin := token(t, s, auth.RolePlatformAdmin)
	for _, tok := range []string{support, admin, support} {
		if r := do(t, s, "GET", credPath(tn.TenantID), tok, "", "User-Agent", "query-e2e"); r.Status != 200 {
			t.Fatalf("retrieve: %d %s", r.Status, r.Raw)
		}
	}
	if r := do(t, s, "GET", credPath(other.TenantID), admin, ""); r.Status != 200 {
		t.Fatalf("retrieve: %d %s", r.Status, r.Raw)
	}
	q := func(tok, params string) response {
		t.Helper()
		return do(t, s, "GET", credPath(tn.TenantID)+"/audit"+params, tok, "")
	}
	events := func(r response) []map[string]any {
		var out []map[string]any
		for _, e := range r.Body["events"].([]any) {
			out = append(out, e.(map[string]any))
		}
		return out
	}

	supportUser := s.UserWithRole(auth.RoleSupport)
	r := q(support, "?event=smtp_credentials_accessed&user="+url.QueryEscape(supportUser)+"&per_page=1")
	if r.Status != 200 || r.Body["total"] != float64(2) || r.Body["page"] != float64(1) || r.Body["per_page"] != float64(1) {
		t.Fatalf("filtered query: %d %s", r.Status, r.Raw)
	}
	if ev := events(r); len(ev) != 1 || ev[0]["user_id"] != supportUser || ev[0]["user_agent"] != "query-e2e" || ev[0]["tenant_id"] != tn.TenantID {
		t.Fatalf("filtered query events: %s", r.Raw)
	}
	all := q(admin, "")
	evs := events(all)
	if all.Status != 200 || len(evs) < 4 {
		t.Fatalf("unfiltered query: %d %s", all.Status, all.Raw)
	}
	for i := 1; i < len(evs); i++ {
		a, _ := time.Parse(time.RFC3339Nano, evs[i-1]["timestamp"].(string))
		b, _ := time.Parse(time.RFC3339Nano, evs[i]["timestamp"].(string))
		if a.Before(b) {
			t.Fatalf("events are not newest first: %v before %v", a, b)
		}
		if evs[i]["tenant_id"] != tn.TenantID {
			t.Fatalf("another tenant's event: %v", evs[i])
		}
	}
	// The previous query is itself in the trail, with who asked.
	if evs[0]["event"] != audit.AuditTrailQueried || evs[0]["user_id"] != supportUser {
		t.Fatalf("the query was not audited: newest event %v", evs[0])
	}
	if r := q(admin, "?from="+url.QueryEscape(s.Clock.Now().Add(time.Hour).Format(time.RFC3339))); r.Status != 200 || r.Body["total"] != float64(0) || len(events(r)) != 0 {
		t.Fatalf("query of the future: %d %s", r.Status, r.Raw)
	}

	for _, c := range []struct{ params, code string }{
		{"?per_page=0", "invalid_per_page"},
		{"?per_page=201", "invalid_per_page"},
		{"?page=-1", "invalid_page"},
		{"?page=x", "invalid_page"},
		{"?from=yesterday", "invalid_time"},
		{"?from=2025-02-01T00:00:00Z&to=2025-01-01T00:00:00Z", "invalid_time_range"},
		{"?event=DROP%20TABLE", "invalid_event"},
		{"?user=" + strings.Repeat("u", 300), "invalid_user"},
		{"?sort=asc", "unknown_parameter"},
	} {
		if r := q(admin, c.params); r.Status != 400 || r.code() != c.code {
			t.Errorf("query %s: %d %s, want 400 %s", c.params, r.Status, r.Raw, c.code)
		}
	}
	if r := do(t, s, "GET", credPath("not-a-tenant")+"/audit", admin, ""); r.Status != 400 {
		t.Errorf("malformed tenant id: %d %s", r.Status, r.Raw)
	}
	if !strings.Contains(s.AuditLog.String(), `"event":"audit_trail_queried"`) {
		t.Error("no audit_trail_queried in the audit stream")
	}
}

// TestVerifyInvocationReportsAnIntactChain: the audit function's verify
// invocation (events/audit-verify.json) on a demo tenant.
func TestVerifyInvocationReportsAnIntactChain(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	daytime(s)
	tn := s.Tenants[0]
	for range 3 {
		if r := do(t, s, "GET", credPath(tn.TenantID), token(t, s, auth.RoleSupport), ""); r.Status != 200 {
			t.Fatalf("retrieve: %d %s", r.Status, r.Raw)
		}
	}
	out, err := s.Gateway.Invoke(context.Background(), "audit", []byte(`{"action":"verify","tenant_id":"`+tn.TenantID+`","requested_by":"e2e"}`))
	if err != nil {
		t.Fatal(err)
	}
	var rep audit.Report
	if err := json.Unmarshal(out, &rep); err != nil || !rep.Intact || rep.Records < 4 || rep.HeadSeq != uint64(rep.Records) || rep.Chain != tn.TenantID {
		t.Fatalf("verify: %s (%v)", out, err)
	}
	for _, bad := range []string{`{"action":"verify","tenant_id":"x"}`, `{"action":"drop"}`, `{"action":"verify","chain":"../x"}`, `not json`} {
		if _, err := s.Gateway.Invoke(context.Background(), "audit", []byte(bad)); err == nil {
			t.Errorf("invocation %s accepted", bad)
		}
	}
	if !strings.Contains(s.AuditLog.String(), `"event":"audit_chain_verified"`) {
		t.Error("verification not audited")
	}
}

// TestSixAccessesWithinAnHourAlertOnce: the sixth access by one user
// within an hour alerts once; the seventh does not alert again.
func TestSixAccessesWithinAnHourAlertOnce(t *testing.T) {
	s := devenv.StartTestStack(t, 2)
	daytime(s)
	support := token(t, s, auth.RoleSupport)
	admin := token(t, s, auth.RolePlatformAdmin)
	var pws seen
	for i := range 7 {
		// Across tenants: the rule counts the user's accesses.
		r := do(t, s, "GET", credPath(s.Tenants[i%2].TenantID), support, "")
		if r.Status != 200 {
			t.Fatalf("retrieve %d: %d %s", i+1, r.Status, r.Raw)
		}
		pws.add(r.Body["password"].(string))
		want := 0
		if i >= 5 {
			want = 1
		}
		if got := len(alertsOf(s, alert.RuleAccessBurst)); got != want {
			t.Fatalf("after %d accesses: %d burst alerts, want %d", i+1, got, want)
		}
		s.Clock.Shift(time.Minute)
	}
	a := alertsOf(s, alert.RuleAccessBurst)[0]
	if a.Attrs["user_id"] != s.UserWithRole(auth.RoleSupport) || a.Attrs["count"] != "6" || a.Kind != notify.KindSecurityAlert {
		t.Fatalf("alert %+v", a)
	}
	// Another user's accesses are counted apart.
	for range 2 {
		if r := do(t, s, "GET", credPath(s.Tenants[0].TenantID), admin, ""); r.Status != 200 {
			t.Fatal(r.Raw)
		}
	}
	if got := len(alertsOf(s, alert.RuleAccessBurst)); got != 1 {
		t.Fatalf("%d burst alerts after another user's accesses, want 1", got)
	}
	// Two hours later the burst is over: a new one alerts again.
	s.Clock.Shift(2 * time.Hour)
	support2, rt, err := s.ReauthAs(auth.RoleSupport)
	if err != nil {
		t.Fatal(err)
	}
	for range 6 {
		if r := do(t, s, "GET", credPath(s.Tenants[0].TenantID), support2, "", "X-Reauth-Token", rt); r.Status != 200 {
			t.Fatal(r.Raw)
		}
	}
	if got := len(alertsOf(s, alert.RuleAccessBurst)); got != 2 {
		t.Fatalf("%d burst alerts after a second burst, want 2", got)
	}
	if n := len(alertsOf(s, alert.RuleNightAccess)); n != 0 {
		t.Fatalf("%d night alerts at noon", n)
	}
	raw, _ := json.Marshal(s.Notifications.Messages())
	pws.assertAbsent(t, "the notifications", string(raw))
}

func TestNightAccessAlertsOncePerNight(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	s.Clock.AdvanceToHour(23)
	s.Clock.Shift(10 * time.Minute)
	support := token(t, s, auth.RoleSupport)
	for range 2 {
		if r := do(t, s, "GET", credPath(s.Tenants[0].TenantID), support, ""); r.Status != 200 {
			t.Fatal(r.Raw)
		}
	}
	got := alertsOf(s, alert.RuleNightAccess)
	if len(got) != 1 || got[0].TenantID != s.Tenants[0].TenantID || got[0].Attrs["user_id"] != s.UserWithRole(auth.RoleSupport) {
		t.Fatalf("night alerts: %+v", got)
	}
}

func TestFailedAuthenticationsAlertOnce(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	daytime(s)
	admin := s.UserWithRole(auth.RolePlatformAdmin)
	jwt, err := s.Token(admin)
	if err != nil {
		t.Fatal(err)
	}
	// Wrong re-auth passwords: authentication_failed with the user. (A
	// request without a valid bearer token never reaches a function: the
	// JWT authorizer refuses it, in AWS as locally.)
	for i := range 5 {
		r := send(t, s, "POST", "/api/v1/platform-admin/reauth", `{"password":"wrong-`+fmt.Sprint(i)+`","totp_code":"000000"}`, bearer(jwt))
		if r.Status != 401 && r.Status != 429 {
			t.Fatalf("wrong re-auth: %d %s", r.Status, r.Raw)
		}
	}
	got := alertsOf(s, alert.RuleAuthFailures)
	if len(got) != 1 || got[0].Attrs["user_id"] != admin {
		t.Fatalf("failed-authentication alerts: %+v\n%s", got, s.AuditLog.String())
	}
}

// TestEmergencyResetWithoutIncidentAlerts records what the emergency-reset
// function emits (its issue wires it): the refusal of a request without
// incident_id, and a reset event missing one.
func TestEmergencyResetWithoutIncidentAlerts(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	daytime(s)
	ctx := context.Background()
	tn := s.Tenants[0].TenantID
	admin := s.UserWithRole(auth.RolePlatformAdmin)
	for _, e := range []audit.Event{
		{Event: audit.RequestRejected, TenantID: tn, UserID: admin, Severity: audit.Warning, Details: map[string]any{"action": alert.EmergencyResetAction, "status": 422, "code": alert.CodeIncidentIDRequired}},
		{Event: audit.CredentialsEmergencyReset, TenantID: tn, UserID: admin, Severity: audit.Critical, Details: map[string]any{"reason": "no incident"}},
		{Event: audit.CredentialsEmergencyReset, TenantID: tn, UserID: admin, Severity: audit.Critical, Details: map[string]any{"incident_id": "INC-7", "reason": "leak"}},
	} {
		if err := s.App.Audit.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if got := alertsOf(s, alert.RuleResetWithoutIncident); len(got) != 2 || got[0].TenantID != tn {
		t.Fatalf("reset-without-incident alerts: %+v", got)
	}
}
