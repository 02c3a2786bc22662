package devenv

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"smtp-vault/shared/api"
	"smtp-vault/shared/auth"
)

// SignInPath is the local stack's stand-in for the identity provider's
// login: the console's sign-in page posts a demo admin's name and password
// here (CONSOLE_SIGN_IN_MODE=local). It exists on the local gateway only.
const SignInPath = "/local/sign-in"

// signInTTL is how long a token from the local sign-in lives.
const signInTTL = time.Hour

// signInHandler lists the demo admins (GET: names and roles, no secret)
// and signs one in (POST {"user", "password"}: their bearer token).
func (s *Stack) signInHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range api.SecurityHeaders() {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		switch r.Method {
		case http.MethodGet:
			type user struct {
				Name  string      `json:"name"`
				Roles []auth.Role `json:"roles"`
			}
			out := struct {
				Users []user `json:"users"`
			}{Users: []user{}}
			for _, u := range s.Users {
				out.Users = append(out.Users, user{u.Name, u.Roles})
			}
			_ = json.NewEncoder(w).Encode(out)
		case http.MethodPost:
			var in struct {
				User     string `json:"user"`
				Password string `json:"password"`
			}
			if err := json.NewDecoder(io.LimitReader(r.Body, 4096)).Decode(&in); err != nil {
				signInError(w, http.StatusBadRequest, "invalid_json", "the body must be {\"user\", \"password\"}")
				return
			}
			u, ok := s.User(in.User)
			if !ok || u.Password == "" || subtle.ConstantTimeCompare([]byte(in.Password), []byte(u.Password)) != 1 {
				signInError(w, http.StatusUnauthorized, "sign_in_failed", "unknown demo admin or wrong password (see .local/dev.env)")
				return
			}
			tok, err := s.Issuer.Sign(u.Name, u.Roles, signInTTL)
			if err != nil {
				signInError(w, http.StatusInternalServerError, "internal", "signing the token failed")
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(signInTTL / time.Second)})
		default:
			w.Header().Set("Allow", "GET, POST")
			signInError(w, http.StatusMethodNotAllowed, "method_not_allowed", "use GET or POST")
		}
	})
}

func signInError(w http.ResponseWriter, status int, code, msg string) {
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}

// The local stand-in of the identity provider's hosted login for
// HostedSignIn: an OAuth 2.0 authorization endpoint (a form asking for a
// demo admin's name and password) and a token endpoint that redeems a
// code only with its PKCE verifier (S256), once, within a minute, for the
// client and redirect it was issued to.
const (
	OAuthAuthorizePath = "/local/oauth/authorize"
	OAuthTokenPath     = "/local/oauth/token"
	OAuthClientID      = "smtp-vault-console-local"
	oauthCodeTTL       = time.Minute
)

type oauthCode struct {
	user      DemoUser
	challenge string
	redirect  string
	expires   time.Time
}

type oauth struct {
	s     *Stack
	mu    sync.Mutex
	codes map[string]oauthCode
}

func (s *Stack) oauthHandlers() *oauth { return &oauth{s: s, codes: map[string]oauthCode{}} }

// redirectOK accepts only the console's callback on the stack's origin.
func (o *oauth) redirectOK(r string) bool {
	return r == o.s.APIURL+"/platform-admin/callback"
}

var authorizePage = template.Must(template.New("authorize").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Local identity provider</title></head>
<body><main>
<h1>Local identity provider</h1>
<p>Sign in as a demo admin of the local stack (names and passwords in .local/dev.env).</p>
{{if .Error}}<p role="alert" id="idp-error">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range $k, $v := .Params}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<label for="idp-user">Name</label> <input id="idp-user" name="username" autocomplete="username" required>
<label for="idp-password">Password</label> <input id="idp-password" name="password" type="password" autocomplete="current-password" required>
<button type="submit" id="idp-submit">Sign in</button>
</form>
</main></body></html>`))

func (o *oauth) authorize() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; form-action 'self'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Referrer-Policy", "no-referrer")
		if err := r.ParseForm(); err != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		p := map[string]string{}
		for _, k := range []string{"response_type", "client_id", "redirect_uri", "state", "code_challenge", "code_challenge_method", "scope"} {
			p[k] = r.Form.Get(k)
		}
		// Errors that cannot go back to the client are shown here.
		if p["client_id"] != OAuthClientID || !o.redirectOK(p["redirect_uri"]) {
			http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
			return
		}
		back := func(q url.Values) {
			q.Set("state", p["state"])
			http.Redirect(w, r, p["redirect_uri"]+"?"+q.Encode(), http.StatusSeeOther)
		}
		if p["response_type"] != "code" || p["code_challenge_method"] != "S256" || len(p["code_challenge"]) != 43 {
			back(url.Values{"error": {"invalid_request"}})
			return
		}
		page := struct {
			Action, Error string
			Params        map[string]string
		}{Action: OAuthAuthorizePath, Params: p}
		if r.Method == http.MethodPost {
			u, ok := o.s.User(r.PostForm.Get("username"))
			if ok && u.Password != "" && subtle.ConstantTimeCompare([]byte(r.PostForm.Get("password")), []byte(u.Password)) == 1 {
				code := rand.Text()
				o.mu.Lock()
				o.codes[code] = oauthCode{user: u, challenge: p["code_challenge"], redirect: p["redirect_uri"], expires: time.Now().Add(oauthCodeTTL)}
				o.mu.Unlock()
				back(url.Values{"code": {code}})
				return
			}
			page.Error = "Unknown demo admin or wrong password."
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = authorizePage.Execute(w, page)
	})
}

func (o *oauth) token() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range api.SecurityHeaders() {
			w.Header().Set(k, v)
		}
		w.Header().Set("Content-Type", "application/json")
		fail := func(code string) {
			w.WriteHeader(http.StatusBadRequest)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": code})
		}
		if r.Method != http.MethodPost || r.ParseForm() != nil || r.PostForm.Get("grant_type") != "authorization_code" {
			fail("invalid_request")
			return
		}
		o.mu.Lock()
		c, ok := o.codes[r.PostForm.Get("code")]
		delete(o.codes, r.PostForm.Get("code")) // once, whatever follows
		o.mu.Unlock()
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		switch {
		case !ok || time.Now().After(c.expires):
			fail("invalid_grant")
			return
		case r.PostForm.Get("client_id") != OAuthClientID || r.PostForm.Get("redirect_uri") != c.redirect,
			subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.challenge)) != 1:
			fail("invalid_grant")
			return
		}
		tok, err := o.s.Issuer.Sign(c.user.Name, c.user.Roles, signInTTL)
		if err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(signInTTL / time.Second)})
	})
}
