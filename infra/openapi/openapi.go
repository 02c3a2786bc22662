// Package openapi is the HTTP API's contract, docs/openapi.yaml, for
// tests: it loads and validates the document, and checks a real response
// against the operation that answered it, so end-to-end tests find a
// response the contract does not describe.
package openapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
)

// The console's pages and assets are text the contract describes as
// strings; kin-openapi decodes only text/plain of these by itself.
func init() {
	text := func(body io.Reader, _ http.Header, _ *openapi3.SchemaRef, _ openapi3filter.EncodingFn) (any, error) {
		b, err := io.ReadAll(body)
		return string(b), err
	}
	for _, ct := range []string{"text/html", "text/css", "text/javascript"} {
		openapi3filter.RegisterBodyDecoder(ct, text)
	}
}

// DocPath is where the document lives, from the repository root.
const DocPath = "docs/openapi.yaml"

// Contract is a loaded, valid document and its path templates.
type Contract struct {
	Doc   *openapi3.T
	paths []pathTemplate
}

// pathTemplate matches request paths to one of the document's paths.
type pathTemplate struct {
	template string // as in the document: /a/{tenant_id}/b
	re       *regexp.Regexp
	names    []string // the path parameters, in order
}

// paramPattern finds {name} and API Gateway's greedy {name+}.
var paramPattern = regexp.MustCompile(`\{([^}]+)\}`)

func compileTemplate(tmpl string) (pathTemplate, error) {
	pt := pathTemplate{template: tmpl}
	var re strings.Builder
	re.WriteString("^")
	last := 0
	for _, m := range paramPattern.FindAllStringSubmatchIndex(tmpl, -1) {
		re.WriteString(regexp.QuoteMeta(tmpl[last:m[0]]))
		name := tmpl[m[2]:m[3]]
		if strings.HasSuffix(name, "+") {
			re.WriteString("(.+)") // greedy: the rest of the path, slashes included
		} else {
			re.WriteString("([^/]+)")
		}
		pt.names = append(pt.names, name)
		last = m[1]
	}
	re.WriteString(regexp.QuoteMeta(tmpl[last:]))
	re.WriteString("$")
	var err error
	pt.re, err = regexp.Compile(re.String())
	return pt, err
}

// LoadFile reads and validates the document at path.
func LoadFile(ctx context.Context, path string) (*Contract, error) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	if !doc.IsOpenAPI31OrLater() {
		return nil, fmt.Errorf("%s: openapi %q, want 3.1", path, doc.OpenAPI)
	}
	if err := doc.Validate(ctx); err != nil {
		return nil, fmt.Errorf("validate %s: %w", path, err)
	}
	c := &Contract{Doc: doc}
	for _, tmpl := range doc.Paths.InMatchingOrder() {
		pt, err := compileTemplate(tmpl)
		if err != nil {
			return nil, fmt.Errorf("%s: path %s: %w", path, tmpl, err)
		}
		c.paths = append(c.paths, pt)
	}
	return c, nil
}

// Load reads the repository's document, found from the working directory
// upwards (a test runs in its package's folder).
func Load(ctx context.Context) (*Contract, error) {
	dir, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	for {
		p := filepath.Join(dir, DocPath)
		if _, err := os.Stat(p); err == nil {
			return LoadFile(ctx, p)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return nil, fmt.Errorf("no %s above the working directory", DocPath)
		}
		dir = parent
	}
}

// ErrNoOperation: the document has no operation for the method and path.
var ErrNoOperation = errors.New("no operation in the contract")

// CheckResponse says how a response differs from the contract: its status
// must be one the operation lists, with the headers and body it describes.
// target is the request's path, with or without a query.
func (c *Contract) CheckResponse(ctx context.Context, method, target string, status int, header http.Header, body []byte) error {
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("parse %q: %w", target, err)
	}
	route, params, err := c.route(method, u.Path)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return err
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	if err := openapi3filter.ValidateResponse(ctx, in); err != nil {
		return fmt.Errorf("%s %s answered %d: %w", method, route.Path, status, err)
	}
	return nil
}

// route finds the operation a request reaches.
func (c *Contract) route(method, path string) (*routers.Route, map[string]string, error) {
	for _, pt := range c.paths {
		m := pt.re.FindStringSubmatch(path)
		if m == nil {
			continue
		}
		item := c.Doc.Paths.Value(pt.template)
		op := item.GetOperation(method)
		if op == nil {
			return nil, nil, fmt.Errorf("%s %s: %w", method, pt.template, ErrNoOperation)
		}
		params := map[string]string{}
		for i, name := range pt.names {
			params[name] = m[i+1]
		}
		return &routers.Route{Spec: c.Doc, Path: pt.template, PathItem: item, Method: method, Operation: op}, params, nil
	}
	return nil, nil, fmt.Errorf("%s %s: %w", method, path, ErrNoOperation)
}

var (
	repoOnce     sync.Once
	repoContract *Contract
	repoErr      error
)

// ValidateResponse fails t when a response the test received differs from
// the repository's contract. The document is loaded once per test binary.
func ValidateResponse(t testing.TB, method, target string, status int, header http.Header, body []byte) {
	t.Helper()
	repoOnce.Do(func() { repoContract, repoErr = Load(context.Background()) })
	if repoErr != nil {
		t.Fatalf("the API contract: %v", repoErr)
	}
	if err := repoContract.CheckResponse(context.Background(), method, target, status, header, body); err != nil {
		t.Errorf("response outside the API contract (%s): %v\nbody: %s", DocPath, err, truncate(body, 2000))
	}
}

func truncate(b []byte, n int) string {
	if len(b) <= n {
		return string(b)
	}
	return string(b[:n]) + "..."
}
