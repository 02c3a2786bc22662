package mailustandin

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFaultsJSON(t *testing.T) {
	f := Faults{Down: true, Delay: 250 * time.Millisecond, RejectAPI: true, RejectSMTP: true, FailNextWrites: 2, DropNextWriteResponses: 1}
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"delay":"250ms"`) {
		t.Errorf("delay not a duration string: %s", b)
	}
	var back Faults
	if err := json.Unmarshal(b, &back); err != nil || back != f {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
	for _, in := range []string{`{"delay":250000000}`, `{"delay":"0.25s"}`} {
		var g Faults
		if err := json.Unmarshal([]byte(in), &g); err != nil || g.Delay != 250*time.Millisecond {
			t.Errorf("%s: %+v %v", in, g, err)
		}
	}
	for _, bad := range []string{`{"delay":"soon"}`, `{"delay":"-1s"}`, `{"fail_next_writes":-1}`} {
		var g Faults
		if err := json.Unmarshal([]byte(bad), &g); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestFaultDown(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "pw")
	apiURL, smtpAddr := in.APIURL(), in.SMTPAddr()

	if err := in.SetFaults(Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(apiURL + "/user/admin@acme.test"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("API while down: %v, want connection refused", err)
	}
	if err := smtpLogin(smtpAddr, "admin@acme.test", "pw"); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("SMTP while down: %v, want connection refused", err)
	}

	if err := in.SetFaults(Faults{}); err != nil {
		t.Fatal(err)
	}
	if in.APIURL() != apiURL || in.SMTPAddr() != smtpAddr {
		t.Fatalf("addresses moved: %s %s", in.APIURL(), in.SMTPAddr())
	}
	if r := call(t, in, "GET", "/user/admin@acme.test", bearer(testToken), ""); r.status != 200 {
		t.Fatalf("API after up: %d", r.status)
	}
	if err := smtpLogin(smtpAddr, "admin@acme.test", "pw"); err != nil {
		t.Fatalf("SMTP after up: %v", err)
	}
}

func TestFaultDownCutsOpenConnections(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	in.SetFaults(Faults{Delay: time.Minute})
	errc := make(chan error, 1)
	// The cut is only exercised once the request is on an open connection:
	// wait for the client to have written it, not for a fixed time.
	wrote := make(chan struct{})
	go func() {
		req, err := http.NewRequest(http.MethodGet, in.APIURL()+"/user/x@acme.test", nil)
		if err != nil {
			errc <- err
			return
		}
		trace := &httptrace.ClientTrace{WroteRequest: func(httptrace.WroteRequestInfo) { close(wrote) }}
		_, err = http.DefaultClient.Do(req.WithContext(httptrace.WithClientTrace(req.Context(), trace)))
		errc <- err
	}()
	select {
	case <-wrote:
	case err := <-errc:
		t.Fatalf("request ended before the instance went down: %v", err)
	}
	in.SetFaults(Faults{Down: true})
	select {
	case err := <-errc:
		if err == nil {
			t.Fatal("request answered by an instance that went down")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("open request survived Down")
	}
}

func TestFaultDelay(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "pw")
	const d = 300 * time.Millisecond
	in.SetFaults(Faults{Delay: d})

	start := time.Now()
	if r := call(t, in, "GET", "/user/admin@acme.test", bearer(testToken), ""); r.status != 200 {
		t.Fatalf("GET: %d", r.status)
	}
	if time.Since(start) < d {
		t.Errorf("API answered in %v, before the delay", time.Since(start))
	}
	start = time.Now()
	if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "pw"); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < d {
		t.Errorf("AUTH answered in %v, before the delay", time.Since(start))
	}

	// A client that gives up is not held.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", in.APIURL()+"/user/admin@acme.test", nil)
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("impatient client: %v", err)
	}
}

func TestFaultRejects(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "pw")
	ok := bearer(testToken)

	in.SetFaults(Faults{RejectAPI: true})
	r := call(t, in, "PATCH", "/user/admin@acme.test", ok, `{"raw_password":"new"}`)
	if r.status != 500 || r.body["message"] != "Internal Server Error" {
		t.Fatalf("write under RejectAPI: %d %s", r.status, r.raw)
	}
	if r := call(t, in, "GET", "/user/admin@acme.test", ok, ""); r.status != 200 {
		t.Fatalf("reads still work under RejectAPI: %d", r.status)
	}
	if r := call(t, in, "PATCH", "/user/admin@acme.test", bearer("bad-token"), `{"raw_password":"new"}`); r.status != 403 {
		t.Fatalf("token check comes first: %d", r.status)
	}
	if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "pw"); err != nil {
		t.Fatalf("rejected write changed the password: %v", err)
	}

	in.SetFaults(Faults{RejectSMTP: true})
	if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "pw"); smtpCode(err) != 535 {
		t.Fatalf("AUTH under RejectSMTP: %v", err)
	}
}

func TestFaultFailNextWrites(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "pw0")
	in.SetFaults(Faults{FailNextWrites: 2})
	for i := range 2 {
		if r := call(t, in, "PATCH", "/user/admin@acme.test", bearer(testToken), `{"raw_password":"pw1"}`); r.status != 500 {
			t.Fatalf("write %d: %d, want 500", i, r.status)
		}
		if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "pw0"); err != nil {
			t.Fatalf("failed write %d changed the password: %v", i, err)
		}
	}
	// Reads do not count.
	call(t, in, "GET", "/user/admin@acme.test", bearer(testToken), "")
	setPassword(t, in, "admin@acme.test", "pw1")
	if got := in.Faults().FailNextWrites; got != 0 {
		t.Fatalf("counter = %d", got)
	}
}

func TestFaultDropNextWriteResponses(t *testing.T) {
	s := newTestServer(t, Options{})
	in := addInstance(t, s, "acme.test")
	createUser(t, in, "admin@acme.test", "pw0")
	in.SetFaults(Faults{DropNextWriteResponses: 1})

	req, _ := http.NewRequest("PATCH", in.APIURL()+"/user/admin@acme.test", strings.NewReader(`{"raw_password":"pw1"}`))
	req.Header.Set("Authorization", bearer(testToken))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("got a response (%d) to a dropped write", resp.StatusCode)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
		var ne net.Error
		if !errors.As(err, &ne) {
			t.Logf("dropped write error: %v", err)
		}
	}
	if err := smtpLogin(in.SMTPAddr(), "admin@acme.test", "pw1"); err != nil {
		t.Fatalf("dropped write was not applied: %v", err)
	}
	setPassword(t, in, "admin@acme.test", "pw2") // the next write is answered again
}
