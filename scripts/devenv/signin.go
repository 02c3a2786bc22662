package devenv

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
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
