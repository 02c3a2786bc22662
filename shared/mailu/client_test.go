package mailu_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/mailu"
)

func ptr[T any](v T) *T { return &v }

// TestClientAgainstStandIn runs every method through its outcomes against
// the stand-in, in order.
func TestClientAgainstStandIn(t *testing.T) {
	in, c := startMailU(t, mailustandin.Options{})
	ctx := context.Background()
	const pw1, pw2 = "first-Secret-pw", "second-Secret-pw"

	steps := []struct {
		name       string
		call       func() error
		want       error // nil: success
		wantStatus int   // of the *APIError, when want is not nil
	}{
		{"get before create", func() error { _, err := c.GetUser(ctx, admin); return err }, mailu.ErrNotFound, 404},
		{"set password before create", func() error { return c.SetPassword(ctx, admin, pw1) }, mailu.ErrNotFound, 404},
		{"create", func() error {
			return c.CreateUser(ctx, mailu.UserCreate{Email: admin, RawPassword: pw1, Comment: "smtp-vault", GlobalAdmin: true, Enabled: true})
		}, nil, 0},
		{"create again", func() error { return c.CreateUser(ctx, mailu.UserCreate{Email: admin, RawPassword: pw1}) }, mailu.ErrConflict, 409},
		{"create in unknown domain", func() error {
			return c.CreateUser(ctx, mailu.UserCreate{Email: "admin@other.test", RawPassword: pw1})
		}, mailu.ErrNotFound, 404},
		{"create with bad email", func() error { return c.CreateUser(ctx, mailu.UserCreate{Email: "admin", RawPassword: pw1}) }, mailu.ErrRejected, 400},
		{"get", func() error {
			u, err := c.GetUser(ctx, admin)
			if err == nil && (u.Email != admin || !u.GlobalAdmin || !u.Enabled || u.Comment != "smtp-vault" || u.QuotaBytes == 0) {
				return fmt.Errorf("unexpected user %+v", u)
			}
			return err
		}, nil, 0},
		{"set password", func() error { return c.SetPassword(ctx, admin, pw2) }, nil, 0},
		{"update", func() error {
			return c.UpdateUser(ctx, admin, mailu.UserUpdate{Comment: ptr("rotated"), Enabled: ptr(true)})
		}, nil, 0},
		{"update shows", func() error {
			u, err := c.GetUser(ctx, admin)
			if err == nil && (u.Comment != "rotated" || !u.GlobalAdmin) {
				return fmt.Errorf("update not applied or too much applied: %+v", u)
			}
			return err
		}, nil, 0},
		{"empty email", func() error { return c.SetPassword(ctx, "", pw2) }, mailu.ErrRejected, 0},
		{"delete", func() error { return c.DeleteUser(ctx, admin) }, nil, 0},
		{"delete again", func() error { return c.DeleteUser(ctx, admin) }, mailu.ErrNotFound, 404},
		{"wrong token", func() error {
			_, err := mailu.New(in.APIURL(), "wrong-token", nil).GetUser(ctx, admin)
			return err
		}, mailu.ErrUnauthorized, 403},
		{"empty token", func() error {
			return mailu.New(in.APIURL(), "", nil).SetPassword(ctx, admin, pw2)
		}, mailu.ErrUnauthorized, 403},
	}
	for _, st := range steps {
		err := st.call()
		if st.want == nil {
			if err != nil {
				t.Fatalf("%s: %v", st.name, err)
			}
			continue
		}
		if !errors.Is(err, st.want) {
			t.Fatalf("%s: error %v, want %v", st.name, err, st.want)
		}
		var ae *mailu.APIError
		if st.wantStatus != 0 && (!errors.As(err, &ae) || ae.Status != st.wantStatus) {
			t.Fatalf("%s: error %v, want an APIError with status %d", st.name, err, st.wantStatus)
		}
		assertNoSecret(t, st.name, err, pw1, pw2, token)
	}
	// The password set through the API is the one SMTP accepts.
	if err := c.CreateUser(ctx, mailu.UserCreate{Email: admin, RawPassword: pw1, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	if err := mailu.VerifyLogin(ctx, in.SMTPAddr(), admin, pw1, nil); err != nil {
		t.Fatalf("login with the created password: %v", err)
	}
}

// TestStatusMapping covers the statuses the stand-in never sends, with
// the bodies real MailU and proxies do send.
func TestStatusMapping(t *testing.T) {
	cases := []struct {
		status   int
		body     string
		want     error
		wantCode int
		wantMsg  string
	}{
		{401, `{"message": "A valid Authorization header is mandatory"}`, mailu.ErrUnauthorized, 401, "A valid Authorization header is mandatory"},
		{403, `{"message": "Invalid API token"}`, mailu.ErrUnauthorized, 403, "Invalid API token"},
		{404, `{"code": 404, "message": "User x cannot be found"}`, mailu.ErrNotFound, 404, "cannot be found"},
		{409, `{"code": 409, "message": "Too many users for domain acme.test"}`, mailu.ErrDomainFull, 409, "Too many users"},
		{409, `{"code": 409, "message": "User admin@acme.test already exists"}`, mailu.ErrConflict, 409, "already exists"},
		{400, `{"errors": {"quota_bytes": "'x' is not of type 'integer'"}, "message": "Input payload validation failed"}`, mailu.ErrRejected, 400, "quota_bytes: 'x' is not of type 'integer'"},
		{415, `{"message": "Did not attempt to load JSON data"}`, mailu.ErrRejected, 415, "Did not attempt"},
		{422, `not json`, mailu.ErrRejected, 422, "Unprocessable Entity"},
		{429, `{"message": "Too many attempts from your IP (rate-limit)"}`, mailu.ErrRateLimited, 429, "rate-limit"},
		{500, `{"message": "Internal Server Error"}`, mailu.ErrUnavailable, 500, "Internal Server Error"},
		{500, `<p>Error: API_TOKEN is not configured</p>`, mailu.ErrMisconfigured, 500, "no API_TOKEN"},
		{502, `<html><body>Bad Gateway</body></html>`, mailu.ErrUnavailable, 502, "Bad Gateway"},
		{503, ``, mailu.ErrUnavailable, 503, "Service Unavailable"},
	}
	for _, c := range cases {
		t.Run(fmt.Sprint(c.status), func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(c.status)
				io.WriteString(w, c.body)
			}))
			defer srv.Close()
			err := mailu.New(srv.URL+"/api/v1", token, nil).SetPassword(context.Background(), admin, "s3cret-value")
			var ae *mailu.APIError
			if !errors.Is(err, c.want) || !errors.As(err, &ae) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if ae.Status != c.status || ae.Code != c.wantCode || !strings.Contains(ae.Message, c.wantMsg) {
				t.Fatalf("APIError %+v", ae)
			}
			// Each answer is exactly one verdict: a full domain is no
			// existing user, a rate limit is "try later" (and says why),
			// a missing API token is not.
			others := map[error]bool{
				mailu.ErrConflict: c.want == mailu.ErrConflict, mailu.ErrDomainFull: c.want == mailu.ErrDomainFull,
				mailu.ErrMisconfigured: c.want == mailu.ErrMisconfigured, mailu.ErrRateLimited: c.want == mailu.ErrRateLimited,
				mailu.ErrUnavailable: c.want == mailu.ErrUnavailable || c.want == mailu.ErrRateLimited,
			}
			for sentinel, want := range others {
				if errors.Is(err, sentinel) != want {
					t.Errorf("errors.Is(%v, %v) = %t", err, sentinel, !want)
				}
			}
			if !strings.HasPrefix(err.Error(), "mailu: set password for "+admin+": ") {
				t.Errorf("error does not say what was done: %v", err)
			}
			assertNoSecret(t, "status", err, "s3cret-value", token)
		})
	}
}

