package credential_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/vault"
)

// spy is a MailU API and an SMTP server that record every bearer token,
// request body and AUTH attempt they receive, and refuse everything.
type spy struct {
	api  *httptest.Server
	smtp net.Listener

	mu   sync.Mutex
	seen []string // bearer headers, bodies, decoded AUTH credentials
}

func newSpy(t *testing.T) *spy {
	t.Helper()
	s := &spy{}
	s.api = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.record(r.Header.Get("Authorization"), string(body))
		http.Error(w, `{"code":500,"message":"spy"}`, http.StatusInternalServerError)
	}))
	t.Cleanup(s.api.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.smtp = ln
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go s.serveSMTP(c)
		}
	}()
	return s
}

func (s *spy) record(v ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seen = append(s.seen, v...)
}

// serveSMTP speaks just enough SMTP for a client to try AUTH PLAIN or
// LOGIN, records what it sends, and refuses it.
func (s *spy) serveSMTP(c net.Conn) {
	defer c.Close()
	r := bufio.NewReader(c)
	write := func(line string) { io.WriteString(c, line+"\r\n") }
	decode := func(v string) string { b, _ := base64.StdEncoding.DecodeString(strings.TrimSpace(v)); return string(b) }
	write("220 spy ESMTP")
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		cmd := strings.ToUpper(strings.Fields(line + " x")[0])
		switch {
		case cmd == "EHLO" || cmd == "HELO":
			write("250-spy\r\n250 AUTH PLAIN LOGIN")
		case cmd == "AUTH":
			f := strings.Fields(line)
			if len(f) >= 3 {
				s.record(decode(f[2]))
			} else {
				write("334 ")
				l, _ := r.ReadString('\n')
				s.record(decode(l))
				if strings.EqualFold(f[len(f)-1], "LOGIN") {
					write("334 ")
					l, _ = r.ReadString('\n')
					s.record(decode(l))
				}
			}
			write("535 5.7.8 spy refuses")
		case cmd == "QUIT":
			write("221 bye")
			return
		default:
			write("250 ok")
		}
	}
}

// saw reports whether any recorded request carried secret.
func (s *spy) saw(secret string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range s.seen {
		if strings.Contains(v, secret) {
			return true
		}
	}
	return false
}

func (s *spy) calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

// TestStoreNeverPresentsASecretToAnotherEndpoint tries every way a store
// could move a tenant to a caller-chosen host, against a spy that records
// what reaches it: the stored password and MailU token never do, refused
// and failed moves leave the record and the MailU connection as they were,
// and the old password keeps working.
func TestStoreNeverPresentsASecretToAnotherEndpoint(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	tn := s.Tenants[0]
	user, oldPW, before := e.current(t, tn.TenantID)
	conn := func() map[string]string {
		sec, err := s.App.Vault.Read(ctx, credential.MailUPath(tn.TenantID))
		if err != nil {
			t.Fatal(err)
		}
		return sec.Data
	}
	connBefore := conn()
	sp := newSpy(t)
	spyURL := sp.api.URL + "/api/v1"
	spySMTP := sp.smtp.Addr().String()
	allowLoopback := e.with(func(c *credential.Config) { c.AllowedHosts = []string{"127.0.0.1"} })

	cases := []struct {
		name    string
		svc     *credential.Service
		change  func(in *credential.StoreInput)
		wantErr error
	}{
		{"new API URL without a token", allowLoopback, func(in *credential.StoreInput) { in.MailUAPIURL, in.MailUAPIToken = spyURL, "" }, credential.ErrTokenRequired},
		{"new SMTP address without a token", allowLoopback, func(in *credential.StoreInput) { in.SMTPAddr, in.MailUAPIToken = spySMTP, "" }, credential.ErrTokenRequired},
		{"both, with a token, host not allowed", e.svc, func(in *credential.StoreInput) {
			in.MailUAPIURL, in.SMTPAddr, in.MailUAPIToken = spyURL, spySMTP, "spy-token-1"
		}, credential.ErrEndpointNotAllowed},
		{"new SMTP address, allowed, the spy refuses", allowLoopback, func(in *credential.StoreInput) { in.SMTPAddr, in.MailUAPIToken = spySMTP, "spy-token-2" }, credential.ErrUnavailable},
		{"both, allowed, the spy refuses", allowLoopback, func(in *credential.StoreInput) {
			in.MailUAPIURL, in.SMTPAddr, in.MailUAPIToken = spyURL, spySMTP, "spy-token-3"
		}, credential.ErrUnavailable},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := s.StoreEvent(tn)
			in.MailUAPIToken = ""
			c.change(&in)
			_, err := c.svc.Store(ctx, in, credential.Actor{UserID: "attacker"})
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("store: %v, want %v", err, c.wantErr)
			}
			if sp.saw(oldPW) || sp.saw(tn.MailUToken) {
				t.Fatal("the spy received the stored password or the stored MailU token")
			}
			_, pw, after := e.current(t, tn.TenantID)
			if pw != oldPW || !reflect.DeepEqual(recordData(before), recordData(after)) {
				t.Fatalf("the record changed:\nbefore %+v\nafter  %+v", recordData(before), recordData(after))
			}
			if !reflect.DeepEqual(conn(), connBefore) {
				t.Fatal("the MailU connection changed")
			}
			if err := verifyLogin(ctx, tn.MailU.SMTPAddr, user, oldPW); err != nil {
				t.Fatalf("the old password no longer logs in: %v", err)
			}
		})
	}
	if sp.calls() == 0 {
		t.Fatal("the allowed moves never reached the spy: the test proves nothing")
	}
	if e.auditOut.String() != "" && strings.Contains(e.auditOut.String(), `"smtp_endpoint_changed"`) {
		t.Fatal("a refused or failed move was audited as done")
	}

	// A move to a real new MailU (the VPS was replaced) with its token: a
	// fresh password is set there, the old one is never sent there, and
	// the move is audited.
	inst, err := devenv.StartTestMailU(t, mailustandin.Options{}).AddInstance(ctx, tn.Domain, "new-vps-token")
	if err != nil {
		t.Fatal(err)
	}
	in := s.StoreEvent(tn)
	in.MailUAPIURL, in.SMTPAddr, in.MailUAPIToken = inst.APIURL, inst.SMTPAddr, "new-vps-token"
	res, err := allowLoopback.Store(ctx, in, credential.Actor{UserID: "operator"})
	if err != nil || res.Action != "endpoint_changed" {
		t.Fatalf("move: %+v, %v", res, err)
	}
	_, newPW, rec := e.current(t, tn.TenantID)
	if newPW == oldPW || rec.SMTPAddr != inst.SMTPAddr || rec.Pending() {
		t.Fatalf("after the move: same password %v, smtp %s, pending %v", newPW == oldPW, rec.SMTPAddr, rec.Pending())
	}
	if err := verifyLogin(ctx, inst.SMTPAddr, user, newPW); err != nil {
		t.Fatalf("the new password does not log in at the new MailU: %v", err)
	}
	if err := verifyLogin(ctx, inst.SMTPAddr, user, oldPW); err == nil {
		t.Fatal("the old password logs in at the new MailU: it was sent there")
	}
	if conn()["api_url"] != inst.APIURL {
		t.Fatalf("MailU connection %v", conn()["api_url"])
	}
	if !strings.Contains(e.auditOut.String(), `"smtp_endpoint_changed"`) {
		t.Fatal("the move was not audited as smtp_endpoint_changed")
	}
}

