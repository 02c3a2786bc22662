package mailustandin

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// The internal auth endpoint: what MailU 2024.06's front (Dovecot's
// submission-login with a Lua passdb, core/nginx/dovecot/login.lua) asks
// the admin app about every SMTP AUTH, GET /internal/auth/email
// (core/admin/mailu/internal/views/auth.py, internal/nginx.py). The request
// carries the login in headers (Auth-User, Auth-Pass, Client-Ip
// percent-encoded; Auth-Protocol, Auth-Method, Auth-Port, Client-Port,
// Auth-SSL); the answer is always 200 with Auth-Status "OK" and where to
// proxy the session (Auth-Server, Auth-Port), or Auth-Status with a reason
// and Auth-Error-Code. One endpoint serves every instance of a Server,
// picked by the domain of Auth-User, as one front serves one MailU.

// InternalAuthPath is where the endpoint is served.
const InternalAuthPath = "/internal/auth/email"

// Answers of the endpoint (internal/nginx.py's statuses for submission).
const (
	statusOK          = "OK"
	statusInvalid     = "Authentication credentials invalid"
	codeInvalid       = "535 5.7.8"
	statusRateLimited = "Temporary authentication failure (rate limit)"
	codeRateLimited   = "451 4.3.2"
)

// authRequest is one login as the front describes it.
type authRequest struct {
	user, password, clientIP string
}

// authAnswer is the admin app's verdict.
type authAnswer struct {
	ok          bool
	rateLimited bool
	userExists  bool
}

func (a authAnswer) status() (status, code string) {
	switch {
	case a.ok:
		return statusOK, ""
	case a.rateLimited:
		return statusRateLimited, codeRateLimited
	}
	return statusInvalid, codeInvalid
}

// authenticate decides one login as MailU 2024.06's nginx_authentication
// does (internal/views/auth.py), with the credentials check of
// internal/nginx.py's check_credentials and the limiter of limiter.py:
//
//  1. a client network over its limit is refused at once, unless the
//     password looks like an app token (utils.is_app_token);
//  2. the credentials are checked: the user exists, is enabled, and the
//     password matches; with AUTH_REQUIRE_TOKENS a right password is
//     still refused (app tokens are not modelled);
//  3. a known user over its limit is refused, whatever the verdict;
//  4. a success exempts the client address; a known user's failure hits
//     the user (and the network); an unknown user's hits the network.
//
// The password is never logged; only the outcome is.
func (i *Instance) authenticate(r authRequest) authAnswer {
	f := i.currentFaults()
	appToken := isAppToken(r.password)
	if f.RateLimitSMTP || (!appToken && i.limiter.limitIP(r.clientIP)) {
		i.logAuth(r, authAnswer{rateLimited: true}, f)
		return authAnswer{rateLimited: true}
	}
	name := strings.ToLower(r.user)
	var (
		hash    string
		found   bool
		enabled bool
	)
	if strings.Contains(name, "@") {
		i.mu.Lock()
		if u, ok := i.users[name]; ok {
			hash, found, enabled = u.PasswordHash, true, u.Enabled
		}
		i.mu.Unlock()
	}
	ans := authAnswer{userExists: found}
	if f.RejectSMTP {
		// A test device, not MailU behaviour: refused, and not counted.
		i.logAuth(r, ans, f)
		return ans
	}
	if found && enabled {
		var outdated bool
		ans.ok, outdated = checkPassword(hash, r.password)
		if outdated {
			i.upgradeHash(name, hash, r.password)
		}
		ans.ok = ans.ok && !f.RequireTokens
	}
	if found && !appToken && i.limiter.limitUser(name, r.clientIP) {
		ans = authAnswer{rateLimited: true, userExists: true}
		i.logAuth(r, ans, f)
		return ans
	}
	switch {
	case ans.ok:
		i.limiter.exemptClient(r.clientIP)
	case found:
		i.limiter.hitUser(name, r.clientIP, r.password)
	default:
		i.limiter.hitIP(r.clientIP, name)
	}
	i.logAuth(r, ans, f)
	return ans
}

// upgradeHash replaces a user's hash of an older scheme after a
// successful check, unless the password changed meanwhile.
func (i *Instance) upgradeHash(name, old, password string) {
	h, err := hashPassword(password, i.srv.opts.BcryptCost)
	if err != nil {
		return
	}
	i.mu.Lock()
	u, ok := i.users[name]
	if ok && u.PasswordHash == old {
		u.PasswordHash = h
	}
	i.mu.Unlock()
	if ok {
		if err := i.srv.persist(); err != nil {
			i.srv.log.Error("mailu state not saved", "domain", i.domain, "error", err)
		}
	}
}

func (i *Instance) logAuth(r authRequest, a authAnswer, f Faults) {
	i.srv.log.Info("mailu auth", "domain", i.domain, "user", r.user, "client_ip", r.clientIP,
		"ok", a.ok, "rate_limited", a.rateLimited, "user_exists", a.userExists,
		"rejected_by_fault", f.RejectSMTP, "require_tokens", f.RequireTokens)
}

// isAppToken is utils.is_app_token: 32 lowercase hex digits.
func isAppToken(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// InternalHandler serves the internal auth endpoint for every instance of
// the server. Logged-in sessions are proxied to relayAddr.
func (s *Server) InternalHandler(relayAddr string) http.Handler {
	relayHost, relayPort, _ := net.SplitHostPort(relayAddr)
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+InternalAuthPath, func(w http.ResponseWriter, r *http.Request) {
		h := r.Header
		user, errU := url.PathUnescape(h.Get("Auth-User"))
		pass, errP := url.PathUnescape(h.Get("Auth-Pass"))
		ip, errI := url.PathUnescape(h.Get("Client-Ip"))
		method := strings.ToLower(h.Get("Auth-Method"))
		var ans authAnswer
		switch {
		case errU != nil || errP != nil || errI != nil:
			// MailU logs undecodable credentials and refuses them.
		case method != "plain" && method != "login":
			// Only submission logins reach this endpoint here.
		default:
			in, ok := s.hostOf(domainOf(user))
			if !ok {
				break // no MailU hosts the domain: an unknown user
			}
			if !in.waitFaults(w, r) {
				return
			}
			ans = in.authenticate(authRequest{user: user, password: pass, clientIP: ip})
		}
		status, code := ans.status()
		w.Header().Set("Auth-Status", status)
		if ans.ok {
			w.Header().Set("Auth-Server", relayHost)
			w.Header().Set("Auth-Port", relayPort)
		} else {
			w.Header().Set("Auth-Error-Code", code)
			w.Header().Set("Auth-Wait", "0")
		}
		w.Header().Set("Auth-User", url.PathEscape(user))
		w.Header().Set("Auth-User-Exists", pyBool(ans.userExists))
		w.WriteHeader(http.StatusOK)
	})
	return mux
}

// waitFaults applies Down and Delay to an auth request: a down instance's
// admin app cannot be reached (the connection is cut, which the front
// reports as a temporary failure); a slow one answers late. It reports
// whether to answer.
func (i *Instance) waitFaults(w http.ResponseWriter, r *http.Request) bool {
	i.mu.Lock()
	f, stopped := i.faults, i.smtpCtx.Done()
	i.mu.Unlock()
	if f.Down {
		panic(http.ErrAbortHandler)
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return false
		case <-stopped:
			panic(http.ErrAbortHandler)
		}
	}
	return true
}

func domainOf(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return ""
	}
	return strings.ToLower(email[at+1:])
}

// pyBool is how the admin app (Python) writes a boolean header.
func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}
