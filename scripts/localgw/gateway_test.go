package localgw_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/scripts/localgw"
	"smtp-vault/shared/api"
)

var testRoutes = []api.Route{
	{Method: "GET", Path: "/api/v1/exact", Function: "exact"},
	{Method: "GET", Path: "/api/v1/tenants/{tenant_id}/creds", Function: "creds"},
	{Method: "POST", Path: "/api/v1/tenants/{tenant_id}/creds/rotate", Function: "rotate"},
	{Method: "GET", Path: "/platform-admin/{proxy+}", Function: "console"},
	{Method: "GET", Path: "/api/v1/fails", Function: "fails"},
	{Method: "GET", Path: "/api/v1/custom", Function: "custom"},
}

// fakeAuth answers like the JWT authorizer and remembers what it was asked.
type fakeAuth struct {
	mu     sync.Mutex
	calls  []string
	claims map[string]string
	err    error
}

func (a *fakeAuth) Authorize(_ context.Context, header string) (map[string]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls = append(a.calls, header)
	return a.claims, a.err
}

func (a *fakeAuth) seen() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.calls)
}

// recorder is a set of handlers that remember the events they receive.
type recorder struct {
	mu     sync.Mutex
	events map[string][]events.APIGatewayV2HTTPRequest
}

func (r *recorder) handler(name string, resp events.APIGatewayV2HTTPResponse, err error) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return func(_ context.Context, ev events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.events[name] = append(r.events[name], ev)
		return resp, err
	}
}

func (r *recorder) got(name string) []events.APIGatewayV2HTTPRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events[name])
}

func (r *recorder) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, evs := range r.events {
		n += len(evs)
	}
	return n
}

var customBody = []byte{0x00, 0xff, 0x10, 0x80, 'o', 'k'}

func newGateway(t *testing.T, a *fakeAuth) (*recorder, *httptest.Server, *localgw.Gateway) {
	t.Helper()
	rec := &recorder{events: map[string][]events.APIGatewayV2HTTPRequest{}}
	ok := events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: `{"ok":true}`}
	handlers := map[string]any{
		"fails": rec.handler("fails", events.APIGatewayV2HTTPResponse{}, errors.New("boom")),
		"custom": rec.handler("custom", events.APIGatewayV2HTTPResponse{
			StatusCode:      201,
			Headers:         map[string]string{"Content-Type": "application/octet-stream", "X-Single": "one"},
			Cookies:         []string{"session=abc; Path=/; HttpOnly", "theme=dark"},
			Body:            base64.StdEncoding.EncodeToString(customBody),
			IsBase64Encoded: true,
		}, nil),
	}
	for _, n := range []string{"exact", "creds", "rotate", "console"} {
		handlers[n] = rec.handler(n, ok, nil)
	}
	gw := localgw.New(testRoutes, handlers, a, slog.New(slog.NewTextHandler(io.Discard, nil)))
	srv := httptest.NewServer(gw)
	t.Cleanup(srv.Close)
	return rec, srv, gw
}

func okAuth() *fakeAuth {
	return &fakeAuth{claims: map[string]string{"sub": "alice", "roles": "[platform-admin]"}}
}

// noRedirects shows the gateway's own answer, never one reached by
// following a redirect.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type result struct {
	status int
	header http.Header
	body   []byte
}

func send(t *testing.T, method, url string, body []byte, headers map[string]string) result {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := noRedirects.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return result{resp.StatusCode, resp.Header, b}
}

func errorCode(t *testing.T, r result) string {
	t.Helper()
	var body struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("error body is not JSON: %q", r.body)
	}
	if body.Error.Message == "" {
		t.Fatalf("error without a message: %s", r.body)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("error Content-Type %q", ct)
	}
	return body.Error.Code
}

