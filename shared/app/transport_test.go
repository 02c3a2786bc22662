package app_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
)

// TestClientsKeepTheirConnections: a wave of requests as wide as the
// work keeps in flight (twice DefaultConcurrency), all open at once, then
// a second wave: the second opens (almost) no connection, the first
// wave's are kept idle and reused. With http.DefaultTransport's 2 idle connections a
// host (or vault/api's GOMAXPROCS+1), the second wave opened nearly all of
// its connections again.
func TestClientsKeepTheirConnections(t *testing.T) {
	for name, client := range map[string]*http.Client{
		"vault": app.VaultHTTPClient(app.Config{}),
		"mailu": app.MailUHTTPClient(app.Config{}),
	} {
		t.Run(name, func(t *testing.T) {
			const wide = 2 * credential.DefaultConcurrency
			var opened atomic.Int64
			var arrived sync.WaitGroup
			srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				arrived.Done()
				arrived.Wait() // every request of the wave is open at once
				io.WriteString(w, "{}")
			}))
			srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					opened.Add(1)
				}
			}
			srv.Start()
			defer srv.Close()

			wave := func() {
				arrived.Add(wide)
				var done sync.WaitGroup
				for range wide {
					done.Add(1)
					go func() {
						defer done.Done()
						resp, err := client.Get(srv.URL)
						if err != nil {
							t.Error(err)
							arrived.Done()
							return
						}
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
					}()
				}
				done.Wait()
			}
			wave()
			if got := opened.Load(); got != wide {
				t.Fatalf("first wave opened %d connections, want %d", got, wide)
			}
			wave()
			// A connection goes back to the pool from the transport's
			// read loop just after its body is closed, so a request of
			// the second wave may rarely find it not yet back and dial.
			// A few such dials are allowed; with 2 or 3 kept idle the
			// second wave dials nearly all of its 32 again.
			if got := opened.Load() - wide; got > wide/8 {
				t.Errorf("second wave opened %d new connections, want at most %d (the first wave's kept idle)", got, wide/8)
			}
		})
	}
}

// TestMailUClientTrustsItsRoots: the admin API's client reaches a server
// whose certificate MAILU_CA_FILE's roots sign, and refuses it without
// them (the system's roots only).
func TestMailUClientTrustsItsRoots(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "{}") }))
	defer srv.Close()
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	resp, err := app.MailUHTTPClient(app.Config{MailURootCAs: roots}).Get(srv.URL)
	if err != nil {
		t.Fatalf("with the server's root: %v", err)
	}
	resp.Body.Close()
	if _, err := app.MailUHTTPClient(app.Config{}).Get(srv.URL); err == nil {
		t.Error("without MAILU_CA_FILE's roots the client trusted a certificate no system root signs")
	}
}

// TestVaultClientTrustsVaultCACert: the functions reach a Vault over TLS
// whose certificate VAULT_CACERT's CA signs, and refuse it without
// (vault/api's own reading of VAULT_CACERT never applied to the
// functions' transport) and with VAULT_SKIP_VERIFY, which is never read.
func TestVaultClientTrustsVaultCACert(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/sys/health" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"initialized":true,"sealed":false,"standby":false,"version":"1.21.0"}`)
	}))
	defer srv.Close()
	caFile := filepath.Join(t.TempDir(), "vault-ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	health := func(env map[string]string) error {
		clearEnv(t)
		t.Setenv("VAULT_ADDR", srv.URL)
		t.Setenv("VAULT_AUTH_METHOD", "token")
		t.Setenv("VAULT_TOKEN", "t")
		for k, v := range env {
			t.Setenv(k, v)
		}
		cfg, err := app.FromEnv()
		if err != nil {
			t.Fatal(err)
		}
		a, err := app.New(context.Background(), cfg, quiet())
		if err != nil {
			t.Fatal(err)
		}
		h, err := a.Vault.Health(context.Background())
		if err == nil && (!h.Initialized || h.Version != "1.21.0") {
			t.Fatalf("health read wrong: %+v", h)
		}
		return err
	}
	if err := health(map[string]string{"VAULT_CACERT": caFile}); err != nil {
		t.Fatalf("with VAULT_CACERT: %v", err)
	}
	if err := health(nil); err == nil {
		t.Error("without VAULT_CACERT the functions trusted a certificate no system root signs")
	}
	if err := health(map[string]string{"VAULT_SKIP_VERIFY": "true"}); err == nil {
		t.Error("VAULT_SKIP_VERIFY turned the certificate check off")
	}
}
