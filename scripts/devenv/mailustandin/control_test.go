package mailustandin

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestControlAPI(t *testing.T) {
	s := newTestServer(t, Options{})
	internal, err := s.StartInternal()
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(s.ControlHandler(internal))
	defer ts.Close()

	do := func(method, path, body string) (int, map[string]any) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(raw), "tok-ctl-1") {
			t.Fatalf("%s %s leaked the API token: %s", method, path, raw)
		}
		var out map[string]any
		_ = json.Unmarshal(raw, &out)
		return resp.StatusCode, out
	}

	steps := []struct {
		method, path, body string
		want               int
	}{
		{"GET", "/healthz", "", 200},
		{"GET", "/internal", "", 200},
		{"POST", "/instances", `{"domain":"acme.test","api_token":"tok-ctl-1"}`, 201},
		{"POST", "/instances", `{"domain":"acme.test","api_token":"tok-ctl-1"}`, 200},
		{"POST", "/instances", `{"domain":"acme.test","api_token":"tok-ctl-2"}`, 409},
		{"POST", "/instances", `{"domain":"bad domain","api_token":"tok-ctl-1"}`, 400},
		{"POST", "/instances", `{"domain":"x.test","api_token":"tok-ctl-1","http_addr":"0.0.0.0:0"}`, 400},
		{"POST", "/instances", `{"domain":`, 400},
		{"POST", "/instances", `{"domain":"x.test","token":"t"}`, 400},
		{"GET", "/instances", "", 200},
		{"GET", "/instances/acme.test", "", 200},
		{"GET", "/instances/none.test", "", 404},
		{"PUT", "/instances/acme.test/faults", `{"reject_smtp":true,"delay":"10ms"}`, 200},
		{"PUT", "/instances/acme.test/faults", `{"delay":"later"}`, 400},
		{"PUT", "/instances/none.test/faults", `{}`, 404},
		{"GET", "/instances/acme.test/faults", "", 200},
		{"GET", "/nothing", "", 404},
	}
	for _, st := range steps {
		if got, body := do(st.method, st.path, st.body); got != st.want {
			t.Fatalf("%s %s %s = %d %v, want %d", st.method, st.path, st.body, got, body, st.want)
		}
	}

	if _, got := do("GET", "/internal", ""); got["auth_url"] != internal.AuthURL || got["relay_addr"] != internal.RelayAddr || !strings.HasSuffix(internal.AuthURL, InternalAuthPath) {
		t.Fatalf("internal = %v, want %+v", got, internal)
	}
	// The rate-limit fault travels through the control API too.
	if got, _ := do("PUT", "/instances/acme.test/faults", `{"rate_limit_smtp":true,"require_tokens":true}`); got != 200 {
		t.Fatalf("PUT faults = %d", got)
	}
	if f, _ := s.Instance("acme.test"); !f.Faults().RateLimitSMTP || !f.Faults().RequireTokens {
		t.Fatalf("faults not applied: %+v", f.Faults())
	}
	do("PUT", "/instances/acme.test/faults", `{"reject_smtp":true,"delay":"10ms"}`)

	_, info := do("GET", "/instances/acme.test", "")
	in, _ := s.Instance("acme.test")
	if info["api_url"] != in.APIURL() || info["smtp_addr"] != in.SMTPAddr() {
		t.Fatalf("info %v does not match the instance", info)
	}
	if f := in.Faults(); !f.RejectSMTP || f.Delay.String() != "10ms" {
		t.Fatalf("faults not applied: %+v", f)
	}
	_, list := do("GET", "/instances", "")
	if l, _ := list["instances"].([]any); len(l) != 1 {
		t.Fatalf("instances = %v", list)
	}
	if got, _ := do("DELETE", "/instances/acme.test", ""); got != 204 {
		t.Fatalf("DELETE = %d", got)
	}
	if got, _ := do("POST", "/instances", `{"domain":"acme.test","api_token":"tok-ctl-2"}`); got != 201 {
		t.Fatalf("re-create after loss = %d", got)
	}

	// DNS rebinding: a browser would send the attacker's host name.
	req, _ := http.NewRequest("GET", ts.URL+"/instances", nil)
	req.Host = "evil.example"
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign Host answered %d", resp.StatusCode)
	}
}