func TestRouteMatching(t *testing.T) {
	cases := []struct {
		name, method, path string
		function           string // "" means 404
		params             map[string]string
	}{
		{"exact", "GET", "/api/v1/exact", "exact", nil},
		{"segment", "GET", "/api/v1/tenants/abc-123/creds", "creds", map[string]string{"tenant_id": "abc-123"}},
		{"segment then literal", "POST", "/api/v1/tenants/t1/creds/rotate", "rotate", map[string]string{"tenant_id": "t1"}},
		{"greedy one segment", "GET", "/platform-admin/overview", "console", map[string]string{"proxy": "overview"}},
		{"greedy many segments", "GET", "/platform-admin/tenants/t1/smtp-credentials", "console", map[string]string{"proxy": "tenants/t1/smtp-credentials"}},
		{"greedy needs a segment", "GET", "/platform-admin", "", nil},
		{"trailing segment", "GET", "/api/v1/tenants/t1/creds/extra", "", nil},
		{"trailing segment after exact", "GET", "/api/v1/exact/more", "", nil},
		{"missing segment", "GET", "/api/v1/tenants/creds", "", nil},
		{"empty segment", "GET", "/api/v1/tenants//creds", "", nil},
		{"prefix only", "GET", "/api/v1", "", nil},
		{"wrong method", "POST", "/api/v1/tenants/t1/creds", "", nil},
		{"wrong method exact", "DELETE", "/api/v1/exact", "", nil},
		{"unknown", "GET", "/nothing", "", nil},
		{"case matters", "GET", "/API/v1/exact", "", nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			rec, srv, _ := newGateway(t, okAuth())
			r := send(t, c.method, srv.URL+c.path, nil, map[string]string{"Authorization": "Bearer x"})
			if c.function == "" {
				if r.status != 404 || errorCode(t, r) != "not_found" {
					t.Fatalf("got %d %s, want 404 not_found", r.status, r.body)
				}
				if rec.total() != 0 {
					t.Fatal("a handler ran for an unmatched route")
				}
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			got := rec.got(c.function)
			if len(got) != 1 || rec.total() != 1 {
				t.Fatalf("function %s called %d times, %d calls in all", c.function, len(got), rec.total())
			}
			params := got[0].PathParameters
			if len(params) == 0 {
				params = nil
			}
			if !maps.Equal(params, c.params) {
				t.Fatalf("path parameters %v, want %v", params, c.params)
			}
		})
	}
}

func TestEventOfAnAPIRoute(t *testing.T) {
	a := okAuth()
	rec, srv, _ := newGateway(t, a)
	body := []byte(`{"reason":"rotación"}`)
	r := send(t, "POST", srv.URL+"/api/v1/tenants/t-42/creds/rotate?page=2&user=a&user=b", body, map[string]string{
		"Authorization":   "Bearer tok-1",
		"User-Agent":      "gw-test/1.0",
		"X-Reauth-Token":  "reauth",
		"X-MiXeD-CaSe":    "v",
		"Content-Type":    "application/json",
		"X-Forwarded-For": "198.51.100.1",
	})
	if r.status != 200 {
		t.Fatalf("status %d: %s", r.status, r.body)
	}
	evs := rec.got("rotate")
	if len(evs) != 1 {
		t.Fatalf("handler called %d times", len(evs))
	}
	ev := evs[0]
	checks := []struct{ name, got, want string }{
		{"version", ev.Version, "2.0"},
		{"routeKey", ev.RouteKey, "POST /api/v1/tenants/{tenant_id}/creds/rotate"},
		{"requestContext.routeKey", ev.RequestContext.RouteKey, "POST /api/v1/tenants/{tenant_id}/creds/rotate"},
		{"rawPath", ev.RawPath, "/api/v1/tenants/t-42/creds/rotate"},
		{"rawQueryString", ev.RawQueryString, "page=2&user=a&user=b"},
		{"http.method", ev.RequestContext.HTTP.Method, "POST"},
		{"http.path", ev.RequestContext.HTTP.Path, "/api/v1/tenants/t-42/creds/rotate"},
		{"http.sourceIp", ev.RequestContext.HTTP.SourceIP, "127.0.0.1"},
		{"http.userAgent", ev.RequestContext.HTTP.UserAgent, "gw-test/1.0"},
		{"pathParameters.tenant_id", ev.PathParameters["tenant_id"], "t-42"},
		{"query page", ev.QueryStringParameters["page"], "2"},
		{"query user (multi)", ev.QueryStringParameters["user"], "a,b"},
		{"header x-reauth-token", ev.Headers["x-reauth-token"], "reauth"},
		{"header x-mixed-case", ev.Headers["x-mixed-case"], "v"},
		{"header user-agent", ev.Headers["user-agent"], "gw-test/1.0"},
		{"header authorization", ev.Headers["authorization"], "Bearer tok-1"},
		{"body", ev.Body, string(body)},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	for k := range ev.Headers {
		if k != strings.ToLower(k) {
			t.Errorf("header %q is not lower-cased", k)
		}
	}
	if ev.IsBase64Encoded {
		t.Error("a UTF-8 body was marked base64")
	}
	if ev.RequestContext.Authorizer == nil || ev.RequestContext.Authorizer.JWT == nil {
		t.Fatal("no JWT authorizer context on an /api/ route")
	}
	if !maps.Equal(ev.RequestContext.Authorizer.JWT.Claims, a.claims) {
		t.Errorf("claims %v, want %v", ev.RequestContext.Authorizer.JWT.Claims, a.claims)
	}
	if calls := a.seen(); !slices.Equal(calls, []string{"Bearer tok-1"}) {
		t.Errorf("authorizer saw %q, want the Authorization header once", calls)
	}
}

func TestBinaryBodyIsBase64(t *testing.T) {
	rec, srv, _ := newGateway(t, okAuth())
	body := []byte{0xff, 0xfe, 0x00, 0x01, 'a'}
	if r := send(t, "POST", srv.URL+"/api/v1/tenants/t/creds/rotate", body, map[string]string{"Authorization": "Bearer x"}); r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	ev := rec.got("rotate")[0]
	if !ev.IsBase64Encoded {
		t.Fatal("binary body not marked isBase64Encoded")
	}
	got, err := base64.StdEncoding.DecodeString(ev.Body)
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("body %q does not decode to the sent bytes (%v)", ev.Body, err)
	}
}

