// Package console is the platform-admins' web console: one HTML shell, its
// stylesheet and script, embedded in the console function's binary and
// served under /platform-admin/. The pages hold no data; the script calls
// the HTTP API with the bearer and re-auth tokens it keeps in memory.
package console

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

//go:embed web
var web embed.FS

// Prefix is where the console lives on the HTTP API.
const Prefix = "/platform-admin/"

// Sign-in modes of Config.SignInMode.
const (
	// SignInHosted signs the admin in at the identity provider's hosted
	// login with the OAuth 2.0 authorization code flow and PKCE (S256), in
	// a pop-up: Config.SignInURL is the authorization endpoint, whose
	// redirect lands on /platform-admin/callback, which hands the code to
	// the console's window; the console, which kept the PKCE verifier in
	// memory, redeems it at Config.TokenURL. No token is ever in a URL, and
	// nothing is stored in the browser.
	SignInHosted = "hosted"
	// SignInLocal posts a demo admin's name and password to the local
	// stack's issuer (Config.SignInURL, /local/sign-in). Never in AWS.
	SignInLocal = "local"
)

// Config is what the script reads from /platform-admin/config.json.
type Config struct {
	SignInMode string `json:"sign_in_mode"` // SignInHosted or SignInLocal
	SignInURL  string `json:"sign_in_url"`  // "" until configured: the page says so
	// TokenURL and ClientID (hosted): the provider's token endpoint and the
	// console's public client id.
	TokenURL   string `json:"token_url,omitempty"`
	ClientID   string `json:"client_id,omitempty"`
	APIBase    string `json:"api_base"`    // the HTTP API's platform-admin routes
	RolesClaim string `json:"roles_claim"` // the JWT claim that lists roles
}

// CSP allows the console's own files only: no inline script or style, no
// other origin, no framing. A hosted sign-in whose token endpoint is on
// another origin adds that origin, and only it, to connect-src
// (Site.CSP).
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// Response is a page, an asset or a refusal, with every header it needs.
type Response struct {
	Status int
	Header map[string]string
	Body   string
}

// Site serves the console's paths.
type Site struct {
	csp      string
	shell    string           // index.html with the assets' versioned URLs
	callback string           // callback.html, the hosted sign-in's redirect
	config   string           // config.json
	assets   map[string]asset // by path under /platform-admin/assets/
	notFound string
}

type asset struct {
	body, contentType, version string
}

// The pages the shell serves; the script routes between them.
var pagePaths = []*regexp.Regexp{
	regexp.MustCompile(`^sign-in$`),
	regexp.MustCompile(`^smtp-credentials$`),
	regexp.MustCompile(`^tenants/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/smtp-credentials$`),
}

// New builds the site for cfg. The shell names each asset with its
// content hash (?v=), so a browser may keep an asset for good and still
// gets a new one with the next release.
func New(cfg Config) (*Site, error) {
	if cfg.APIBase == "" {
		cfg.APIBase = "/api/v1/platform-admin"
	}
	if cfg.RolesClaim == "" {
		cfg.RolesClaim = "roles"
	}
	csp := CSP
	switch cfg.SignInMode {
	case SignInLocal:
	case SignInHosted:
		if cfg.SignInURL == "" {
			break // the sign-in page says it is not configured
		}
		for _, u := range []string{cfg.SignInURL, cfg.TokenURL} {
			if err := checkEndpoint(u); err != nil {
				return nil, err
			}
		}
		if cfg.ClientID == "" {
			return nil, errors.New("console: hosted sign-in needs the client id (CONSOLE_CLIENT_ID)")
		}
		if t, _ := url.Parse(cfg.TokenURL); t.Host != "" {
			csp = strings.Replace(CSP, "connect-src 'self'", "connect-src 'self' "+t.Scheme+"://"+t.Host, 1)
		}
	default:
		return nil, fmt.Errorf("console: sign-in mode %q is neither %q nor %q", cfg.SignInMode, SignInHosted, SignInLocal)
	}
	conf, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	s := &Site{csp: csp, config: string(conf), assets: map[string]asset{}}
	for name, ct := range map[string]string{"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8", "callback.js": "text/javascript; charset=utf-8"} {
		b, err := web.ReadFile("web/" + name)
		if err != nil {
			return nil, err
		}
		sum := sha256.Sum256(b)
		s.assets[name] = asset{body: string(b), contentType: ct, version: hex.EncodeToString(sum[:8])}
	}
	shell, err := web.ReadFile("web/index.html")
	if err != nil {
		return nil, err
	}
	s.shell = string(shell)
	for name, a := range s.assets {
		s.shell = strings.ReplaceAll(s.shell, "assets/"+name+`"`, "assets/"+name+"?v="+a.version+`"`)
	}
	cb, err := web.ReadFile("web/callback.html")
	if err != nil {
		return nil, err
	}
	s.callback = strings.ReplaceAll(string(cb), `assets/callback.js"`, "assets/callback.js?v="+s.assets["callback.js"].version+`"`)
	nf, err := web.ReadFile("web/404.html")
	if err != nil {
		return nil, err
	}
	s.notFound = string(nf)
	return s, nil
}

// Serve answers GET path (the request's path, /platform-admin/...) with
// query the request's query parameters.
func (s *Site) Serve(path string, query map[string]string) Response {
	rest, ok := strings.CutPrefix(path, Prefix)
	if !ok {
		return s.missing()
	}
	if rest == "callback" {
		return s.respond(http.StatusOK, "text/html; charset=utf-8", "no-store", s.callback)
	}
	for _, p := range pagePaths {
		if p.MatchString(rest) {
			return s.respond(http.StatusOK, "text/html; charset=utf-8", "no-store", s.shell)
		}
	}
	if rest == "config.json" {
		return s.respond(http.StatusOK, "application/json", "no-store", s.config)
	}
	if name, ok := strings.CutPrefix(rest, "assets/"); ok {
		if a, ok := s.assets[name]; ok {
			cache := "no-cache"
			if query["v"] == a.version {
				cache = "public, max-age=31536000, immutable"
			}
			return s.respond(http.StatusOK, a.contentType, cache, a.body)
		}
	}
	return s.missing()
}

func (s *Site) missing() Response {
	return s.respond(http.StatusNotFound, "text/html; charset=utf-8", "no-store", s.notFound)
}

// CSP is the Content-Security-Policy of every response of the site.
func (s *Site) CSP() string { return s.csp }

// checkEndpoint accepts an https URL of the identity provider, or a path
// on the console's own origin (the local stack's stand-in).
func checkEndpoint(raw string) error {
	u, err := url.Parse(raw)
	switch {
	case err != nil || raw == "":
		return fmt.Errorf("console: hosted sign-in endpoint %q is not a URL", raw)
	case u.Scheme == "" && u.Host == "" && strings.HasPrefix(u.Path, "/"):
		return nil
	case u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "":
		return fmt.Errorf("console: hosted sign-in endpoint %q must be an https URL", raw)
	}
	return nil
}

// respond adds the headers every console response carries.
func (s *Site) respond(status int, contentType, cache, body string) Response {
	h := map[string]string{
		"Content-Type":              contentType,
		"Cache-Control":             cache,
		"Content-Security-Policy":   s.csp,
		"X-Content-Type-Options":    "nosniff",
		"Referrer-Policy":           "no-referrer",
		"X-Frame-Options":           "DENY",
		"Strict-Transport-Security": "max-age=63072000; includeSubDomains",
	}
	if cache == "no-store" {
		h["Pragma"] = "no-cache"
	}
	return Response{Status: status, Header: h, Body: body}
}
