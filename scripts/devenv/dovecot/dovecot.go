// Package dovecot runs Debian's Dovecot as the SMTP front of a local MailU
// stand-in, configured as MailU 2024.06's front configures submission: a
// STARTTLS and an implicit-TLS listener on loopback, TLS before AUTH, and
// every login decided by the admin app's internal auth endpoint. One
// Dovecot serves every tenant of a stack.
package dovecot

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"smtp-vault/scripts/devenv/freeport"
	"smtp-vault/shared/mailu"
)

// Config describes one front.
type Config struct {
	// Dir keeps the local CA (created once, then reused), the server
	// certificate, the configuration and the log.
	Dir string
	// AuthURL is the admin app's internal auth endpoint, like MailU's
	// http://admin:8080/internal/auth/email.
	AuthURL string
	// RelayAddr is the SMTP server Dovecot's submission relays to
	// (host:port on loopback). The admin app names the proxy target of
	// each login itself; this is the fallback Dovecot requires.
	RelayAddr string
	// SubmissionAddr (STARTTLS, MailU's 587) and SubmissionsAddr
	// (implicit TLS, MailU's 465) are loopback host:ports; empty picks
	// free ports.
	SubmissionAddr  string
	SubmissionsAddr string
	// FailureDelay overrides auth_failure_delay (whole seconds); 0 keeps
	// Dovecot's default of 2 seconds, as MailU does, and a negative value
	// turns the delay off.
	FailureDelay time.Duration
	// Hostname is what the front greets with and its certificate names
	// beside localhost and the loopback addresses; default mail.localhost.
	Hostname string
}

// Server is a running Dovecot.
type Server struct {
	cfg         Config
	runDir      string
	submission  string
	submissions string
	cmd         *exec.Cmd
	done        chan struct{}
}

// MissingError says how to install Dovecot. It is what Start returns when
// the binary is not there.
const MissingError = "dovecot is missing: run `make dovecot` as root, or install Debian's dovecot-core, dovecot-submissiond and dovecot-auth-lua (apt-get install dovecot-core dovecot-submissiond dovecot-auth-lua), or set DOVECOT to the binary"

// Binary is the Dovecot master binary: $DOVECOT, else dovecot on PATH or
// in /usr/sbin.
func Binary() (string, error) {
	if b := os.Getenv("DOVECOT"); b != "" {
		if _, err := os.Stat(b); err != nil {
			return "", fmt.Errorf("%s (DOVECOT=%s: %w)", MissingError, b, err)
		}
		return b, nil
	}
	if b, err := exec.LookPath("dovecot"); err == nil {
		return b, nil
	}
	if _, err := os.Stat("/usr/sbin/dovecot"); err == nil {
		return "/usr/sbin/dovecot", nil
	}
	return "", errors.New(MissingError)
}

// Start writes the configuration and starts Dovecot in the foreground of a
// child process that dies with the caller. It returns once both listeners
// greet.
func Start(ctx context.Context, cfg Config) (*Server, error) {
	bin, err := Binary()
	if err != nil {
		return nil, err
	}
	if cfg.Hostname == "" {
		cfg.Hostname = "mail.localhost"
	}
	for _, a := range []string{cfg.SubmissionAddr, cfg.SubmissionsAddr, cfg.RelayAddr} {
		if a != "" && !mailu.IsLoopback(a) {
			return nil, fmt.Errorf("dovecot: %q is not a loopback host:port", a)
		}
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, err
	}
	ca, caKey, err := ensureCA(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("dovecot: %w", err)
	}
	if err := issueServerCert(cfg.Dir, ca, caKey, cfg.Hostname); err != nil {
		return nil, fmt.Errorf("dovecot: %w", err)
	}
	// Free ports are picked here and bound by Dovecot a moment later;
	// another process may take one in between, so a failed bind is
	// retried with new ports. Fixed ports may still be held for a moment
	// by the login processes of a Dovecot whose stack was killed: they
	// are retried as they are.
	var lastErr error
	for range 10 {
		s, err := start(ctx, bin, cfg)
		if err == nil {
			return s, nil
		}
		lastErr = err
		if !errors.Is(err, errPortTaken) {
			break
		}
		if cfg.SubmissionAddr != "" || cfg.SubmissionsAddr != "" {
			select {
			case <-ctx.Done():
				return nil, lastErr
			case <-time.After(time.Second):
			}
		}
	}
	return nil, lastErr
}

var errPortTaken = errors.New("a port was taken")

func start(ctx context.Context, bin string, cfg Config) (*Server, error) {
	s := &Server{cfg: cfg, submission: cfg.SubmissionAddr, submissions: cfg.SubmissionsAddr, done: make(chan struct{})}
	var err error
	for _, a := range []*string{&s.submission, &s.submissions} {
		if *a == "" {
			if *a, err = freeAddr(); err != nil {
				return nil, err
			}
		}
	}
	// Dovecot's sockets live in a short folder of their own: unix socket
	// paths are limited to 108 bytes, and its unprivileged processes must
	// be able to reach it and read the passdb.
	removeStaleRunDirs()
	if s.runDir, err = os.MkdirTemp("", runDirPrefix); err != nil {
		return nil, err
	}
	if err := os.Chmod(s.runDir, 0o755); err != nil {
		s.removeRunDir()
		return nil, err
	}
	conf, err := s.writeConfig()
	if err != nil {
		s.removeRunDir()
		return nil, err
	}
	logf, err := os.OpenFile(s.LogPath(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.removeRunDir()
		return nil, err
	}
	logStart, _ := logf.Seek(0, io.SeekEnd)
	s.cmd = exec.Command(bin, "-F", "-c", conf)
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := s.cmd.Start(); err != nil {
		logf.Close()
		s.removeRunDir()
		return nil, fmt.Errorf("dovecot: start %s: %w", bin, err)
	}
	go func() { s.cmd.Wait(); logf.Close(); close(s.done) }()
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		s.Close()
		tail := logSince(s.LogPath(), logStart, 20)
		if strings.Contains(tail, "Address already in use") {
			return nil, fmt.Errorf("dovecot: %w: %s", errPortTaken, tail)
		}
		return nil, fmt.Errorf("dovecot: %w\n%s", err, tail)
	}
	return s, nil
}