func TestConsoleRouteHasNoAuthorizer(t *testing.T) {
	a := okAuth()
	rec, srv, _ := newGateway(t, a)
	r := send(t, "GET", srv.URL+"/platform-admin/tenants/t1/smtp-credentials", nil, map[string]string{"Authorization": "Bearer x"})
	if r.status != 200 {
		t.Fatalf("status %d", r.status)
	}
	ev := rec.got("console")[0]
	if ev.RequestContext.Authorizer != nil {
		t.Fatalf("console route got authorizer context %+v", ev.RequestContext.Authorizer)
	}
	if len(a.seen()) != 0 {
		t.Fatal("the authorizer ran for a non-API route")
	}
	if ev.Body != "" || ev.IsBase64Encoded {
		t.Fatalf("empty body passed as %q (base64 %v)", ev.Body, ev.IsBase64Encoded)
	}
}

func TestAuthorizerErrorIs401AndHandlerNotCalled(t *testing.T) {
	a := &fakeAuth{err: errors.New("token expired")}
	rec, srv, _ := newGateway(t, a)
	for _, path := range []string{"/api/v1/exact", "/api/v1/tenants/t/creds"} {
		r := send(t, "GET", srv.URL+path, nil, map[string]string{"Authorization": "Bearer expired"})
		if r.status != 401 || errorCode(t, r) != "unauthenticated" {
			t.Fatalf("%s: got %d %s, want 401 unauthenticated", path, r.status, r.body)
		}
		if strings.Contains(string(r.body), "token expired") {
			t.Errorf("%s: the authorizer's reason leaked to the client", path)
		}
	}
	if rec.total() != 0 {
		t.Fatal("a handler ran although the authorizer refused the request")
	}
}

func TestResponseIsWrittenBack(t *testing.T) {
	_, srv, _ := newGateway(t, okAuth())
	r := send(t, "GET", srv.URL+"/api/v1/custom", nil, map[string]string{"Authorization": "Bearer x"})
	if r.status != 201 {
		t.Fatalf("status %d, want the handler's 201", r.status)
	}
	if r.header.Get("X-Single") != "one" || r.header.Get("Content-Type") != "application/octet-stream" {
		t.Errorf("headers not passed through: %v", r.header)
	}
	if got := r.header.Values("Set-Cookie"); !slices.Equal(got, []string{"session=abc; Path=/; HttpOnly", "theme=dark"}) {
		t.Errorf("Set-Cookie %q", got)
	}
	if !bytes.Equal(r.body, customBody) {
		t.Errorf("body %q, want the decoded base64 bytes %q", r.body, customBody)
	}
}

func TestHandlerErrorIs500(t *testing.T) {
	rec, srv, _ := newGateway(t, okAuth())
	r := send(t, "GET", srv.URL+"/api/v1/fails", nil, map[string]string{"Authorization": "Bearer x"})
	if r.status != 500 || errorCode(t, r) != "internal" {
		t.Fatalf("got %d %s, want 500 internal", r.status, r.body)
	}
	if strings.Contains(string(r.body), "boom") {
		t.Error("the function's error text leaked to the client")
	}
	if len(rec.got("fails")) != 1 {
		t.Fatal("the failing handler was not called")
	}
}

func TestInvoke(t *testing.T) {
	rec, _, gw := newGateway(t, okAuth())
	ev, _ := json.Marshal(events.APIGatewayV2HTTPRequest{Version: "2.0", RawPath: "/direct"})
	out, err := gw.Invoke(context.Background(), "exact", ev)
	if err != nil {
		t.Fatalf("Invoke: %v", err)
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode != 200 {
		t.Fatalf("Invoke output %s (%v)", out, err)
	}
	if got := rec.got("exact"); len(got) != 1 || got[0].RawPath != "/direct" {
		t.Fatalf("handler got %+v", got)
	}
	if _, err := gw.Invoke(context.Background(), "no-such-function", ev); err == nil || !strings.Contains(err.Error(), "no-such-function") {
		t.Fatalf("Invoke of an unknown function: %v, want an error naming it", err)
	}
}