func TestRequestShape(t *testing.T) {
	var got *http.Request
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, body = r, must(io.ReadAll(r.Body))
		io.WriteString(w, `{"code": 200, "message": "ok"}`)
	}))
	defer srv.Close()
	c := mailu.New(srv.URL+"/api/v1/", token, nil)
	if err := c.SetPassword(context.Background(), "a/b?c@acme.test", "pw"); err != nil {
		t.Fatal(err)
	}
	if got.Method != http.MethodPatch || got.URL.EscapedPath() != "/api/v1/user/a%2Fb%3Fc@acme.test" {
		t.Errorf("request %s %s", got.Method, got.URL.EscapedPath())
	}
	if got.Header.Get("Authorization") != "Bearer "+token || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers %v", got.Header)
	}
	if string(body) != `{"raw_password":"pw"}` {
		t.Errorf("body %s", body)
	}
}

func TestUnavailable(t *testing.T) {
	in, c := startMailU(t, mailustandin.Options{})
	ctx := context.Background()
	if err := c.CreateUser(ctx, mailu.UserCreate{Email: admin, RawPassword: "pw", Enabled: true}); err != nil {
		t.Fatal(err)
	}

	t.Run("down", func(t *testing.T) {
		in.SetFaults(mailustandin.Faults{Down: true})
		defer in.SetFaults(mailustandin.Faults{})
		if _, err := c.GetUser(ctx, admin); !errors.Is(err, mailu.ErrUnavailable) {
			t.Fatalf("GetUser while down: %v", err)
		}
	})
	t.Run("slow past the deadline", func(t *testing.T) {
		in.SetFaults(mailustandin.Faults{Delay: 2 * time.Second})
		defer in.SetFaults(mailustandin.Faults{})
		ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		err := c.SetPassword(ctx, admin, "new-secret-pw")
		if !errors.Is(err, mailu.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("SetPassword past deadline: %v", err)
		}
		assertNoSecret(t, "deadline", err, "new-secret-pw", token)
	})
	t.Run("slow within the deadline", func(t *testing.T) {
		in.SetFaults(mailustandin.Faults{Delay: 100 * time.Millisecond})
		defer in.SetFaults(mailustandin.Faults{})
		if _, err := c.GetUser(ctx, admin); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("client timeout", func(t *testing.T) {
		in.SetFaults(mailustandin.Faults{Delay: 2 * time.Second})
		defer in.SetFaults(mailustandin.Faults{})
		quick := mailu.New(in.APIURL(), token, &http.Client{Timeout: 100 * time.Millisecond})
		if _, err := quick.GetUser(ctx, admin); !errors.Is(err, mailu.ErrUnavailable) {
			t.Fatalf("GetUser with client timeout: %v", err)
		}
	})
	t.Run("rejecting writes", func(t *testing.T) {
		in.SetFaults(mailustandin.Faults{RejectAPI: true})
		defer in.SetFaults(mailustandin.Faults{})
		err := c.SetPassword(ctx, admin, "other-secret-pw")
		var ae *mailu.APIError
		if !errors.Is(err, mailu.ErrUnavailable) || !errors.As(err, &ae) || ae.Status != 500 {
			t.Fatalf("SetPassword under RejectAPI: %v", err)
		}
	})
	t.Run("response lost after the write", func(t *testing.T) {
		in.SetFaults(mailustandin.Faults{DropNextWriteResponses: 1})
		defer in.SetFaults(mailustandin.Faults{})
		if err := c.SetPassword(ctx, admin, "dropped-pw"); !errors.Is(err, mailu.ErrUnavailable) {
			t.Fatalf("SetPassword with lost response: %v", err)
		}
		// The caller cannot know; MailU has the new password.
		if err := mailu.VerifyLogin(ctx, in.SMTPAddr(), admin, "dropped-pw", nil); err != nil {
			t.Fatal(err)
		}
	})
}

func TestEchoedPasswordIsRedacted(t *testing.T) {
	// A proxy that reflects the request body must not put the password
	// into our error.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		w.WriteHeader(400)
		fmt.Fprintf(w, `{"message": %q}`, "bad body: "+string(b))
	}))
	defer srv.Close()
	c := mailu.New(srv.URL, token, nil)
	err := c.SetPassword(context.Background(), admin, "reflected-pw")
	assertNoSecret(t, "set", err, "reflected-pw")
	err = c.CreateUser(context.Background(), mailu.UserCreate{Email: admin, RawPassword: "reflected-pw"})
	assertNoSecret(t, "create", err, "reflected-pw")
}

func TestUserCreateHidesPassword(t *testing.T) {
	u := mailu.UserCreate{Email: admin, RawPassword: "hidden-pw", GlobalAdmin: true, Enabled: true}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("creating", "user", u)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("creating", "user", u)
	for _, s := range []string{fmt.Sprint(u), fmt.Sprintf("%v %+v %#v %s", u, u, u, u), fmt.Sprintf("%v", &u), buf.String()} {
		if strings.Contains(s, "hidden-pw") {
			t.Fatalf("password shown: %s", s)
		}
		if !strings.Contains(s, admin) {
			t.Fatalf("email missing: %s", s)
		}
	}
}

func assertNoSecret(t *testing.T, name string, err error, secrets ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: no error", name)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Fatalf("%s: error shows a secret: %v", name, err)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
