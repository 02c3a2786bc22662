package mailustandin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Instance is one tenant's MailU admin app: an admin API and the answers
// of the internal auth endpoint over one user store, plus an SMTP AUTH
// listener of its own for unit tests of SMTP clients.
type Instance struct {
	srv    *Server
	domain string
	token  string
	// Bound addresses, fixed before the instance is published so that a
	// restart after Down reopens the same ports.
	httpAddr string
	smtpAddr string

	life       sync.Mutex // serialises starting and stopping the listeners
	running    bool
	closed     bool
	httpSrv    *http.Server
	smtpSrv    *smtp.Server
	listeners  []net.Listener
	smtpCancel context.CancelFunc

	mu      sync.Mutex // guards everything below
	smtpCtx context.Context
	domains map[string]*domainRecord
	users   map[string]*userRecord
	faults  Faults

	limiter *authLimiter // MailU's limits on failed logins; has its own lock
}

func newInstance(s *Server, cfg InstanceConfig) *Instance {
	return &Instance{
		srv:      s,
		domain:   cfg.Domain,
		token:    cfg.APIToken,
		httpAddr: cfg.HTTPAddr,
		smtpAddr: cfg.SMTPAddr,
		domains:  map[string]*domainRecord{},
		users:    map[string]*userRecord{},
		limiter:  newAuthLimiter(*s.opts.AuthLimits, s.opts.Now),
	}
}

// Domain is the mail domain the instance hosts.
func (i *Instance) Domain() string { return i.domain }

// APIURL is the base URL of the admin API, like MailU's
// https://mail.example.com/api/v1.
func (i *Instance) APIURL() string { return "http://" + i.httpAddr + "/api/v1" }

// SMTPAddr is the host:port of the instance's own SMTP AUTH listener, a
// plain go-smtp server for unit tests of SMTP clients. It is not MailU's
// front: stacks log in through Dovecot (devenv.MailUInstance.SMTPAddr).
func (i *Instance) SMTPAddr() string { return i.smtpAddr }

// Faults returns the faults in force (counters as they stand now).
func (i *Instance) Faults() Faults {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.faults
}

// SetFaults replaces the instance's faults. Setting Down closes the
// listeners and every open connection; clearing it reopens the same ports
// (an error only if another process took one meanwhile).
func (i *Instance) SetFaults(f Faults) error {
	i.life.Lock()
	defer i.life.Unlock()
	if i.closed {
		return ErrClosed
	}
	i.mu.Lock()
	i.faults = f
	i.mu.Unlock()
	i.srv.log.Info("mailu faults set", "domain", i.domain, "faults", f)
	switch {
	case f.Down && i.running:
		i.stop()
	case !f.Down && !i.running:
		if err := i.start(); err != nil {
			return fmt.Errorf("standin: bring %s back up: %w", i.domain, err)
		}
	}
	return nil
}

// Close stops the instance and forgets it and its users, as when the
// tenant's VPS is lost. The domain can then be added afresh.
func (i *Instance) Close() error {
	i.shutdown()
	return i.srv.remove(i)
}

// shutdown stops the listeners for good.
func (i *Instance) shutdown() {
	i.life.Lock()
	defer i.life.Unlock()
	i.closed = true
	if i.running {
		i.stop()
	}
}

func (i *Instance) sameAs(cfg InstanceConfig) bool {
	return cfg.APIToken == i.token &&
		(cfg.HTTPAddr == "" || cfg.HTTPAddr == i.httpAddr) &&
		(cfg.SMTPAddr == "" || cfg.SMTPAddr == i.smtpAddr)
}

// start opens both listeners. The first start binds the configured
// addresses (or free ports) and records them.
func (i *Instance) start() error {
	httpLn, err := net.Listen("tcp", orFree(i.httpAddr))
	if err != nil {
		return fmt.Errorf("listen for the API: %w", err)
	}
	smtpLn, err := net.Listen("tcp", orFree(i.smtpAddr))
	if err != nil {
		httpLn.Close()
		return fmt.Errorf("listen for SMTP: %w", err)
	}
	if i.httpAddr == "" || i.smtpAddr == "" || isFreePort(i.httpAddr) || isFreePort(i.smtpAddr) {
		// Only before the instance is published (first start): readers
		// never see these fields change.
		i.httpAddr, i.smtpAddr = httpLn.Addr().String(), smtpLn.Addr().String()
	}
	errLog := slog.NewLogLogger(i.srv.log.With("domain", i.domain).Handler(), slog.LevelDebug)

	i.httpSrv = &http.Server{Handler: i, ReadHeaderTimeout: 10 * time.Second, ErrorLog: errLog}
	go i.serve(i.httpSrv.Serve, httpLn)

	ctx, cancel := context.WithCancel(context.Background())
	i.mu.Lock()
	i.smtpCtx = ctx
	i.mu.Unlock()
	i.smtpCancel = cancel
	s := smtp.NewServer(smtpBackend{i})
	s.Domain = "mail." + i.domain
	s.ReadTimeout = time.Minute
	s.WriteTimeout = time.Minute
	s.MaxMessageBytes = 1 << 20
	s.ErrorLog = errLog
	if i.srv.opts.SMTPTLSConfig != nil {
		s.TLSConfig = i.srv.opts.SMTPTLSConfig
	} else {
		s.AllowInsecureAuth = true
	}
	i.smtpSrv = s
	go i.serve(s.Serve, smtpLn)
	i.listeners = []net.Listener{httpLn, smtpLn}
	i.running = true
	return nil
}

// stop closes both listeners and every connection, and ends SMTP AUTHs
// waiting out a Delay.
func (i *Instance) stop() {
	i.httpSrv.Close()
	i.smtpSrv.Close()
	// go-smtp only closes listeners its Serve has registered; one that
	// was stopped before its goroutine ran would keep the port bound and
	// the next start would fail. Closing them here covers that.
	for _, ln := range i.listeners {
		ln.Close()
	}
	i.smtpCancel()
	i.running = false
}

func (i *Instance) serve(fn func(net.Listener) error, ln net.Listener) {
	err := fn(ln)
	if err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, smtp.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		i.srv.log.Warn("mailu listener ended", "domain", i.domain, "addr", ln.Addr().String(), "error", err)
	}
}

func orFree(addr string) string {
	if addr == "" {
		return "127.0.0.1:0"
	}
	return addr
}

func isFreePort(addr string) bool {
	_, port, err := net.SplitHostPort(addr)
	return err == nil && port == "0"
}

func (i *Instance) currentFaults() Faults {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.faults
}

// takeWriteFault consumes one write fault: "fail" (500, nothing done),
// "drop" (apply, then cut the connection) or "".
func (i *Instance) takeWriteFault() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	switch {
	case i.faults.RejectAPI:
		return "fail"
	case i.faults.FailNextWrites > 0:
		i.faults.FailNextWrites--
		return "fail"
	case i.faults.DropNextWriteResponses > 0:
		i.faults.DropNextWriteResponses--
		return "drop"
	}
	return ""
}