// writeConfig writes dovecot.conf into Dir and the passdb into the run
// folder, and returns the configuration's path.
func (s *Server) writeConfig() (string, error) {
	v := confValues{
		RunDir:        s.runDir,
		Instance:      "smtp-vault-" + randomHex(4),
		LogPath:       s.LogPath(),
		Hostname:      s.cfg.Hostname,
		Root:          os.Geteuid() == 0,
		WorkerUser:    "dovenull",
		CertFile:      filepath.Join(s.cfg.Dir, certFile),
		KeyFile:       filepath.Join(s.cfg.Dir, certKeyFile),
		LuaFile:       filepath.Join(s.runDir, "passdb.lua"),
		AuthURL:       s.cfg.AuthURL,
		TimeoutMillis: 2000, // MailU's front waits 2 s per try, 3 tries
		Attempts:      3,
	}
	switch {
	case s.cfg.FailureDelay > 0:
		v.FailureDelay = dovecotSecs(s.cfg.FailureDelay)
	case s.cfg.FailureDelay < 0:
		v.FailureDelay = "0"
	}
	if !v.Root {
		// Without root Dovecot cannot switch users: every process runs as
		// the caller.
		u, err := user.Current()
		if err != nil {
			return "", err
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			return "", err
		}
		v.LoginUser, v.InternalUser, v.InternalGroup, v.WorkerUser = u.Username, u.Username, g.Name, u.Username
	}
	var err error
	if v.RelayHost, v.RelayPort, err = net.SplitHostPort(orDefault(s.cfg.RelayAddr, "127.0.0.1:25")); err != nil {
		return "", err
	}
	if v.SubmissionHost, v.SubmissionPort, err = net.SplitHostPort(s.submission); err != nil {
		return "", err
	}
	if v.SubmissionsHost, v.SubmissionsPort, err = net.SplitHostPort(s.submissions); err != nil {
		return "", err
	}
	lua, err := render(luaTemplate, v)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(v.LuaFile, lua, 0o644); err != nil {
		return "", err
	}
	conf, err := render(confTemplate, v)
	if err != nil {
		return "", err
	}
	path := filepath.Join(s.cfg.Dir, "dovecot.conf")
	return path, os.WriteFile(path, conf, 0o600)
}

// waitReady waits until both listeners greet, over TLS on the implicit
// one, with the certificate the clients will verify.
func (s *Server) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	tlsConf, err := s.TLSConfig()
	if err != nil {
		return err
	}
	for {
		err := greets(s.submission, nil)
		if err == nil {
			err = greets(s.submissions, tlsConf)
		}
		if err == nil {
			return nil
		}
		select {
		case <-s.done:
			return errors.New("exited during start")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no greeting within %v: %w", limit, err)
		}
	}
}

func greets(addr string, tlsConf *tls.Config) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if tlsConf != nil {
		tc := tls.Client(conn, tlsConf)
		conn = tc
	}
	conn.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if !strings.HasPrefix(line, "220 ") {
		return fmt.Errorf("unexpected greeting %q", strings.TrimSpace(line))
	}
	return nil
}

// SubmissionAddr is the STARTTLS listener (MailU's 587).
func (s *Server) SubmissionAddr() string { return s.submission }

// SubmissionsAddr is the implicit-TLS listener (MailU's 465).
func (s *Server) SubmissionsAddr() string { return s.submissions }

// CAFile is the PEM of the local CA that signs the front's certificate.
func (s *Server) CAFile() string { return filepath.Join(s.cfg.Dir, caFile) }

// LogPath is Dovecot's log.
func (s *Server) LogPath() string { return filepath.Join(s.cfg.Dir, "dovecot.log") }

// TLSConfig trusts the local CA only, as a client of the front should,
// and expects the name the listeners are reached by (127.0.0.1).
func (s *Server) TLSConfig() (*tls.Config, error) {
	pem, err := os.ReadFile(s.CAFile())
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("dovecot: no certificate in %s", s.CAFile())
	}
	host, _, _ := net.SplitHostPort(s.submissions)
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12, ServerName: host}, nil
}

// Close stops Dovecot (SIGTERM, then SIGKILL to its process group after 10
// seconds) and removes its run folder.
func (s *Server) Close() error {
	if s == nil || s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	}
	s.removeRunDir()
	return nil
}

func (s *Server) removeRunDir() {
	if s.runDir != "" {
		_ = os.RemoveAll(s.runDir)
	}
}

const runDirPrefix = "smtp-vault-dovecot-"

// removeStaleRunDirs removes the run folders of fronts whose Dovecot is
// gone without its Close (a killed stack): those whose master.pid names
// no running process, or that never got one and are an hour old.
func removeStaleRunDirs() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), runDirPrefix+"*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "master.pid"))
		if err != nil {
			if fi, serr := os.Stat(d); serr == nil && time.Since(fi.ModTime()) > time.Hour {
				_ = os.RemoveAll(d)
			}
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			_ = os.RemoveAll(d)
		}
	}
}

func freeAddr() (string, error) { return freeport.Addr() }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// logSince returns the last n lines written to path after offset.
func logSince(path string, offset int64, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return ""
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
