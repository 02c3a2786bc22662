package templatecheck

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"gopkg.in/yaml.v3"

	"smtp-vault/infra/openapi"
	"smtp-vault/shared/api"
)

const dailyCron = "cron(0 2 * * ? *)"

// routeOf is what template.yaml says of a route: method, path, function.
// Who may call it is api.Routes' business (and docs/api.md's).
type routeOf struct{ method, path, function string }

func routeKey(r api.Route) routeOf { return routeOf{r.Method, r.Path, r.Function} }

// functionDirs lists the folders under functions/.
func functionDirs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(repoRoot(t), "functions"))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	if len(out) == 0 {
		t.Fatal("no folders under functions/")
	}
	return out
}

func TestEveryFunctionFolderHasOneResource(t *testing.T) {
	tpl := loadTemplate(t)
	root := repoRoot(t)
	dirs := functionDirs(t)
	for _, name := range dirs {
		if _, ok := tpl.functions[name]; !ok {
			t.Errorf("functions/%s/ has no AWS::Serverless::Function in template.yaml", name)
		}
	}
	for _, name := range sortedKeys(tpl.functions) {
		fn := tpl.functions[name]
		if _, err := os.Stat(filepath.Join(root, "functions", name, "main.go")); err != nil {
			t.Errorf("%s: CodeUri functions/%s/ has no main.go: %v", fn.logicalID, name, err)
		}
		// SAM's go1.x builder passes neither -ldflags='-s -w' nor
		// CGO_ENABLED=0 and sees only CodeUri (no go.mod): the Makefile at
		// the root builds what is measured (build_test.go).
		for key, want := range map[string]string{"BuildMethod": "makefile", "ProjectRootDirectory": ".", "ContextPath": "."} {
			if got := literal(get(fn.node, "Metadata", key)); got != want {
				t.Errorf("%s: Metadata.%s = %q, want %q", fn.logicalID, key, got, want)
			}
		}
		for key, want := range map[string]string{"Runtime": "provided.al2023", "Handler": "bootstrap", "Tracing": "Active"} {
			if got := literal(tpl.property(fn, key)); got != want {
				t.Errorf("%s: %s = %q, want %q", fn.logicalID, key, got, want)
			}
		}
		if got := literals(tpl.property(fn, "Architectures")); !slices.Equal(got, []string{"arm64"}) {
			t.Errorf("%s: Architectures = %v, want [arm64]", fn.logicalID, got)
		}
		// Each function keeps the role SAM generates for it alone.
		if r := get(fn.node, "Properties", "Role"); r != nil {
			t.Errorf("%s: sets Role; each function must get its own SAM-generated role with its Policies", fn.logicalID)
		}
	}
}

// httpEvent is one HttpApi event of a function, as the template declares it.
type httpEvent struct {
	route      api.Route
	where      string // LogicalID.Events.Name, for messages
	authorizer string // effective authorizer: a name, or NONE
}

func (tpl *template) httpEvents(t *testing.T) []httpEvent {
	t.Helper()
	apis := tpl.resourcesOfType("AWS::Serverless::HttpApi")
	var out []httpEvent
	for _, name := range sortedKeys(tpl.functions) {
		fn := tpl.functions[name]
		events := entries(get(fn.node, "Properties", "Events"))
		for _, evName := range sortedKeys(events) {
			ev := events[evName]
			if literal(get(ev, "Type")) != "HttpApi" {
				continue
			}
			where := fn.logicalID + ".Events." + evName
			props := get(ev, "Properties")
			method, path := get(props, "Method"), get(props, "Path")
			if !isLiteral(method) || !isLiteral(path) {
				t.Errorf("%s: Method and Path must be literals, got %s and %s", where, describe(method), describe(path))
				continue
			}
			apiID := refTarget(get(props, "ApiId"))
			apiNode, ok := apis[apiID]
			if !ok {
				// Without ApiId SAM creates an implicit API that has no
				// authorizer, CORS or throttling.
				t.Errorf("%s: ApiId must be !Ref of an AWS::Serverless::HttpApi, got %s", where, describe(get(props, "ApiId")))
				continue
			}
			authz := literal(get(props, "Auth", "Authorizer"))
			if get(props, "Auth", "Authorizer") != nil && authz == "" {
				t.Errorf("%s: Auth.Authorizer must be a literal", where)
			}
			if authz == "" {
				authz = literal(get(apiNode, "Properties", "Auth", "DefaultAuthorizer"))
			}
			if authz == "" {
				authz = "NONE"
			}
			out = append(out, httpEvent{
				route:      api.Route{Method: strings.ToUpper(method.Value), Path: path.Value, Function: name},
				where:      where,
				authorizer: authz,
			})
		}
	}
	return out
}

