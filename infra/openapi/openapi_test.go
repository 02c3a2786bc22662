package openapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"smtp-vault/shared/api"
	"smtp-vault/shared/console"
)

func load(t *testing.T) *Contract {
	t.Helper()
	c, err := Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// operations lists the document's operations as "METHOD path".
func operations(doc *openapi3.T) map[string]*openapi3.Operation {
	out := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			out[strings.ToUpper(method)+" "+path] = op
		}
	}
	return out
}

// stringList reads an x- extension that holds a list of strings.
func stringList(op *openapi3.Operation, key string) ([]string, bool) {
	v, ok := op.Extensions[key]
	if !ok {
		return nil, false
	}
	raw, _ := json.Marshal(v)
	var out []string
	return out, json.Unmarshal(raw, &out) == nil
}

// TestContractMatchesRoutes: api.Routes and the document list the same
// operations, served by the same function, open to the same roles, with
// the same authentication (none, bearer, bearer and re-auth token).
func TestContractMatchesRoutes(t *testing.T) {
	c := load(t)
	ops := operations(c.Doc)
	for _, r := range api.Routes {
		op, ok := ops[r.Key()]
		if !ok {
			t.Errorf("api.Routes has %s; %s has no such operation", r.Key(), DocPath)
			continue
		}
		delete(ops, r.Key())
		if fn, _ := op.Extensions["x-function"].(string); fn != r.Function {
			t.Errorf("%s: x-function %q, api.Routes says %q", r.Key(), fn, r.Function)
		}
		roles, ok := stringList(op, "x-roles")
		var want []string
		for _, role := range r.Roles.Roles() {
			want = append(want, string(role))
		}
		if !ok || !slices.Equal(sorted(roles), sorted(want)) {
			t.Errorf("%s: x-roles %v, api.Routes says %v", r.Key(), roles, want)
		}
		if got, want := securityOf(op), wantSecurity(r); got != want {
			t.Errorf("%s: security %s, want %s", r.Key(), got, want)
		}
	}
	for key := range ops {
		t.Errorf("%s documents %s, which is not in api.Routes", DocPath, key)
	}
}

// securityOf renders an operation's security requirements: "none" for an
// explicit empty list, otherwise the alternatives joined by " | ".
func securityOf(op *openapi3.Operation) string {
	if op.Security == nil {
		return "unset (the operation must say)"
	}
	if len(*op.Security) == 0 {
		return "none"
	}
	var alts []string
	for _, req := range *op.Security {
		var schemes []string
		for name := range req {
			schemes = append(schemes, name)
		}
		alts = append(alts, strings.Join(sorted(schemes), "+"))
	}
	return strings.Join(alts, " | ")
}

func wantSecurity(r api.Route) string {
	switch {
	case r.Public:
		return "none"
	case r.Reauth:
		return "bearerJWT+reauthToken"
	default:
		return "bearerJWT"
	}
}

func TestSecuritySchemes(t *testing.T) {
	c := load(t)
	schemes := c.Doc.Components.SecuritySchemes
	if s := schemes["bearerJWT"]; s == nil || s.Value.Type != "http" || s.Value.Scheme != "bearer" || s.Value.BearerFormat != "JWT" {
		t.Errorf("bearerJWT must be an http bearer scheme of format JWT")
	}
	if s := schemes["reauthToken"]; s == nil || s.Value.Type != "apiKey" || s.Value.In != "header" || s.Value.Name != "X-Reauth-Token" {
		t.Errorf("reauthToken must be an apiKey in the X-Reauth-Token header")
	}
}

// errorLiteral finds the status and code of every error the API package
// writes, `&Error{http.StatusConflict, "conflict", ...}` or
// `notImplemented`'s 501, so a new code cannot go undocumented.
var errorLiteral = regexp.MustCompile(`http\.Status(\w+),\s*"([a-z_]+)"`)

var statusByName = map[string]int{
	"BadRequest": 400, "Unauthorized": 401, "Forbidden": 403, "NotFound": 404,
	"Conflict": 409, "RequestEntityTooLarge": 413, "UnsupportedMediaType": 415,
	"UnprocessableEntity": 422, "TooManyRequests": 429, "InternalServerError": 500,
	"NotImplemented": 501, "ServiceUnavailable": 503,
}

// TestEveryErrorCodeIsDocumented: each status and code the API package
// can answer is allowed by the document for that status.
func TestEveryErrorCodeIsDocumented(t *testing.T) {
	c := load(t)
	documented := map[int]map[string]bool{}
	for _, op := range operations(c.Doc) {
		for status, ref := range op.Responses.Map() {
			var code int
			if _, err := fmt.Sscan(status, &code); err != nil || ref.Value == nil {
				continue
			}
			for _, mt := range ref.Value.Content {
				for _, v := range errorCodes(mt.Schema) {
					if documented[code] == nil {
						documented[code] = map[string]bool{}
					}
					documented[code][v] = true
				}
			}
		}
	}
	files, err := filepath.Glob(filepath.Join("..", "..", "shared", "api", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no shared/api sources: %v", err)
	}
	var found int
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range errorLiteral.FindAllStringSubmatch(string(src), -1) {
			status, ok := statusByName[m[1]]
			if !ok {
				t.Errorf("%s: http.Status%s is not in this test's table; add it and document it", filepath.Base(f), m[1])
				continue
			}
			found++
			if !documented[status][m[2]] {
				t.Errorf("%s answers %d %q; %s allows it for no operation", filepath.Base(f), status, m[2], DocPath)
			}
		}
	}
	if found < 20 {
		t.Errorf("found only %d error literals in shared/api; has the pattern changed?", found)
	}
}

