// Package localgw is the local stand-in for API Gateway's HTTP API: it turns
// HTTP requests into the events.APIGatewayV2HTTPRequest that API Gateway
// sends (JWT claims verified and placed in the authorizer context, as the
// JWT authorizer does), invokes the function's Lambda handler through the
// same JSON round trip as the Lambda runtime, and turns the response back.
package localgw

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/google/uuid"

	"smtp-vault/shared/api"
)

// Authorizer verifies a bearer token and returns the claims API Gateway
// would pass to the function.
type Authorizer interface {
	Authorize(ctx context.Context, authorizationHeader string) (map[string]string, error)
}

// Gateway routes HTTP requests to function handlers.
type Gateway struct {
	routes    []api.Route
	functions map[string]lambda.Handler
	auth      Authorizer
	log       *slog.Logger
	extra     *http.ServeMux // non-API paths (JWKS)
	cors      *CORS
}

// CORS is an HTTP API's CorsConfiguration (template.yaml), which API
// Gateway applies before any route or authorizer: it answers preflight
// requests itself, and adds Access-Control-Allow-Origin to responses for
// an allowed origin only, replacing whatever CORS headers a function sets.
type CORS struct {
	AllowOrigins  []string
	AllowMethods  []string
	AllowHeaders  []string // lower case
	ExposeHeaders []string // lower case
	MaxAge        int      // seconds
}

// ConsoleCORS is the CORS configuration of template.yaml's HttpApi, with
// the console's origin as the only allowed one (a test keeps the two in
// step).
func ConsoleCORS(origin string) CORS {
	return CORS{
		AllowOrigins:  []string{origin},
		AllowMethods:  []string{"GET", "POST"},
		AllowHeaders:  []string{"authorization", "content-type", "x-reauth-token"},
		ExposeHeaders: []string{"retry-after"},
		MaxAge:        600,
	}
}

// SetCORS makes the gateway apply c, as API Gateway applies an HTTP API's
// CorsConfiguration. Without it no CORS header is ever sent.
func (g *Gateway) SetCORS(c CORS) { g.cors = &c }

func (c *CORS) allows(origin string) bool {
	return c != nil && origin != "" && slices.Contains(c.AllowOrigins, origin)
}

// preflight answers an OPTIONS request with Origin and
// Access-Control-Request-Method as API Gateway does: 204, with the allowed
// methods and headers for an allowed origin, and no CORS header (so the
// browser refuses) for any other.
func (g *Gateway) preflight(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	for k, v := range api.SecurityHeaders() {
		w.Header().Set(k, v)
	}
	w.Header().Set("Vary", "Origin")
	if g.cors.allows(origin) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
		w.Header().Set("Access-Control-Allow-Methods", strings.Join(g.cors.AllowMethods, ","))
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(g.cors.AllowHeaders, ","))
		w.Header().Set("Access-Control-Max-Age", strconv.Itoa(g.cors.MaxAge))
	}
	w.WriteHeader(http.StatusNoContent)
}

// New returns a gateway for the routes, with the handlers by function name
// (any signature lambda.Start accepts).
func New(routes []api.Route, handlers map[string]any, auth Authorizer, log *slog.Logger) *Gateway {
	g := &Gateway{routes: routes, functions: map[string]lambda.Handler{}, auth: auth, log: log, extra: http.NewServeMux()}
	for name, h := range handlers {
		g.functions[name] = lambda.NewHandler(h)
	}
	return g
}

// Handle serves a non-API path, such as the JWKS of the local issuer.
func (g *Gateway) Handle(pattern string, h http.Handler) { g.extra.Handle(pattern, h) }