func TestRoutesMatchAPI(t *testing.T) {
	tpl := loadTemplate(t)
	events := tpl.httpEvents(t)
	declared := map[routeOf]string{}
	for _, ev := range events {
		k := routeKey(ev.route)
		if prev, dup := declared[k]; dup {
			t.Errorf("%s and %s both declare %v", prev, ev.where, k)
		}
		declared[k] = ev.where
	}
	want := map[routeOf]bool{}
	for _, r := range api.Routes {
		want[routeKey(r)] = true
		if _, ok := declared[routeKey(r)]; !ok {
			t.Errorf("api.Routes has %s %s -> %s; template.yaml has no such HttpApi event", r.Method, r.Path, r.Function)
		}
	}
	for r, where := range declared {
		if !want[r] {
			t.Errorf("%s declares %s %s -> %s, which is not in api.Routes", where, r.method, r.path, r.function)
		}
	}
}

// TestOnlyPublicRoutesSkipTheJWTAuthorizer: the routes api.Routes marks
// Public (the console's pages) have no authorizer; every other route has
// the JWT authorizer.
func TestOnlyPublicRoutesSkipTheJWTAuthorizer(t *testing.T) {
	tpl := loadTemplate(t)
	for id, httpAPI := range tpl.resourcesOfType("AWS::Serverless::HttpApi") {
		checkJWTAuthorizer(t, id, httpAPI)
		origins := get(httpAPI, "Properties", "CorsConfiguration", "AllowOrigins")
		if origins == nil || origins.Kind != yaml.SequenceNode || len(origins.Content) != 1 || refTarget(origins.Content[0]) != "ConsoleOrigin" {
			t.Errorf("%s: CorsConfiguration.AllowOrigins must be exactly [!Ref ConsoleOrigin], got %s", id, describe(origins))
		}
	}
	apis := tpl.resourcesOfType("AWS::Serverless::HttpApi")
	public := map[routeOf]bool{}
	for _, r := range api.Routes {
		public[routeKey(r)] = r.Public
	}
	for _, ev := range tpl.httpEvents(t) {
		isPublic := public[routeKey(ev.route)]
		switch {
		case isPublic && ev.authorizer != "NONE":
			t.Errorf("%s: the public route %s %s must be served without the authorizer (a page load has no bearer header), got %q", ev.where, ev.route.Method, ev.route.Path, ev.authorizer)
		case !isPublic && ev.authorizer == "NONE":
			t.Errorf("%s: %s %s has no authorizer", ev.where, ev.route.Method, ev.route.Path)
		case !isPublic:
			if !strings.HasPrefix(ev.route.Path, "/api/") {
				t.Errorf("%s: %s is neither under /api/ nor the console page", ev.where, ev.route.Path)
			}
			if !isJWTAuthorizer(apis, ev.authorizer) {
				t.Errorf("%s: authorizer %q is not a JWT authorizer of the HttpApi", ev.where, ev.authorizer)
			}
		}
	}
}

func isJWTAuthorizer(apis map[string]*yaml.Node, name string) bool {
	for _, a := range apis {
		if get(a, "Properties", "Auth", "Authorizers", name, "JwtConfiguration") != nil {
			return true
		}
	}
	return false
}

