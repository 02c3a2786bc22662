package mailu_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"smtp-vault/shared/mailu"
)

// answer is a RoundTripper that answers every request with one response,
// so the fuzzer drives the client's decoding without a network.
type answer struct {
	status int
	body   []byte
}

func (a answer) RoundTrip(r *http.Request) (*http.Response, error) {
	return &http.Response{StatusCode: a.status, Body: io.NopCloser(bytes.NewReader(a.body)), Header: http.Header{"Location": {"http://elsewhere.test/"}}, Request: r}, nil
}

// FuzzAPIResponse: whatever MailU (or a proxy in front of it) answers,
// the client returns a user only on a 2xx that decodes, and otherwise an
// error wrapping exactly the sentinel its status calls for; no error ever
// shows the token or the password that was sent.
func FuzzAPIResponse(f *testing.F) {
	f.Add(200, []byte(`{"email":"admin@acme.test","global_admin":true,"enabled":true,"quota_bytes":1000}`))
	f.Add(200, []byte(`<html>proxy</html>`))
	f.Add(400, []byte(`{"errors":{"quota_bytes":"'x' is not of type 'integer'"},"message":"Input payload validation failed"}`))
	f.Add(404, []byte(`{"code":404,"message":"User pw-Secret-1 cannot be found"}`))
	f.Add(409, []byte(`{"code":"409"}`))
	f.Add(307, []byte(``))
	f.Add(502, []byte(`{"message":"`+strings.Repeat("x", 600)+`"}`))
	const password = "pw-Secret-1"
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		if status < 100 || status > 999 {
			return // not a status net/http could deliver
		}
		c := mailu.New("https://mail.acme.test/api/v1", token, &http.Client{Transport: answer{status, body}})
		ctx := context.Background()
		u, getErr := c.GetUser(ctx, admin)
		setErr := c.SetPassword(ctx, admin, password)
		for i, err := range []error{getErr, setErr} {
			if err == nil {
				if status < 200 || status > 299 {
					t.Fatalf("status %d accepted", status)
				}
				continue
			}
			n := 0
			for _, s := range []error{mailu.ErrNotFound, mailu.ErrConflict, mailu.ErrUnauthorized, mailu.ErrRejected, mailu.ErrUnavailable} {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("status %d: error %v wraps %d sentinels, want 1", status, err, n)
			}
			// The token is never echoed; the password only by the call
			// that sent it (GetUser sends none, so MailU cannot echo it).
			if strings.Contains(err.Error(), token) || (i == 1 && strings.Contains(err.Error(), password)) {
				t.Fatalf("error shows a secret: %v", err)
			}
			if len(err.Error()) > 700 {
				t.Fatalf("error of %d bytes", len(err.Error()))
			}
		}
		if getErr == nil && (status < 200 || status > 299) {
			t.Fatalf("user %+v from status %d", u, status)
		}
	})
}

// FuzzSMTPReplies: whatever an SMTP server replies (greeting, EHLO and
// AUTH answers, in any shape), VerifyLogin returns nil, ErrAuthFailed
// (only for a 535) or ErrUnavailable, never hangs past its deadline and
// never puts the password in an error.
func FuzzSMTPReplies(f *testing.F) {
	f.Add("220 mail.acme.test ESMTP\r\n", "250-mail.acme.test\r\n250 AUTH PLAIN LOGIN\r\n", "235 2.7.0 ok\r\n")
	f.Add("220 hi\r\n", "250-x\r\n250 AUTH PLAIN\r\n", "535 5.7.8 authentication failed\r\n")
	f.Add("220 hi\r\n", "250-x\r\n250 AUTH PLAIN\r\n", "451 4.3.2 rate limited\r\n")
	f.Add("554 go away\r\n", "", "")
	f.Add("220 hi\r\n", "250 x\r\n", "")
	f.Add("220-a\r\n220", "250-AUTH PLAIN\r\n250-", "334 \r\n")
	f.Add("garbage", "\r\n\r\n", "999 ?\r\n")
	const password = "smtp-Secret-pw"
	f.Fuzz(func(t *testing.T, greeting, ehlo, auth string) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(500 * time.Millisecond))
			// The whole script at once, then end of stream: a client
			// waiting for more of a reply gets EOF at once instead of
			// waiting out the deadline (a run takes a millisecond, not
			// half a second), and its commands are drained meanwhile.
			io.WriteString(conn, greeting+ehlo+auth+"221 bye\r\n")
			conn.(*net.TCPConn).CloseWrite()
			io.Copy(io.Discard, conn)
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err = mailu.VerifyLogin(ctx, ln.Addr().String(), admin, password, nil)
		if time.Since(start) > 3*time.Second {
			t.Fatalf("VerifyLogin took %v", time.Since(start))
		}
		if err == nil {
			return
		}
		if errors.Is(err, mailu.ErrAuthFailed) == errors.Is(err, mailu.ErrUnavailable) {
			t.Fatalf("error %v is not exactly one of ErrAuthFailed and ErrUnavailable", err)
		}
		if errors.Is(err, mailu.ErrAuthFailed) && !strings.Contains(auth, "535") {
			t.Fatalf("a wrong password concluded from %q: %v", auth, err)
		}
		if strings.Contains(err.Error(), password) {
			t.Fatalf("error shows the password: %v", err)
		}
	})
}