// recordData is a record's fields, without its KV version.
func recordData(r *credential.Record) credential.Record {
	return credential.RecordWithoutVersion(*r)
}

// mailuWriteFault is the Vault client failing, while armed, every write of
// a MailU connection: an endpoint move stops after the new MailU took the
// password and before the connection is promoted, as a crash there would.
type mailuWriteFault struct {
	credential.Vault
	armed atomic.Bool
}

func (f *mailuWriteFault) WriteCAS(ctx context.Context, path string, data map[string]string, cas int) (int, error) {
	if f.armed.Load() && strings.HasSuffix(path, "/mailu") {
		return 0, fmt.Errorf("vault: write %s: %w: injected fault", path, vault.ErrUnavailable)
	}
	return f.Vault.WriteCAS(ctx, path, data, cas)
}

// TestEachRotatorFinishesAnInterruptedMove: an endpoint move interrupted
// before the MailU connection was written leaves the tenant pending; the
// rotate function and the sweep each resume it with their own Vault
// identity (the policies the functions run with), so each must be able to
// write the MailU connection, and each finishes the move: the tenant ends
// at the new endpoints, not pending, its password logging in there.
func TestEachRotatorFinishesAnInterruptedMove(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	e := newEnv(t, s, -1)
	ctx := context.Background()
	tn := s.Tenants[0]
	crash := &mailuWriteFault{Vault: e.vault}
	mover := e.with(func(c *credential.Config) { c.Vault, c.AllowedHosts = crash, []string{"127.0.0.1"} })
	for i, fn := range []string{"rotate", "rotate-sweep"} {
		t.Run(fn, func(t *testing.T) {
			token := fmt.Sprintf("new-vps-token-%d", i)
			inst, err := devenv.StartTestMailU(t, mailustandin.Options{}).AddInstance(ctx, tn.Domain, token) // the new VPS
			if err != nil {
				t.Fatal(err)
			}
			in := s.StoreEvent(tn)
			in.MailUAPIURL, in.SMTPAddr, in.MailUAPIToken = inst.APIURL, inst.SMTPAddr, token
			crash.armed.Store(true)
			_, err = mover.Store(ctx, in, credential.Actor{UserID: "operator"})
			crash.armed.Store(false)
			if !errors.Is(err, credential.ErrUnavailable) {
				t.Fatalf("the interrupted move: %v, want ErrUnavailable", err)
			}
			if _, _, rec := e.current(t, tn.TenantID); !rec.Pending() || rec.PendingMailUURL != inst.APIURL {
				t.Fatalf("the move is not left half done: pending %v, to %q", rec.Pending(), rec.PendingMailUURL)
			}

			own := e.with(func(c *credential.Config) { c.Vault = s.Apps[fn].Vault })
			switch fn {
			case "rotate":
				res, err := own.Rotate(ctx, credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "finish the move", Actor: credential.Actor{UserID: "ops"}})
				if err != nil || res.Outcome != credential.OutcomeResumed {
					t.Fatalf("rotate with its own identity: %+v, %v", res, err)
				}
			case "rotate-sweep":
				sum, err := own.Sweep(ctx)
				if err != nil || sum.Failed != 0 {
					t.Fatalf("sweep with its own identity: %+v, %v", sum, err)
				}
			}
			user, pw, rec := e.current(t, tn.TenantID)
			if rec.Pending() || rec.SMTPAddr != inst.SMTPAddr {
				t.Fatalf("after %s: pending %v, smtp %s, want %s", fn, rec.Pending(), rec.SMTPAddr, inst.SMTPAddr)
			}
			conn, err := s.App.Vault.Read(ctx, credential.MailUPath(tn.TenantID))
			if err != nil || conn.Data["api_url"] != inst.APIURL {
				t.Fatalf("MailU connection after %s: %v (%v)", fn, conn, err)
			}
			if err := verifyLogin(ctx, inst.SMTPAddr, user, pw); err != nil {
				t.Fatalf("the password does not log in at the new MailU: %v", err)
			}
		})
	}
}
