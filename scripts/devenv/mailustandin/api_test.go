package mailustandin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestAPIStatusMatrix walks MailU's admin API through every status the
// stand-in reproduces. Steps run in order and build on each other.
func TestAPIStatusMatrix(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	ok := bearer(testToken)

	steps := []struct {
		name, method, path, auth, body string
		want                           int
		wantMsg                        string // substring of "message"
		wantCode                       bool   // body carries "code" == status
	}{
		{"no header", "GET", "/user/admin@acme.test", "", "", 401, "A valid Authorization header is mandatory", false},
		{"wrong token", "GET", "/user/admin@acme.test", bearer("wrong-token"), "", 403, "Invalid API token", false},
		{"token without Bearer prefix", "GET", "/user/admin@acme.test", testToken, "", 404, "cannot be found", true},
		{"unknown user", "GET", "/user/admin@acme.test", ok, "", 404, "User admin@acme.test cannot be found", true},
		{"invalid email on GET", "GET", "/user/not-an-email", ok, "", 400, "not a valid email address", true},
		{"unknown route", "GET", "/users", ok, "", 404, "requested URL was not found", false},
		{"wrong method", "PUT", "/user/admin@acme.test", ok, "", 405, "method is not allowed", false},
		{"validation before token check", "POST", "/user", "", `{"email":"admin@acme.test"}`, 400, "Input payload validation failed", false},
		{"malformed JSON", "POST", "/user", ok, `{"email":`, 400, "Failed to decode JSON object", false},
		{"wrong type", "POST", "/user", ok, `{"email":"admin@acme.test","raw_password":"p","quota_bytes":"big"}`, 400, "Input payload validation failed", false},
		{"invalid email", "POST", "/user", ok, `{"email":"admin@","raw_password":"p"}`, 400, "Provided email address admin@ is not a valid email address", true},
		{"unknown domain", "POST", "/user", ok, `{"email":"admin@other.test","raw_password":"p"}`, 404, "Domain other.test does not exist", true},
		{"forward without destination", "POST", "/user", ok, `{"email":"fw@acme.test","raw_password":"p","forward_enabled":true}`, 400, "forward_destination is mandatory", true},
		{"bad reply date", "POST", "/user", ok, `{"email":"r@acme.test","raw_password":"p","reply_startdate":"2024-02-30"}`, 400, "not a valid date", true},
		{"create", "POST", "/user", ok, `{"email":"admin@acme.test","raw_password":"first-pw","global_admin":true,"enabled":true,"comment":"c"}`, 200, "User admin@acme.test has been created", true},
		{"duplicate", "POST", "/user", ok, `{"email":"admin@acme.test","raw_password":"p"}`, 409, "User admin@acme.test already exists", true},
		{"duplicate in other case", "POST", "/user", ok, `{"email":"Admin@ACME.test","raw_password":"p"}`, 409, "already exists", true},
		{"get", "GET", "/user/admin@acme.test", ok, "", 200, "", false},
		{"get in other case", "GET", "/user/ADMIN@acme.test", ok, "", 200, "", false},
		{"patch", "PATCH", "/user/admin@acme.test", ok, `{"raw_password":"second-pw","comment":"rotated"}`, 200, "User admin@acme.test has been updated", true},
		{"patch unknown", "PATCH", "/user/nobody@acme.test", ok, `{"raw_password":"x"}`, 404, "User nobody@acme.test cannot be found", true},
		{"patch invalid email", "PATCH", "/user/nobody", ok, `{"comment":"x"}`, 400, "not a valid email address", true},
		{"patch null", "PATCH", "/user/admin@acme.test", ok, `{"comment":null}`, 400, "Input payload validation failed", false},
		{"patch without content type", "PATCH", "/user/admin@acme.test", ok, "", 415, "Content-Type was not 'application/json'", false},
		{"patch wrong token", "PATCH", "/user/admin@acme.test", bearer("nope"), `{"raw_password":"stolen"}`, 403, "Invalid API token", false},
		{"domain list", "GET", "/domain", ok, "", 200, "", false},
		{"domain get", "GET", "/domain/acme.test", ok, "", 200, "", false},
		{"domain unknown", "GET", "/domain/other.test", ok, "", 404, "Domain other.test does not exist", true},
		{"domain invalid answers 200 like MailU", "GET", "/domain/-bad-", ok, "", 200, "is not a valid domain", false},
		{"domain duplicate", "POST", "/domain", ok, `{"name":"acme.test"}`, 409, "Duplicate domain name acme.test", true},
		{"domain invalid", "POST", "/domain", ok, `{"name":"not a domain"}`, 400, "is not a valid domain", true},
		{"domain min", "POST", "/domain", ok, `{"name":"small.test","max_users":-2}`, 400, "Input payload validation failed", false},
		{"domain create", "POST", "/domain", ok, `{"name":"small.test","max_users":1}`, 200, "Domain small.test has been created", true},
		{"user in new domain", "POST", "/user", ok, `{"email":"a@small.test","raw_password":"p"}`, 200, "created", true},
		{"domain full", "POST", "/user", ok, `{"email":"b@small.test","raw_password":"p"}`, 409, "Too many users for domain small.test", true},
		{"delete", "DELETE", "/user/admin@acme.test", ok, "", 200, "User admin@acme.test has been deleted", true},
		{"delete again", "DELETE", "/user/admin@acme.test", ok, "", 404, "cannot be found", true},
		{"delete without token", "DELETE", "/user/a@small.test", "", "", 401, "mandatory", false},
	}
	for _, st := range steps {
		r := call(t, in, st.method, st.path, st.auth, st.body)
		if r.status != st.want {
			t.Fatalf("%s: %s %s = %d %s, want %d", st.name, st.method, st.path, r.status, r.raw, st.want)
		}
		// MailU 2024.06 shows the password's hash (passlib's form), never
		// the password.
		if got := r.raw; strings.Contains(got, "$2a$") || strings.Contains(got, "-pw") || strings.Contains(got, "stolen") {
			t.Errorf("%s: response carries password material: %s", st.name, got)
		}
		if h, ok := r.body["password"]; ok && !strings.HasPrefix(h.(string), "$bcrypt-sha256$v=2,t=2b,r=") {
			t.Errorf("%s: password hash %v is not passlib's bcrypt_sha256", st.name, h)
		}
		if st.wantMsg != "" {
			m, _ := r.body["message"].(string)
			if !strings.Contains(m, st.wantMsg) {
				t.Errorf("%s: message %q, want it to contain %q", st.name, m, st.wantMsg)
			}
		}
		if code, has := r.body["code"]; st.wantCode && (!has || int(code.(float64)) != st.want) {
			t.Errorf("%s: body %s, want code %d", st.name, r.raw, st.want)
		} else if !st.wantCode && has && st.want != 200 {
			t.Errorf("%s: body %s has a code, MailU's framework errors do not", st.name, r.raw)
		}
	}
}

