package mailu_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"smtp-vault/shared/mailu"
)

// TestRedirectsAreNeverFollowed: a MailU API (or whoever answers at its
// URL) that redirects gets an error back, and the place it redirects to
// receives nothing: no request, no bearer token, no password. With
// net/http's default policy a 307/308 re-sends a PATCH with its body.
func TestRedirectsAreNeverFollowed(t *testing.T) {
	const password = "n3w-Secret-password"
	var mu sync.Mutex
	var reached []string // what the redirect target saw
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		reached = append(reached, fmt.Sprintf("%s %s auth=%q body=%q", r.Method, r.URL.Path, r.Header.Get("Authorization"), b))
		mu.Unlock()
		io.WriteString(w, `{"code": 200, "message": "ok"}`)
	}))
	defer target.Close()

	calls := []struct {
		name string
		call func(c *mailu.Client) error
	}{
		{"set password", func(c *mailu.Client) error { return c.SetPassword(context.Background(), admin, password) }},
		{"create user", func(c *mailu.Client) error {
			return c.CreateUser(context.Background(), mailu.UserCreate{Email: admin, RawPassword: password})
		}},
		{"get user", func(c *mailu.Client) error { _, err := c.GetUser(context.Background(), admin); return err }},
	}
	// A caller's client that follows redirects (net/http's default
	// policy) must not make the MailU client follow them.
	following := &http.Client{}
	for _, status := range []int{301, 302, 303, 307, 308} {
		redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, target.URL+r.URL.Path, status)
		}))
		for _, hc := range []*http.Client{nil, following} {
			for _, c := range calls {
				t.Run(fmt.Sprintf("%d %s own client %v", status, c.name, hc != nil), func(t *testing.T) {
					err := c.call(mailu.New(redirector.URL+"/api/v1", token, hc))
					if !errors.Is(err, mailu.ErrRejected) || !strings.Contains(err.Error(), "redirect") {
						t.Fatalf("redirect %d: error %v, want ErrRejected naming the redirect", status, err)
					}
					assertNoSecret(t, "redirect", err, password, token)
				})
			}
		}
		redirector.Close()
	}
	if following.CheckRedirect != nil {
		t.Error("the caller's client was changed")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reached) > 0 {
		t.Fatalf("the redirect target received %d requests, first: %s", len(reached), reached[0])
	}
}
