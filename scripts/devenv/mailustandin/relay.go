package mailustandin

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/emersion/go-smtp"
)

// Internal is what a front needs of the stand-in, as MailU's front needs
// its admin app and its SMTP server: the internal auth endpoint and the
// SMTP server that logged-in sessions are proxied to (MailU's postfix on
// port 10025, which trusts the front and asks no AUTH).
type Internal struct {
	AuthURL   string `json:"auth_url"`   // http://127.0.0.1:port/internal/auth/email
	RelayAddr string `json:"relay_addr"` // 127.0.0.1:port
}

// StartInternal starts the internal auth endpoint and the relay on free
// loopback ports; Close stops them.
func (s *Server) StartInternal() (Internal, error) {
	relayLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Internal{}, fmt.Errorf("standin: listen for the relay: %w", err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		relayLn.Close()
		return Internal{}, fmt.Errorf("standin: listen for the internal endpoint: %w", err)
	}
	errLog := slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)
	relay := smtp.NewServer(relayBackend{})
	relay.Domain = "relay.localhost"
	relay.ReadTimeout, relay.WriteTimeout = time.Minute, time.Minute
	relay.MaxMessageBytes = 1 << 20
	relay.ErrorLog = errLog
	in := Internal{AuthURL: "http://" + httpLn.Addr().String() + InternalAuthPath, RelayAddr: relayLn.Addr().String()}
	hs := &http.Server{Handler: s.InternalHandler(in.RelayAddr), ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		relayLn.Close()
		httpLn.Close()
		return Internal{}, ErrClosed
	}
	s.internal = append(s.internal, func() { hs.Close(); relay.Close(); relayLn.Close(); httpLn.Close() })
	s.mu.Unlock()
	go serveQuietly(s.log, relay.Serve, relayLn)
	go serveQuietly(s.log, hs.Serve, httpLn)
	return in, nil
}

func serveQuietly(log *slog.Logger, fn func(net.Listener) error, ln net.Listener) {
	err := fn(ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		log.Warn("mailu internal listener ended", "addr", ln.Addr().String(), "error", err)
	}
}

// relayBackend accepts any mail from the front and throws it away.
type relayBackend struct{}

func (relayBackend) NewSession(*smtp.Conn) (smtp.Session, error) { return relaySession{}, nil }

type relaySession struct{}

func (relaySession) Mail(string, *smtp.MailOptions) error { return nil }
func (relaySession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (relaySession) Data(r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}
func (relaySession) Reset()        {}
func (relaySession) Logout() error { return nil }