func TestGetUserShowsMailUFields(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	r := call(t, in, "POST", "/user", bearer(testToken), `{"email":"Admin@acme.test","raw_password":"pw","global_admin":true,"enabled":false,"quota_bytes":5,"forward_destination":["b@x.test","a@x.test","a@x.test"]}`)
	if r.status != 200 {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	r = call(t, in, "GET", "/user/admin@acme.test", bearer(testToken), "")
	want := map[string]any{
		"email": "admin@acme.test", "global_admin": true, "enabled": false, "quota_bytes": 5.0,
		"enable_imap": true, "spam_threshold": 80.0, "reply_startdate": "1900-01-01", "reply_subject": nil,
	}
	for k, v := range want {
		if r.body[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r.body[k], v)
		}
	}
	if fd, _ := r.body["forward_destination"].([]any); len(fd) != 2 || fd[0] != "a@x.test" {
		t.Errorf("forward_destination = %v, want the sorted set", r.body["forward_destination"])
	}
	// MailU 2024.06 (api/v1/user.py, UserGet) returns the password hash.
	if h, _ := r.body["password"].(string); !CheckBcryptSHA256(h, "pw") || CheckBcryptSHA256(h, "pw2") {
		t.Errorf("password = %q, want passlib's bcrypt_sha256 of the password", r.body["password"])
	}
}

