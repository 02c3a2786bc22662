package console_test

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"smtp-vault/shared/console"
)

func site(t *testing.T) *console.Site {
	t.Helper()
	s, err := console.New(console.Config{SignInMode: console.SignInLocal, SignInURL: "/local/sign-in"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPaths: the three pages share the shell, config.json and the assets
// are served, anything else is 404, and every answer carries the
// console's headers.
func TestPaths(t *testing.T) {
	s := site(t)
	shell := s.Serve("/platform-admin/sign-in", nil).Body
	for _, tc := range []struct {
		path        string
		status      int
		contentType string
		cache       string
	}{
		{"/platform-admin/sign-in", 200, "text/html; charset=utf-8", "no-store"},
		{"/platform-admin/smtp-credentials", 200, "text/html; charset=utf-8", "no-store"},
		{"/platform-admin/tenants/0b6f2c1e-6a43-4c4e-9d55-0f3c2f6d1a7b/smtp-credentials", 200, "text/html; charset=utf-8", "no-store"},
		{"/platform-admin/config.json", 200, "application/json", "no-store"},
		{"/platform-admin/assets/console.js", 200, "text/javascript; charset=utf-8", "no-cache"},
		{"/platform-admin/assets/console.css", 200, "text/css; charset=utf-8", "no-cache"},
		{"/platform-admin/tenants/not-a-uuid/smtp-credentials", 404, "text/html; charset=utf-8", "no-store"},
		{"/platform-admin/tenants/0B6F2C1E-6A43-4C4E-9D55-0F3C2F6D1A7B/smtp-credentials", 404, "text/html; charset=utf-8", "no-store"},
		{"/platform-admin/tenants", 404, "text/html; charset=utf-8", "no-store"},
		{"/platform-admin/assets/index.html", 404, "text/html; charset=utf-8", "no-store"},
		{"/platform-admin/assets/../config.json", 404, "text/html; charset=utf-8", "no-store"},
		{"/platform-admin/sign-in/", 404, "text/html; charset=utf-8", "no-store"},
		{"/platform-admin/", 404, "text/html; charset=utf-8", "no-store"},
		{"/elsewhere", 404, "text/html; charset=utf-8", "no-store"},
	} {
		r := s.Serve(tc.path, nil)
		if r.Status != tc.status || r.Header["Content-Type"] != tc.contentType || r.Header["Cache-Control"] != tc.cache {
			t.Errorf("%s: %d %q %q, want %d %q %q", tc.path, r.Status, r.Header["Content-Type"], r.Header["Cache-Control"], tc.status, tc.contentType, tc.cache)
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": console.CSP,
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"X-Frame-Options":         "DENY",
		} {
			if r.Header[k] != want {
				t.Errorf("%s: %s %q, want %q", tc.path, k, r.Header[k], want)
			}
		}
		if tc.status == 200 && strings.HasSuffix(tc.contentType, "html; charset=utf-8") && r.Body != shell {
			t.Errorf("%s: not the shell", tc.path)
		}
	}
}

// TestAssetsAreVersioned: the shell names each asset with its content
// hash, and only that URL may be kept for good.
func TestAssetsAreVersioned(t *testing.T) {
	s := site(t)
	shell := s.Serve("/platform-admin/smtp-credentials", nil).Body
	for _, name := range []string{"console.js", "console.css"} {
		m := regexp.MustCompile(`/platform-admin/assets/` + regexp.QuoteMeta(name) + `\?v=([0-9a-f]{16})"`).FindStringSubmatch(shell)
		if m == nil {
			t.Fatalf("the shell does not load %s with a version", name)
		}
		if c := s.Serve("/platform-admin/assets/"+name, map[string]string{"v": m[1]}).Header["Cache-Control"]; c != "public, max-age=31536000, immutable" {
			t.Errorf("%s?v=<its hash>: Cache-Control %q", name, c)
		}
		if c := s.Serve("/platform-admin/assets/"+name, map[string]string{"v": "0000000000000000"}).Header["Cache-Control"]; c != "no-cache" {
			t.Errorf("%s?v=<another hash>: Cache-Control %q", name, c)
		}
	}
}

// TestNoInlineCode: the CSP forbids inline script and style, so the
// files must not need them (a page that did would break, not leak).
func TestNoInlineCode(t *testing.T) {
	s := site(t)
	for _, path := range []string{"/platform-admin/sign-in", "/nowhere"} {
		body := s.Serve(path, nil).Body
		for _, bad := range []*regexp.Regexp{regexp.MustCompile(`<script(?:[^>]*)>[^<\s]`), regexp.MustCompile(`<style`), regexp.MustCompile(`\sstyle=`), regexp.MustCompile(`\son[a-z]+=`), regexp.MustCompile(`https?://`)} {
			if bad.MatchString(body) {
				t.Errorf("%s matches %s", path, bad)
			}
		}
	}
	js := s.Serve("/platform-admin/assets/console.js", nil).Body
	for _, bad := range []string{"innerHTML", "localStorage", "sessionStorage", "document.cookie", "eval(", ".style."} {
		if strings.Contains(js, bad) {
			t.Errorf("console.js uses %s", bad)
		}
	}
}

func TestConfig(t *testing.T) {
	hosted := console.Config{SignInMode: console.SignInHosted, SignInURL: "https://login.example.com/oauth2/authorize",
		TokenURL: "https://login.example.com/oauth2/token", ClientID: "console-client", RolesClaim: "groups"}
	s, err := console.New(hosted)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]string
	if err := json.Unmarshal([]byte(s.Serve("/platform-admin/config.json", nil).Body), &c); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"sign_in_mode": "hosted", "sign_in_url": "https://login.example.com/oauth2/authorize",
		"token_url": "https://login.example.com/oauth2/token", "client_id": "console-client", "api_base": "/api/v1/platform-admin", "roles_claim": "groups"}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("config.json %s = %q, want %q", k, c[k], v)
		}
	}
	// The token endpoint's origin, and only it, joins connect-src.
	page := s.Serve("/platform-admin/sign-in", nil)
	if csp := page.Header["Content-Security-Policy"]; csp != s.CSP() || !strings.Contains(csp, "connect-src 'self' https://login.example.com;") || strings.Contains(csp, "script-src 'self' https") {
		t.Errorf("hosted sign-in CSP %q", csp)
	}
	// The pop-up's redirect target: its own small page and script.
	if cb := s.Serve("/platform-admin/callback", nil); cb.Status != 200 || !strings.Contains(cb.Body, "/platform-admin/assets/callback.js?v=") || strings.Contains(cb.Body, "console.js") {
		t.Errorf("callback page: %d %s", cb.Status, cb.Body)
	}
	if _, err := console.New(console.Config{SignInMode: "magic"}); err == nil {
		t.Error("an unknown sign-in mode was accepted")
	}
	for _, bad := range []console.Config{
		{SignInMode: console.SignInHosted, SignInURL: "http://login.example.com/authorize", TokenURL: "https://login.example.com/token", ClientID: "c"},
		{SignInMode: console.SignInHosted, SignInURL: "https://login.example.com/authorize", TokenURL: "", ClientID: "c"},
		{SignInMode: console.SignInHosted, SignInURL: "https://login.example.com/authorize", TokenURL: "https://login.example.com/token"},
		{SignInMode: console.SignInHosted, SignInURL: "javascript:alert(1)", TokenURL: "https://login.example.com/token", ClientID: "c"},
	} {
		if _, err := console.New(bad); err == nil {
			t.Errorf("hosted sign-in %+v was accepted", bad)
		}
	}
	// Not configured yet: the page says so; no endpoint is needed.
	if _, err := console.New(console.Config{SignInMode: console.SignInHosted}); err != nil {
		t.Errorf("an unconfigured hosted sign-in: %v", err)
	}
}