func checkJWTAuthorizer(t *testing.T, id string, httpAPI *yaml.Node) {
	t.Helper()
	def := literal(get(httpAPI, "Properties", "Auth", "DefaultAuthorizer"))
	authz := get(httpAPI, "Properties", "Auth", "Authorizers", def)
	if def == "" || authz == nil {
		t.Errorf("%s: Auth.DefaultAuthorizer must name one of its Authorizers", id)
		return
	}
	if got := literal(get(authz, "IdentitySource")); got != "$request.header.Authorization" {
		t.Errorf("%s: authorizer %s IdentitySource = %q, want $request.header.Authorization", id, def, got)
	}
	if got := refTarget(get(authz, "JwtConfiguration", "issuer")); got != "JwtIssuer" {
		t.Errorf("%s: authorizer %s issuer must be !Ref JwtIssuer, got %s", id, def, describe(get(authz, "JwtConfiguration", "issuer")))
	}
	aud := get(authz, "JwtConfiguration", "audience")
	if aud == nil || aud.Kind != yaml.SequenceNode || len(aud.Content) != 1 || refTarget(aud.Content[0]) != "JwtAudience" {
		t.Errorf("%s: authorizer %s audience must be [!Ref JwtAudience], got %s", id, def, describe(aud))
	}
}

func TestDailySchedules(t *testing.T) {
	tpl := loadTemplate(t)
	for _, name := range []string{"rotate-sweep", "backup"} {
		fn, ok := tpl.functions[name]
		if !ok {
			t.Errorf("no resource for functions/%s/", name)
			continue
		}
		var found bool
		for evName, ev := range entries(get(fn.node, "Properties", "Events")) {
			var expr string
			switch literal(get(ev, "Type")) {
			case "Schedule":
				expr = literal(get(ev, "Properties", "Schedule"))
			case "ScheduleV2":
				expr = literal(get(ev, "Properties", "ScheduleExpression"))
				if tz := literal(get(ev, "Properties", "ScheduleExpressionTimezone")); tz != "" && tz != "UTC" {
					t.Errorf("%s.Events.%s: timezone %q, want UTC", fn.logicalID, evName, tz)
				}
			default:
				continue
			}
			if expr == dailyCron {
				found = true
			} else {
				t.Errorf("%s.Events.%s: schedule %q, want %q", fn.logicalID, evName, expr, dailyCron)
			}
		}
		if !found {
			t.Errorf("%s: no %s schedule event", fn.logicalID, dailyCron)
		}
	}
}

// TestRotateQueue checks the fan-out: RotateQueue's messages invoke the
// rotate function in batches of 10 with partial batch failures, and
// repeated failures go to a dead-letter queue.
func TestRotateQueue(t *testing.T) {
	tpl := loadTemplate(t)
	rotate, ok := tpl.functions["rotate"]
	if !ok {
		t.Fatal("no resource for functions/rotate/")
	}
	queues := tpl.resourcesOfType("AWS::SQS::Queue")
	queue, ok := queues["RotateQueue"]
	if !ok {
		t.Fatal("no AWS::SQS::Queue RotateQueue")
	}
	dlq, attr := getAtt(get(queue, "Properties", "RedrivePolicy", "deadLetterTargetArn"))
	if _, ok := queues[dlq]; !ok || attr != "Arn" || dlq == "RotateQueue" {
		t.Errorf("RotateQueue: RedrivePolicy.deadLetterTargetArn must be !GetAtt <another queue>.Arn, got %s",
			describe(get(queue, "Properties", "RedrivePolicy", "deadLetterTargetArn")))
	}

	// The source is either a SAM SQS event on the function or an explicit
	// event source mapping; both end up with the same properties.
	type source struct {
		where string
		props *yaml.Node
		queue *yaml.Node
	}
	var sources []source
	for evName, ev := range entries(get(rotate.node, "Properties", "Events")) {
		if literal(get(ev, "Type")) == "SQS" {
			sources = append(sources, source{rotate.logicalID + ".Events." + evName, get(ev, "Properties"), get(ev, "Properties", "Queue")})
		}
	}
	for id, m := range tpl.resourcesOfType("AWS::Lambda::EventSourceMapping") {
		if refTarget(get(m, "Properties", "FunctionName")) == rotate.logicalID {
			sources = append(sources, source{id, get(m, "Properties"), get(m, "Properties", "EventSourceArn")})
		}
	}
	var fromRotateQueue int
	for _, s := range sources {
		if q, a := getAtt(s.queue); q != "RotateQueue" || a != "Arn" {
			t.Errorf("%s: the rotate function reads from %s; only RotateQueue is expected", s.where, describe(s.queue))
			continue
		}
		fromRotateQueue++
		if got := literal(get(s.props, "BatchSize")); got != "10" {
			t.Errorf("%s: BatchSize = %q, want 10", s.where, got)
		}
		if got := literals(get(s.props, "FunctionResponseTypes")); !slices.Contains(got, "ReportBatchItemFailures") {
			t.Errorf("%s: FunctionResponseTypes = %v, want ReportBatchItemFailures", s.where, got)
		}
	}
	if fromRotateQueue != 1 {
		t.Errorf("RotateQueue invokes the rotate function %d times, want once", fromRotateQueue)
	}

	// Lambda refuses an SQS source whose visibility timeout is shorter than
	// the function's timeout.
	vis, err1 := strconv.Atoi(literal(get(queue, "Properties", "VisibilityTimeout")))
	timeout, err2 := strconv.Atoi(literal(tpl.property(rotate, "Timeout")))
	if err1 != nil || err2 != nil || vis < timeout {
		t.Errorf("RotateQueue VisibilityTimeout (%v) must be a literal of at least the rotate function's Timeout (%v)",
			describe(get(queue, "Properties", "VisibilityTimeout")), describe(tpl.property(rotate, "Timeout")))
	}
}

