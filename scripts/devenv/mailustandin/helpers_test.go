package mailustandin

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"golang.org/x/crypto/bcrypt"
)

const testToken = "test-token-1234"

// newTestServer starts an empty stand-in that stops with the test. Hashes
// use bcrypt's minimum cost to keep the tests quick.
func newTestServer(t *testing.T, opts Options) *Server {
	t.Helper()
	if opts.BcryptCost == 0 {
		opts.BcryptCost = bcrypt.MinCost
	}
	s := NewServer(opts)
	t.Cleanup(func() { s.Close() })
	return s
}

func addInstance(t *testing.T, s *Server, domain string) *Instance {
	t.Helper()
	in, err := s.AddInstance(context.Background(), InstanceConfig{Domain: domain, APIToken: testToken})
	if err != nil {
		t.Fatalf("AddInstance(%s): %v", domain, err)
	}
	return in
}

type response struct {
	status int
	raw    string
	body   map[string]any
}

// call sends one request to an instance's API. auth "" sends no
// Authorization header.
func call(t *testing.T, in *Instance, method, path, auth, body string) response {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, in.APIURL()+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := response{status: resp.StatusCode, raw: string(raw)}
	_ = json.Unmarshal(raw, &out.body)
	return out
}

func bearer(tok string) string { return "Bearer " + tok }

// createUser makes a user through the API and fails the test otherwise.
func createUser(t *testing.T, in *Instance, email, password string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"email": email, "raw_password": password, "global_admin": true, "enabled": true})
	if r := call(t, in, http.MethodPost, "/user", bearer(testToken), string(b)); r.status != http.StatusOK {
		t.Fatalf("create %s: %d %s", email, r.status, r.raw)
	}
}

func setPassword(t *testing.T, in *Instance, email, password string) {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"raw_password": password})
	if r := call(t, in, http.MethodPatch, "/user/"+email, bearer(testToken), string(b)); r.status != http.StatusOK {
		t.Fatalf("set password of %s: %d %s", email, r.status, r.raw)
	}
}

// smtpLogin does a plain-text AUTH PLAIN with go-smtp's client.
func smtpLogin(addr, user, password string) error {
	c, err := smtp.Dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.CommandTimeout = 10 * time.Second
	if err := c.Auth(sasl.NewPlainClient("", user, password)); err != nil {
		return err
	}
	return c.Quit()
}

func smtpCode(err error) int {
	if se, ok := err.(*smtp.SMTPError); ok {
		return se.Code
	}
	return 0
}