// Invoke calls a function with a raw event, as `sam local invoke` does.
func (g *Gateway) Invoke(ctx context.Context, function string, event []byte) ([]byte, error) {
	h, ok := g.functions[function]
	if !ok {
		return nil, fmt.Errorf("no function %q", function)
	}
	return h.Invoke(ctx, event)
}

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.cors != nil {
		if r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != "" {
			g.preflight(w, r)
			return
		}
		w.Header().Set("Vary", "Origin")
		if origin := r.Header.Get("Origin"); g.cors.allows(origin) {
			w.Header().Set("Access-Control-Allow-Origin", origin)
			if len(g.cors.ExposeHeaders) > 0 {
				w.Header().Set("Access-Control-Expose-Headers", strings.Join(g.cors.ExposeHeaders, ","))
			}
		}
	}
	route, params, ok := g.match(r.Method, r.URL.Path)
	if !ok {
		if h, pattern := g.extra.Handler(r); pattern != "" {
			h.ServeHTTP(w, r)
			return
		}
		writeError(w, http.StatusNotFound, "not_found", "no such route")
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20)) // API Gateway's payload limit
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_body", "could not read the body")
		return
	}
	req := toEvent(r, route, params, body)
	if strings.HasPrefix(route.Path, "/api/") {
		claims, err := g.auth.Authorize(r.Context(), r.Header.Get("Authorization"))
		if err != nil {
			// API Gateway's JWT authorizer refuses the request before the
			// function runs.
			g.log.InfoContext(r.Context(), "jwt authorizer refused", "route", req.RouteKey, "error", err)
			writeError(w, http.StatusUnauthorized, "unauthenticated", "a valid bearer token is required")
			return
		}
		req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims},
		}
	}
	payload, err := json.Marshal(req)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	out, err := g.functions[route.Function].Invoke(r.Context(), payload)
	if err != nil {
		// A function error is a 500 "Internal Server Error" in API Gateway.
		g.log.ErrorContext(r.Context(), "function failed", "function", route.Function, "error", err)
		writeError(w, http.StatusInternalServerError, "internal", "internal error")
		return
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil || resp.StatusCode == 0 {
		writeError(w, http.StatusInternalServerError, "internal", "malformed function response")
		return
	}
	for k, v := range resp.Headers {
		if g.cors == nil || !isCORSHeader(k) {
			w.Header().Set(k, v)
		}
	}
	for k, vs := range resp.MultiValueHeaders {
		if g.cors != nil && isCORSHeader(k) {
			continue
		}
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		w.Header().Add("Set-Cookie", c)
	}
	w.WriteHeader(resp.StatusCode)
	b := []byte(resp.Body)
	if resp.IsBase64Encoded {
		if b, err = base64.StdEncoding.DecodeString(resp.Body); err != nil {
			return
		}
	}
	_, _ = w.Write(b)
}

// match finds the route for a request; {name} matches one path segment,
// {name+} the rest of the path.
func (g *Gateway) match(method, path string) (api.Route, map[string]string, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for _, rt := range g.routes {
		if rt.Method != method {
			continue
		}
		if params, ok := matchPath(strings.Split(strings.Trim(rt.Path, "/"), "/"), segs); ok {
			return rt, params, true
		}
	}
	return api.Route{}, nil, false
}

func matchPath(pattern, segs []string) (map[string]string, bool) {
	params := map[string]string{}
	for i, p := range pattern {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "+}") {
			if i >= len(segs) {
				return nil, false
			}
			params[strings.Trim(p, "{+}")] = strings.Join(segs[i:], "/")
			return params, true
		}
		if i >= len(segs) {
			return nil, false
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if segs[i] == "" {
				return nil, false
			}
			params[strings.Trim(p, "{}")] = segs[i]
			continue
		}
		if p != segs[i] {
			return nil, false
		}
	}
	return params, len(pattern) == len(segs)
}

// toEvent builds the payload format 2.0 event API Gateway would send.
func toEvent(r *http.Request, rt api.Route, params map[string]string, body []byte) events.APIGatewayV2HTTPRequest {
	headers := map[string]string{}
	for k, vs := range r.Header {
		if strings.EqualFold(k, "Cookie") {
			continue
		}
		headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	var query map[string]string
	if len(r.URL.Query()) > 0 {
		query = map[string]string{}
		for k, vs := range r.URL.Query() {
			query[k] = strings.Join(vs, ",")
		}
	}
	var cookies []string
	for _, c := range r.Cookies() {
		cookies = append(cookies, c.Name+"="+c.Value)
	}
	sourceIP := r.RemoteAddr
	if i := strings.LastIndex(sourceIP, ":"); i > 0 {
		sourceIP = strings.Trim(sourceIP[:i], "[]")
	}
	now := time.Now().UTC()
	routeKey := rt.Method + " " + rt.Path
	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              routeKey,
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			AccountID:    "000000000000",
			APIID:        "local",
			DomainName:   r.Host,
			DomainPrefix: "local",
			RequestID:    uuid.NewString(),
			RouteKey:     routeKey,
			Stage:        "$default",
			Time:         now.Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP,
				UserAgent: r.UserAgent(),
			},
		},
	}
	if len(body) > 0 {
		if utf8.Valid(body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// isCORSHeader: API Gateway replaces a function's CORS headers with its
// own when the API has a CORS configuration.
func isCORSHeader(name string) bool {
	return strings.HasPrefix(strings.ToLower(name), "access-control-")
}

// writeError answers for the gateway itself (no route, authorizer refusal)
// with the project's error body and the headers every API response has.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	for k, v := range api.SecurityHeaders() {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]string{"code": code, "message": msg}})
}