// secretName matches environment variable names that would carry a secret.
var secretName = regexp.MustCompile(`(?i)token|secret|passw|private|credential|api_?key`)

func TestNoSecretInEnvironment(t *testing.T) {
	tpl := loadTemplate(t)
	globals := get(tpl.root, "Globals", "Function", "Environment", "Variables")
	if got := literal(get(globals, "VAULT_AUTH_METHOD")); got != "aws" {
		t.Errorf("Globals: VAULT_AUTH_METHOD = %q, want aws (the functions log in with their IAM role)", got)
	}
	if got := literal(get(globals, "TRACING")); got != "xray" {
		t.Errorf("Globals: TRACING = %q, want xray", got)
	}
	check := func(where string, vars *yaml.Node) {
		for _, k := range sortedKeys(entries(vars)) {
			if secretName.MatchString(k) {
				t.Errorf("%s: environment variable %s looks like a secret; secrets live in Vault", where, k)
			}
		}
	}
	check("Globals", globals)
	for _, name := range sortedKeys(tpl.functions) {
		fn := tpl.functions[name]
		check(fn.logicalID, get(fn.node, "Properties", "Environment", "Variables"))
	}
}

func TestEveryFunctionHasALogGroupWithRetention(t *testing.T) {
	tpl := loadTemplate(t)
	groups := tpl.resourcesOfType("AWS::Logs::LogGroup")
	for _, name := range sortedKeys(tpl.functions) {
		fn := tpl.functions[name]
		want := "/aws/lambda/${" + fn.logicalID + "}"
		var found bool
		for _, g := range groups {
			if subString(get(g, "Properties", "LogGroupName")) == want {
				found = true
				if get(g, "Properties", "RetentionInDays") == nil {
					t.Errorf("%s: log group %s has no RetentionInDays", fn.logicalID, want)
				}
			}
		}
		if !found {
			t.Errorf("%s: no AWS::Logs::LogGroup named !Sub %s", fn.logicalID, want)
		}
	}
}

// eventOwner is the function a sample event belongs to: events/<fn>.json
// or events/<fn>-<variant>.json, the longest matching function name
// winning (rotate-sweep.json belongs to rotate-sweep, not rotate).
func eventOwner(file string, functions []string) string {
	base := strings.TrimSuffix(file, ".json")
	var owner string
	for _, fn := range functions {
		if (base == fn || strings.HasPrefix(base, fn+"-")) && len(fn) > len(owner) {
			owner = fn
		}
	}
	return owner
}