func TestUnlistedInstanceDomainHasNoUsers(t *testing.T) {
	// Two instances in one server are separate MailUs: same token, other
	// store.
	s := newTestServer(t, Options{})
	a := addInstance(t, s, "a.test")
	b := addInstance(t, s, "b.test")
	createUser(t, a, "admin@a.test", "pw")
	if r := call(t, b, http.MethodGet, "/user/admin@a.test", bearer(testToken), ""); r.status != 404 {
		t.Fatalf("user leaked across instances: %d", r.status)
	}
	if r := call(t, b, http.MethodPost, "/user", bearer(testToken), `{"email":"x@a.test","raw_password":"p"}`); r.status != 404 {
		t.Fatalf("instance b accepted a user of a.test: %d", r.status)
	}
}

// TestAPITokenAndRateLimit follows MailU 2024.06's api_token_authorization
// (api/common.py): the client's network is checked against the login rate
// limit before the token (429), a wrong token counts as a failed login of
// the network (as SMTP logins for unknown users do), a token shorter than
// 4 characters refuses everything, and an empty API_TOKEN
// (api/__init__.py) leaves only an HTML error page.
func TestAPITokenAndRateLimit(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)}
	s := newTestServer(t, Options{Now: clock.now})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "right-pw")
	steps := []struct {
		name    string
		auth    string
		want    int
		advance time.Duration
	}{
		{name: "no token", auth: "", want: 401},
		{name: "no token does not count", auth: "", want: 401},
		{name: "wrong token 1", auth: bearer("wrong"), want: 403},
		{name: "wrong token 2", auth: bearer("wrong"), want: 403},
		{name: "wrong token 3", auth: bearer("wrong"), want: 403},
		{name: "wrong token 4", auth: bearer("wrong"), want: 403},
		{name: "right token", auth: bearer(testToken), want: 200},
		{name: "wrong token 5", auth: bearer("wrong"), want: 403},
		{name: "the network is over its limit: even the right token", auth: bearer(testToken), want: 429},
		{name: "checked before the header", auth: "", want: 429},
		{name: "an hour later", advance: time.Hour, auth: bearer(testToken), want: 200},
	}
	for _, st := range steps {
		clock.add(st.advance)
		if r := call(t, in, http.MethodGet, "/user/admin@acme.test", st.auth, ""); r.status != st.want {
			t.Fatalf("%s: %d %s, want %d", st.name, r.status, r.raw, st.want)
		}
	}
	// Wrong tokens and SMTP logins share the bucket: the front refuses the
	// network too.
	for range 5 {
		call(t, in, http.MethodGet, "/user/admin@acme.test", bearer("wrong"), "")
	}
	ts := httptest.NewServer(s.InternalHandler("127.0.0.1:10025"))
	defer ts.Close()
	if got := (authEndpoint{t: t, url: ts.URL}).ask("127.0.0.1", "admin@acme.test", "right-pw"); got != "ratelimit" {
		t.Fatalf("SMTP login from a network limited by wrong API tokens: %s", got)
	}

	short, err := s.AddInstance(context.Background(), InstanceConfig{Domain: "short.test", APIToken: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if r := call(t, short, http.MethodGet, "/user", bearer("abc"), ""); r.status != 403 {
		t.Fatalf("token shorter than 4: %d, want 403", r.status)
	}

	none, err := s.AddInstance(context.Background(), InstanceConfig{Domain: "none.test", APIToken: ""})
	if err != nil {
		t.Fatal(err)
	}
	for method, want := range map[string]int{http.MethodGet: 500, http.MethodPost: 405, http.MethodPatch: 405} {
		r := call(t, none, method, "/user/admin@none.test", bearer("anything"), "")
		if r.status != want || !strings.HasPrefix(r.raw, "<") {
			t.Fatalf("%s without API_TOKEN: %d %q, want an HTML %d", method, r.status, r.raw, want)
		}
	}
}
