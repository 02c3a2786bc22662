package mailustandin

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"
)

// The admin API v1, as MailU serves it under /api/v1. Statuses, messages
// and the order of checks follow MailU: payload validation (400/415) comes
// before the token check (401/403), which comes before the handler.

const (
	apiPrefix      = "/api/v1"
	maxRequestBody = 1 << 20
)

type handler func(i *Instance, p payload, arg string) (int, any)

type route struct {
	handle handler
	schema *schema // the payload model, for POST and PATCH
	write  bool
}

// routes returns the methods served at path, or nil when there is no such
// resource. arg is the {email} or {domain} path parameter.
func routes(path string) (methods map[string]route, arg string) {
	rest, ok := strings.CutPrefix(path, apiPrefix)
	if !ok {
		return nil, ""
	}
	switch {
	case rest == "/user":
		return map[string]route{
			http.MethodGet:  {handle: (*Instance).listUsers},
			http.MethodPost: {handle: (*Instance).createUser, schema: &userCreateSchema, write: true},
		}, ""
	case strings.HasPrefix(rest, "/user/") && isSegment(rest[len("/user/"):]):
		return map[string]route{
			http.MethodGet:    {handle: (*Instance).getUser},
			http.MethodPatch:  {handle: (*Instance).updateUser, schema: &userUpdateSchema, write: true},
			http.MethodDelete: {handle: (*Instance).deleteUser, write: true},
		}, rest[len("/user/"):]
	case rest == "/domain":
		return map[string]route{
			http.MethodGet:  {handle: (*Instance).listDomains},
			http.MethodPost: {handle: (*Instance).createDomain, schema: &domainSchema, write: true},
		}, ""
	case strings.HasPrefix(rest, "/domain/") && isSegment(rest[len("/domain/"):]):
		return map[string]route{http.MethodGet: {handle: (*Instance).getDomain}}, rest[len("/domain/"):]
	}
	return nil, ""
}

func isSegment(s string) bool { return s != "" && !strings.Contains(s, "/") }

// ServeHTTP serves the instance's admin API.
func (i *Instance) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	status := i.serveAPI(w, r)
	i.srv.log.Debug("mailu api", "domain", i.domain, "method", r.Method, "path", r.URL.Path, "status", status)
}

func (i *Instance) serveAPI(w http.ResponseWriter, r *http.Request) int {
	// A request that reaches the handler as the instance goes down (its
	// connection accepted, its faults read after the change) gets no
	// answer, like one whose connection the stop cut.
	f := i.currentFaults()
	if f.Down {
		panic(http.ErrAbortHandler)
	}
	if f.Delay > 0 {
		t := time.NewTimer(f.Delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.Context().Done():
			return 0 // the client gave up or the instance went down
		}
		if i.currentFaults().Down {
			panic(http.ErrAbortHandler)
		}
	}
	if i.token == "" {
		return writeTokenMissing(w, r)
	}
	methods, arg := routes(r.URL.Path)
	if methods == nil {
		return writeJSON(w, http.StatusNotFound, msg("The requested URL was not found on the server. If you entered the URL manually please check your spelling and try again."))
	}
	rt, ok := methods[r.Method]
	if !ok {
		allowed := make([]string, 0, len(methods))
		for m := range methods {
			allowed = append(allowed, m)
		}
		slices.Sort(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return writeJSON(w, http.StatusMethodNotAllowed, msg("The method is not allowed for the requested URL."))
	}
	var p payload
	if rt.schema != nil {
		var status int
		var body any
		if p, status, body = decodePayload(r, *rt.schema); status != 0 {
			return writeJSON(w, status, body)
		}
	}
	if status, body := i.checkToken(r); status != 0 {
		return writeJSON(w, status, body)
	}
	fault := ""
	if rt.write {
		fault = i.takeWriteFault()
	}
	if fault == "fail" {
		i.srv.log.Info("mailu write failed by fault", "domain", i.domain, "method", r.Method, "path", r.URL.Path)
		return writeJSON(w, http.StatusInternalServerError, msg("Internal Server Error"))
	}
	status, body := rt.handle(i, p, arg)
	if rt.write && status == http.StatusOK {
		// MailU commits before it answers; so does the stand-in.
		if err := i.srv.persist(); err != nil {
			i.srv.log.Error("mailu state not saved", "domain", i.domain, "error", err)
			status, body = http.StatusInternalServerError, msg("Internal Server Error")
		}
	}
	if fault == "drop" {
		i.srv.log.Info("mailu write applied, response dropped by fault", "domain", i.domain, "method", r.Method, "path", r.URL.Path, "status", status)
		// Closes the connection without a response and without a stack
		// trace in the log.
		panic(http.ErrAbortHandler)
	}
	return writeJSON(w, status, body)
}

// checkToken is MailU 2024.06's api_token_authorization (api/common.py):
// first the client's network against the login rate limit (429), then 401
// without the header, then 403 when the token does not match (or is
// shorter than 4 characters), which counts as a failed login of the
// client's network. Like MailU it accepts the token with or without the
// "Bearer " prefix.
func (i *Instance) checkToken(r *http.Request) (int, any) {
	ip := clientIP(r)
	if i.limiter.limitIP(ip) {
		i.srv.log.Warn("mailu api rate limited", "domain", i.domain, "remote", ip)
		return http.StatusTooManyRequests, msg("Too many attempts from this address (rate limit)")
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		return http.StatusUnauthorized, msg("A valid Authorization header is mandatory")
	}
	got := strings.TrimPrefix(h, "Bearer ")
	if len(i.token) < 4 || subtle.ConstantTimeCompare([]byte(got), []byte(i.token)) != 1 {
		i.limiter.hitIP(ip, "")
		i.srv.log.Warn("invalid mailu api token", "domain", i.domain, "remote", ip)
		return http.StatusForbidden, msg("Invalid API token")
	}
	return 0, nil
}

// clientIP is the address the API counts failures against. MailU reads
// X-Real-IP set by its nginx; the stand-in has no proxy in front.
func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// writeTokenMissing answers as MailU 2024.06 does when API=true but
// API_TOKEN is empty (api/__init__.py): the API is not registered, and a
// catch-all page under /api answers GET with an HTML error 500 (other
// methods get Flask's HTML 405).
func writeTokenMissing(w http.ResponseWriter, r *http.Request) int {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD, OPTIONS")
		w.WriteHeader(http.StatusMethodNotAllowed)
		io.WriteString(w, "<!doctype html>\n<title>405 Method Not Allowed</title>\n<h1>Method Not Allowed</h1>\n")
		return http.StatusMethodNotAllowed
	}
	w.WriteHeader(http.StatusInternalServerError)
	io.WriteString(w, "<p>The admin API has no API_TOKEN configured</p>")
	return http.StatusInternalServerError
}