func TestSampleEvents(t *testing.T) {
	root := repoRoot(t)
	functions := functionDirs(t)
	files, err := filepath.Glob(filepath.Join(root, "events", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]string{} // "METHOD PATH" -> function
	for _, r := range api.Routes {
		routes[r.Method+" "+r.Path] = r.Function
	}
	for _, path := range files {
		file := filepath.Base(path)
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := validJSONValue(raw); err != nil {
			t.Errorf("events/%s: %v", file, err)
			continue
		}
		owner := eventOwner(file, functions)
		if owner == "" {
			t.Errorf("events/%s: name it <function>.json or <function>-<variant>.json", file)
			continue
		}
		var probe struct {
			RouteKey       string `json:"routeKey"`
			RequestContext struct {
				Authorizer *struct {
					JWT struct {
						Claims map[string]any `json:"claims"`
					} `json:"jwt"`
				} `json:"authorizer"`
			} `json:"requestContext"`
		}
		if err := json.Unmarshal(raw, &probe); err != nil || probe.RouteKey == "" {
			continue // not an HTTP API event
		}
		fn, ok := routes[probe.RouteKey]
		if !ok || fn != owner {
			t.Errorf("events/%s: routeKey %q is not a route of %s in api.Routes", file, probe.RouteKey, owner)
		}
		if _, routePath, _ := strings.Cut(probe.RouteKey, " "); strings.HasPrefix(routePath, "/api/") {
			a := probe.RequestContext.Authorizer
			if a == nil {
				t.Errorf("events/%s: an /api/ event carries requestContext.authorizer.jwt.claims", file)
				continue
			}
			for _, k := range []string{"sub", "roles", "iss", "aud", "exp"} {
				s, ok := a.JWT.Claims[k].(string)
				if !ok || s == "" {
					t.Errorf("events/%s: claim %q must be a non-empty string, as API Gateway passes claims", file, k)
				}
			}
			if s, _ := a.JWT.Claims["roles"].(string); !strings.HasPrefix(s, "[") || !strings.HasSuffix(s, "]") {
				t.Errorf("events/%s: roles claim %q is not rendered as API Gateway renders arrays ([a b])", file, s)
			}
		}
	}
	for _, fn := range functions {
		if _, err := os.Stat(filepath.Join(root, "events", fn+".json")); err != nil {
			t.Errorf("functions/%s/ has no sample event events/%s.json", fn, fn)
		}
	}
}

// validJSONValue accepts exactly one JSON value.
func validJSONValue(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the JSON value")
	}
	return nil
}

// TestTemplateRoutesMatchTheContract: the HttpApi events of template.yaml
// and the operations of docs/openapi.yaml are the same routes, and a route
// without the JWT authorizer is exactly one the contract asks no
// authentication for.
func TestTemplateRoutesMatchTheContract(t *testing.T) {
	tpl := loadTemplate(t)
	contract, err := openapi.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ops := map[string]*openapi3.Operation{}
	for path, item := range contract.Doc.Paths.Map() {
		for method, op := range item.Operations() {
			ops[strings.ToUpper(method)+" "+path] = op
		}
	}
	for _, ev := range tpl.httpEvents(t) {
		key := ev.route.Key()
		op, ok := ops[key]
		if !ok {
			t.Errorf("%s declares %s; %s has no such operation", ev.where, key, openapi.DocPath)
			continue
		}
		delete(ops, key)
		if fn, _ := op.Extensions["x-function"].(string); fn != ev.route.Function {
			t.Errorf("%s: %s serves %s, the contract's x-function says %q", ev.where, key, ev.route.Function, fn)
		}
		open := op.Security != nil && len(*op.Security) == 0
		if open != (ev.authorizer == "NONE") {
			t.Errorf("%s: authorizer %s, but the contract's security for %s is %v", ev.where, ev.authorizer, key, op.Security)
		}
	}
	for key := range ops {
		t.Errorf("%s documents %s; template.yaml has no HttpApi event for it", openapi.DocPath, key)
	}
}
