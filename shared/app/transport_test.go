package app_test

import (
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
)

// TestClientsKeepTheirConnections: a wave of requests as wide as the
// work keeps in flight (twice DefaultConcurrency), all open at once, then
// a second wave: the second opens no connection, the first wave's are
// kept idle and reused. With http.DefaultTransport's 2 idle connections a
// host (or vault/api's GOMAXPROCS+1), the second wave opened nearly all of
// its connections again.
func TestClientsKeepTheirConnections(t *testing.T) {
	for name, client := range map[string]*http.Client{
		"vault": app.VaultHTTPClient(),
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
			if got := opened.Load() - wide; got != 0 {
				t.Errorf("second wave opened %d new connections, want 0 (the first wave's kept idle)", got)
			}
		})
	}
}