// errorCodes collects the values error.code may take in a response schema
// (enum or const, through allOf and oneOf).
func errorCodes(ref *openapi3.SchemaRef) []string {
	if ref == nil || ref.Value == nil {
		return nil
	}
	s := ref.Value
	var out []string
	for _, sub := range slices.Concat(s.AllOf, s.OneOf, s.AnyOf) {
		out = append(out, errorCodes(sub)...)
	}
	if e := s.Properties["error"]; e != nil && e.Value != nil {
		if code := e.Value.Properties["code"]; code != nil && code.Value != nil {
			for _, v := range code.Value.Enum {
				if str, ok := v.(string); ok {
					out = append(out, str)
				}
			}
			if str, ok := code.Value.Const.(string); ok {
				out = append(out, str)
			}
		}
	}
	return out
}

// TestCheckResponse: the check accepts what the API answers and names
// what the contract does not describe.
func TestCheckResponse(t *testing.T) {
	c := load(t)
	secure := func(extra ...string) http.Header {
		h := http.Header{}
		for k, v := range api.SecurityHeaders() {
			h.Set(k, v)
		}
		h.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(extra); i += 2 {
			h.Set(extra[i], extra[i+1])
		}
		return h
	}
	const tenant = "/api/v1/platform-admin/tenants/0b6f2c1e-6a43-4c4e-9d55-0f3c2f6d1a7b/smtp-credentials"
	retrieved := `{"tenant_id":"0b6f2c1e-6a43-4c4e-9d55-0f3c2f6d1a7b","username":"admin@t.example.com","password":"pw","webmail_url":"https://mail.t.example.com","last_rotated":"2026-03-12T09:15:02Z","next_rotation":"2026-09-08T09:15:02Z","expires_at":"2026-03-12T09:30:02Z"}`
	noStore := secure()
	noStore.Del("Cache-Control")
	tests := []struct {
		name           string
		method, target string
		status         int
		header         http.Header
		body           string
		wantErr        string // "" for none
	}{
		{"retrieve", "GET", tenant, 200, secure(), retrieved, ""},
		{"retrieve without the password", "GET", tenant, 200, secure(), strings.Replace(retrieved, `"password":"pw",`, "", 1), "password"},
		{"retrieve with an extra field", "GET", tenant, 200, secure(), strings.Replace(retrieved, `{`, `{"mailu_api_token":"x",`, 1), "mailu_api_token"},
		{"a status the operation does not list", "GET", tenant, 418, secure(), `{"error":{"code":"teapot","message":"x"}}`, "status is not supported"},
		{"a missing security header", "GET", tenant, 200, noStore, retrieved, "Cache-Control"},
		{"a code outside the status's list", "GET", tenant, 404, secure(), `{"error":{"code":"conflict","message":"x"}}`, "code"},
		{"not found", "GET", tenant, 404, secure(), `{"error":{"code":"not_found","message":"no credential"}}`, ""},
		{"API Gateway's own 401", "GET", tenant, 401, secure(), `{"message":"Unauthorized"}`, ""},
		{"cool-down with Retry-After", "POST", tenant + "/rotate", 409, secure("Retry-After", "42"), `{"error":{"code":"rotation_cooldown","message":"x"}}`, ""},
		{"overview with a query and a fresh credential", "GET", "/api/v1/platform-admin/smtp-credentials?status=ok&page=1", 200, secure(),
			`{"credentials":[{"tenant_id":"0b6f2c1e-6a43-4c4e-9d55-0f3c2f6d1a7b","domain":"t.example.com","username":"u","webmail_url":"w","last_rotated":null,"next_rotation":null,"days_until_due":180,"status":"ok","rotation_state":"current","rotation_failing":false}],"total":1,"page":1,"per_page":50}`, ""},
		{"a console page", "GET", "/platform-admin/smtp-credentials", 200, consoleHeader("text/html; charset=utf-8"), `<!doctype html><title>x</title>`, ""},
		{"no console page", "GET", "/platform-admin/tenants/x", 404, consoleHeader("text/html; charset=utf-8"), `<!doctype html><title>x</title>`, ""},
		{"a console page with the API's CSP", "GET", "/platform-admin/smtp-credentials", 200, secure("Content-Type", "text/html; charset=utf-8"), `<!doctype html>`, "Content-Security-Policy"},
		{"a path the contract does not have", "GET", "/api/v1/other", 200, secure(), `{}`, "no operation"},
		{"a method the path does not have", "DELETE", tenant, 200, secure(), `{}`, "no operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := c.CheckResponse(context.Background(), tt.method, tt.target, tt.status, tt.header, []byte(tt.body))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("unexpected error: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("accepted; want an error naming %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %v does not name %q", err, tt.wantErr)
			}
		})
	}
}

// consoleHeader is what the console function sends with a page.
func consoleHeader(contentType string) http.Header {
	site, err := console.New(console.Config{SignInMode: console.SignInLocal})
	if err != nil {
		panic(err)
	}
	h := http.Header{}
	for k, v := range site.Serve("/platform-admin/sign-in", nil).Header {
		h.Set(k, v)
	}
	h.Set("Content-Type", contentType)
	return h
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	sort.Strings(s)
	return s
}