func (i *Instance) listUsers(payload, string) (int, any) {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]apiView, 0, len(i.users))
	for _, u := range i.users {
		out = append(out, u.apiView())
	}
	slices.SortFunc(out, func(a, b apiView) int { return strings.Compare(a.Email, b.Email) })
	return http.StatusOK, out
}

func (i *Instance) createUser(p payload, _ string) (int, any) {
	email := p.str("email")
	if !validEmail(email) {
		return badRequest("Provided email address %s is not a valid email address", email)
	}
	if st, body := checkForwards(p); st != 0 {
		return st, body
	}
	hash, err := i.hashIfSet(p)
	if err != nil {
		return http.StatusInternalServerError, msg("Internal Server Error")
	}
	key := strings.ToLower(email)
	domain := key[strings.LastIndexByte(key, '@')+1:]

	i.mu.Lock()
	defer i.mu.Unlock()
	d, ok := i.domains[domain]
	if !ok {
		return coded(http.StatusNotFound, "Domain %s does not exist", domain)
	}
	if d.MaxUsers != -1 && i.countUsers(domain) >= d.MaxUsers {
		return coded(http.StatusConflict, "Too many users for domain %s", domain)
	}
	if _, ok := i.users[key]; ok {
		return coded(http.StatusConflict, "User %s already exists", email)
	}
	if p.flag("forward_enabled") && len(p.list("forward_destination")) == 0 {
		return badRequest("forward_destination is mandatory when forward_enabled is true")
	}
	if st, body := checkReplyDates(p); st != 0 {
		return st, body
	}
	u := newUser(key)
	u.apply(p, hash)
	i.users[key] = u
	return coded(http.StatusOK, "User %s has been created", email)
}

