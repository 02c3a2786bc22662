// Package mailu is the project's adapter for a tenant's MailU: its admin API
// v1 (users) and SMTP AUTH (proving that a password logs in). It mirrors
// MailU's paths one to one, returns plain data and typed errors, and holds
// no business rules.
package mailu

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// DefaultTimeout bounds one API call when New is given no HTTP client.
const DefaultTimeout = 30 * time.Second

// maxBody caps how much of a response is read; MailU's answers are tiny.
const maxBody = 1 << 20

// Client talks to one MailU admin API v1. It is safe for concurrent use.
type Client struct {
	base  string
	token string
	hc    *http.Client
}

// New returns a client for the admin API at baseURL (for example
// https://mail.example.com/api/v1) authenticating with token. A nil hc
// gets a client with DefaultTimeout. The client never follows a redirect,
// whatever hc's own policy (see refuseRedirect).
func New(baseURL, token string, hc *http.Client) *Client {
	own := http.Client{Timeout: DefaultTimeout}
	if hc != nil {
		own = *hc // a copy: the caller's client keeps its own policy
	}
	own.CheckRedirect = refuseRedirect
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, hc: &own}
}

// refuseRedirect stops net/http from following a redirect: a 307 or 308
// would re-send the request, the bearer token and a PATCH body with the
// new password, to wherever Location points (even from https to http).
// The 3xx answer itself comes back to do, which refuses it.
func refuseRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// CreateUser creates a user (POST /user). ErrConflict when it exists,
// ErrDomainFull when the domain has its maximum of users, ErrNotFound
// when MailU does not host its domain.
func (c *Client) CreateUser(ctx context.Context, u UserCreate) error {
	if err := c.do(ctx, http.MethodPost, "/user", u, nil, u.RawPassword); err != nil {
		return fmt.Errorf("mailu: create user %s: %w", u.Email, err)
	}
	return nil
}

// GetUser reads a user (GET /user/{email}); ErrNotFound when there is none.
func (c *Client) GetUser(ctx context.Context, email string) (User, error) {
	if email == "" {
		return User{}, fmt.Errorf("mailu: get user: %w", errNoEmail)
	}
	var u User
	if err := c.do(ctx, http.MethodGet, userPath(email), nil, &u, ""); err != nil {
		return User{}, fmt.Errorf("mailu: get user %s: %w", email, err)
	}
	return u, nil
}

// SetPassword replaces a user's password (PATCH /user/{email} with
// raw_password). MailU hashes it; the old password stops working at once.
func (c *Client) SetPassword(ctx context.Context, email, password string) error {
	if email == "" {
		return fmt.Errorf("mailu: set password: %w", errNoEmail)
	}
	body := struct {
		RawPassword string `json:"raw_password"`
	}{password}
	if err := c.do(ctx, http.MethodPatch, userPath(email), body, nil, password); err != nil {
		return fmt.Errorf("mailu: set password for %s: %w", email, err)
	}
	return nil
}

// UpdateUser changes the non-nil fields of patch (PATCH /user/{email}).
func (c *Client) UpdateUser(ctx context.Context, email string, patch UserUpdate) error {
	if email == "" {
		return fmt.Errorf("mailu: update user: %w", errNoEmail)
	}
	if err := c.do(ctx, http.MethodPatch, userPath(email), patch, nil, ""); err != nil {
		return fmt.Errorf("mailu: update user %s: %w", email, err)
	}
	return nil
}

// DeleteUser deletes a user (DELETE /user/{email}); ErrNotFound when there
// is none.
func (c *Client) DeleteUser(ctx context.Context, email string) error {
	if email == "" {
		return fmt.Errorf("mailu: delete user: %w", errNoEmail)
	}
	if err := c.do(ctx, http.MethodDelete, userPath(email), nil, nil, ""); err != nil {
		return fmt.Errorf("mailu: delete user %s: %w", email, err)
	}
	return nil
}

// userPath escapes email so that a stray "/" or "?" cannot reach another
// endpoint.
func userPath(email string) string { return "/user/" + url.PathEscape(email) }

// errNoEmail stops a call with an empty email before it reaches MailU,
// where "/user/" would address a different resource.
var errNoEmail = fmt.Errorf("%w: empty email", ErrRejected)

// do sends one request and decodes a 2xx body into out. secret, when not
// empty, and the API token are scrubbed from any message MailU echoes
// back, so a proxy that reflects the request cannot put a password or
// the token into an error (FuzzAPIResponse found the token echoed).
func (c *Client) do(ctx context.Context, method, path string, in, out any, secret string) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%w: encode request: %w", ErrRejected, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return fmt.Errorf("%w: build request: %w", ErrRejected, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// Refused, reset, timed out or cancelled: all "try later". The
		// *url.Error names the URL (never the token) and wraps the
		// context error, so errors.Is(err, context.DeadlineExceeded) holds.
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("%w: read response: %w", ErrUnavailable, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		// A redirect means the base URL is not MailU's API (or someone
		// moved it): nothing is sent to the new place.
		return fmt.Errorf("%w: MailU answered %d (a redirect, which is never followed): check the API URL", ErrRejected, resp.StatusCode)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return apiError(resp.StatusCode, raw, secret, c.token)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		// A 200 that is not our JSON is a proxy or a wrong base URL.
		return fmt.Errorf("%w: decode response (status %d): %w", ErrUnavailable, resp.StatusCode, err)
	}
	return nil
}

// apiError reads MailU's error shapes: {"code", "message"} from the
// endpoints, {"message"} from the token check and the framework, and
// {"errors": {field: why}, "message"} from payload validation.
func apiError(status int, raw []byte, secrets ...string) *APIError {
	e := &APIError{Status: status, Code: status}
	var b struct {
		Code    int               `json:"code"`
		Message string            `json:"message"`
		Errors  map[string]string `json:"errors"`
	}
	if json.Unmarshal(raw, &b) == nil && (b.Message != "" || b.Code != 0) {
		if b.Code != 0 {
			e.Code = b.Code
		}
		e.Message = b.Message
		if len(b.Errors) > 0 {
			fields := make([]string, 0, len(b.Errors))
			for k, v := range b.Errors {
				fields = append(fields, k+": "+v)
			}
			sort.Strings(fields)
			e.Message += " (" + strings.Join(fields, "; ") + ")"
		}
	} else {
		// HTML from a proxy or a dead upstream: the status says enough,
		// except MailU's own page for an API without a token.
		e.Message = http.StatusText(status)
		if status == http.StatusInternalServerError && bytes.Contains(raw, []byte("API_TOKEN is not configured")) {
			e.noToken = true
			e.Message = "the admin API has no API_TOKEN configured"
		}
	}
	if status == http.StatusConflict && strings.HasPrefix(e.Message, "Too many users for domain") {
		e.domainFull = true
	}
	for _, secret := range secrets {
		if secret != "" {
			e.Message = strings.ReplaceAll(e.Message, secret, "[redacted]")
		}
	}
	if len(e.Message) > 500 {
		e.Message = e.Message[:500] + "..."
	}
	return e
}