func (i *Instance) getUser(_ payload, email string) (int, any) {
	if !validEmail(email) {
		return badRequest("Provided email address %s is not a valid email address", email)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	u, ok := i.users[strings.ToLower(email)]
	if !ok {
		return coded(http.StatusNotFound, "User %s cannot be found", email)
	}
	return http.StatusOK, u.apiView()
}

func (i *Instance) updateUser(p payload, email string) (int, any) {
	if !validEmail(email) {
		return badRequest("Provided email address %s is not a valid email address", email)
	}
	if st, body := checkForwards(p); st != 0 {
		return st, body
	}
	// Hash before taking the lock: bcrypt is slow on purpose, and SMTP
	// logins must not queue behind it.
	hash, err := i.hashIfSet(p)
	if err != nil {
		return http.StatusInternalServerError, msg("Internal Server Error")
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	u, ok := i.users[strings.ToLower(email)]
	if !ok {
		return coded(http.StatusNotFound, "User %s cannot be found", email)
	}
	forwarding := u.ForwardEnabled
	if p.has("forward_enabled") {
		forwarding = p.flag("forward_enabled")
	}
	if forwarding && p.has("forward_destination") && len(p.list("forward_destination")) == 0 {
		return badRequest("forward_destination is mandatory when forward_enabled is true")
	}
	if st, body := checkReplyDates(p); st != 0 {
		return st, body
	}
	u.apply(p, hash)
	return coded(http.StatusOK, "User %s has been updated", email)
}

func (i *Instance) deleteUser(_ payload, email string) (int, any) {
	if !validEmail(email) {
		return badRequest("Provided email address %s is not a valid email address", email)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	key := strings.ToLower(email)
	if _, ok := i.users[key]; !ok {
		return coded(http.StatusNotFound, "User %s cannot be found", email)
	}
	delete(i.users, key)
	return coded(http.StatusOK, "User %s has been deleted", email)
}

func (i *Instance) listDomains(payload, string) (int, any) {
	i.mu.Lock()
	defer i.mu.Unlock()
	out := make([]domainView, 0, len(i.domains))
	for _, d := range i.domains {
		out = append(out, i.domainView(d))
	}
	slices.SortFunc(out, func(a, b domainView) int { return strings.Compare(a.Name, b.Name) })
	return http.StatusOK, out
}

func (i *Instance) createDomain(p payload, _ string) (int, any) {
	name := p.str("name")
	if !validDomain(name) {
		return badRequest("Domain %s is not a valid domain", name)
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.fqdnInUse(name) {
		return coded(http.StatusConflict, "Duplicate domain name %s", name)
	}
	alts := p.list("alternatives")
	for _, a := range alts {
		if count(alts, a) > 1 {
			return coded(http.StatusConflict, "Duplicate alternative domain names in request")
		}
	}
	for _, a := range alts {
		if i.fqdnInUse(a) {
			return coded(http.StatusConflict, "Duplicate alternative domain name %s", a)
		}
		if !validDomain(a) {
			return badRequest("Alternative domain %s is not a valid domain", a)
		}
	}
	d := newDomain(strings.ToLower(name))
	for k := range p {
		switch k {
		case "comment":
			d.Comment = p.str(k)
		case "max_users":
			d.MaxUsers = p.num(k)
		case "max_aliases":
			d.MaxAliases = p.num(k)
		case "max_quota_bytes":
			d.MaxQuotaBytes = p.num(k)
		case "signup_enabled":
			d.SignupEnabled = p.flag(k)
		case "alternatives":
			for _, a := range alts {
				d.Alternatives = append(d.Alternatives, strings.ToLower(a))
			}
		}
	}
	i.domains[d.Name] = d
	return coded(http.StatusOK, "Domain %s has been created", name)
}

func (i *Instance) getDomain(_ payload, name string) (int, any) {
	if !validDomain(name) {
		// MailU really answers 200 here, with a 400 in the body.
		return http.StatusOK, map[string]any{"code": http.StatusBadRequest, "message": fmt.Sprintf("Domain %s is not a valid domain", name)}
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	d, ok := i.domains[strings.ToLower(name)]
	if !ok {
		return coded(http.StatusNotFound, "Domain %s does not exist", name)
	}
	return http.StatusOK, i.domainView(d)
}

// domainView needs i.mu held.
func (i *Instance) domainView(d *domainRecord) domainView {
	v := domainView{domainRecord: *d, Managers: []string{}}
	v.Alternatives = slices.Clone(d.Alternatives)
	return v
}

// fqdnInUse needs i.mu held: a name is taken by a domain or an alternative.
func (i *Instance) fqdnInUse(name string) bool {
	name = strings.ToLower(name)
	for _, d := range i.domains {
		if d.Name == name || slices.Contains(d.Alternatives, name) {
			return true
		}
	}
	return false
}

// countUsers needs i.mu held.
func (i *Instance) countUsers(domain string) int64 {
	var n int64
	for k := range i.users {
		if strings.HasSuffix(k, "@"+domain) {
			n++
		}
	}
	return n
}

func (i *Instance) hashIfSet(p payload) (string, error) {
	if !p.has("raw_password") {
		return "", nil
	}
	h, err := hashPassword(p.str("raw_password"), i.srv.opts.BcryptCost)
	if err != nil {
		i.srv.log.Error("hash password", "domain", i.domain, "error", err)
	}
	return h, err
}

func checkForwards(p payload) (int, any) {
	for _, dest := range p.list("forward_destination") {
		if !validEmail(dest) {
			return badRequest("Provided forward destination email address %s is not a valid email address", dest)
		}
	}
	return 0, nil
}

func checkReplyDates(p payload) (int, any) {
	for _, k := range []string{"reply_startdate", "reply_enddate"} {
		if p.has(k) && parseReplyDate(p.str(k)) == "" {
			return badRequest("Provided %s %s is not a valid date (expected YYYY-MM-DD)", k, pyRepr(p.str(k)))
		}
	}
	return 0, nil
}

func count(list []string, s string) int {
	n := 0
	for _, x := range list {
		if x == s {
			n++
		}
	}
	return n
}

// msg is the body of framework errors and of the token check.
func msg(m string) map[string]string { return map[string]string{"message": m} }

// coded is the {"code", "message"} body of MailU's handlers.
func coded(status int, format string, args ...any) (int, any) {
	return status, map[string]any{"code": status, "message": fmt.Sprintf(format, args...)}
}

func badRequest(format string, args ...any) (int, any) {
	return coded(http.StatusBadRequest, format, args...)
}

func validationFailed(errs map[string]string) map[string]any {
	return map[string]any{"errors": errs, "message": "Input payload validation failed"}
}

func writeJSON(w http.ResponseWriter, status int, body any) int {
	b, err := json.Marshal(body)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message": "Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
	return status
}
