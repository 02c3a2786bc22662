// Package mailustandin is a stand-in for MailU 2024.06's admin app, for
// tests and local runs where MailU's containers cannot run. One Server
// hosts many MailU instances (one per tenant), each with its own admin API
// v1 on loopback over one user store, with injectable faults and optional
// state that survives a restart; one internal auth endpoint answers the
// real Dovecot front (scripts/devenv/dovecot) for all of them.
package mailustandin

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"smtp-vault/shared/mailu"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Errors of the Go API (the MailU API answers with MailU's statuses).
var (
	ErrInstanceExists = errors.New("standin: instance exists with another token or address")
	ErrNoInstance     = errors.New("standin: no such instance")
	ErrClosed         = errors.New("standin: closed")
	ErrInvalid        = errors.New("standin: invalid instance config")
)

// Options configure a Server. The zero value works: no persistence,
// discarded logs, bcrypt's default cost.
type Options struct {
	// StatePath is a JSON file that keeps instances and users across
	// restarts; empty means memory only.
	StatePath string
	Logger    *slog.Logger
	// BcryptCost of stored password hashes; 0 means MailU's
	// CREDENTIAL_ROUNDS default, 12. Tests may use bcrypt.MinCost to go
	// faster.
	BcryptCost int
	// SMTPTLSConfig, when set, makes SMTP offer STARTTLS and accept AUTH
	// only after it, like MailU's submission port. Without it AUTH is
	// offered in clear, which is acceptable on loopback only.
	SMTPTLSConfig *tls.Config
	// AuthLimits are MailU's limits on failed logins; nil means MailU's
	// defaults (DefaultAuthLimits).
	AuthLimits *AuthLimits
	// Now is the clock of the rate limits; nil means time.Now.
	Now func() time.Time
}

// InstanceConfig describes one MailU instance. Empty addresses mean
// 127.0.0.1:0 (a free port); addresses must be on loopback.
type InstanceConfig struct {
	Domain   string
	APIToken string
	HTTPAddr string
	SMTPAddr string
}

// Server hosts MailU instances. It is safe for concurrent use.
type Server struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	instances map[string]*Instance
	closed    bool
	internal  []func() // stop the internal endpoint and relay (relay.go)

	// Group commit of the state file: changes counts applied changes,
	// saved is the count the file on disk covers.
	saveMu  sync.Mutex
	changes atomic.Uint64
	saved   uint64
}

// NewServer returns a Server with no instances. Call Restore to bring back
// the instances of Options.StatePath.
func NewServer(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.BcryptCost == 0 {
		opts.BcryptCost = 12 // configuration.py: CREDENTIAL_ROUNDS
	}
	if opts.AuthLimits == nil {
		l := DefaultAuthLimits()
		opts.AuthLimits = &l
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Server{opts: opts, log: opts.Logger, instances: map[string]*Instance{}}
}

// AddInstance starts a MailU instance hosting cfg.Domain. It is idempotent:
// asking again for an existing domain with the same token (and no other
// addresses) returns the running instance; a different token or address is
// ErrInstanceExists.
func (s *Server) AddInstance(ctx context.Context, cfg InstanceConfig) (*Instance, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	cfg.Domain = strings.ToLower(strings.TrimSpace(cfg.Domain))
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, ErrClosed
	}
	if in, ok := s.instances[cfg.Domain]; ok {
		s.mu.Unlock()
		if in.sameAs(cfg) {
			return in, nil
		}
		return nil, fmt.Errorf("%w: %s", ErrInstanceExists, cfg.Domain)
	}
	in := newInstance(s, cfg)
	in.domains[cfg.Domain] = newDomain(cfg.Domain)
	// Listening under s.mu keeps two racing calls for one domain from both
	// starting an instance; binding a loopback port is quick.
	if err := in.start(); err != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("standin: start instance %s: %w", cfg.Domain, err)
	}
	s.instances[cfg.Domain] = in
	s.mu.Unlock()
	s.log.Info("mailu instance started", "domain", in.domain, "api_url", in.APIURL(), "smtp_addr", in.SMTPAddr())
	if err := s.persist(); err != nil {
		return in, fmt.Errorf("standin: save state after adding %s: %w", cfg.Domain, err)
	}
	return in, nil
}

// Instance returns the instance hosting domain.
func (s *Server) Instance(domain string) (*Instance, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	in, ok := s.instances[strings.ToLower(domain)]
	return in, ok
}

// hostOf returns the instance that hosts domain: the one named after it,
// or one whose admin API created it (POST /domain), as one MailU serves
// every domain it holds.
func (s *Server) hostOf(domain string) (*Instance, bool) {
	if in, ok := s.Instance(domain); ok {
		return in, true
	}
	domain = strings.ToLower(domain)
	for _, in := range s.Instances() {
		in.mu.Lock()
		_, ok := in.domains[domain]
		in.mu.Unlock()
		if ok {
			return in, true
		}
	}
	return nil, false
}

// Instances returns every instance, ordered by domain.
func (s *Server) Instances() []*Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Instance, 0, len(s.instances))
	for _, in := range s.instances {
		out = append(out, in)
	}
	slices.SortFunc(out, func(a, b *Instance) int { return strings.Compare(a.domain, b.domain) })
	return out
}

// Close stops every instance. The state file keeps them for the next
// Restore.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	all := make([]*Instance, 0, len(s.instances))
	for _, in := range s.instances {
		all = append(all, in)
	}
	stops := s.internal
	s.internal = nil
	s.mu.Unlock()
	for _, in := range all {
		in.shutdown()
	}
	for _, stop := range stops {
		stop()
	}
	return nil
}

// remove forgets an instance (Instance.Close).
func (s *Server) remove(in *Instance) error {
	s.mu.Lock()
	if s.instances[in.domain] == in {
		delete(s.instances, in.domain)
	}
	s.mu.Unlock()
	return s.persist()
}

func checkConfig(cfg InstanceConfig) error {
	if !validDomain(cfg.Domain) {
		return fmt.Errorf("%w: domain %q is not a valid domain name", ErrInvalid, cfg.Domain)
	}
	// An empty token is MailU with API=true and no API_TOKEN (an HTML
	// 500); one shorter than 4 characters refuses every request (403),
	// as in api/common.py.
	for _, a := range []string{cfg.HTTPAddr, cfg.SMTPAddr} {
		// The stand-in accepts clear-text logins and has a control API without
		// authentication, so nothing of it may listen beyond the machine.
		if a != "" && !mailu.IsLoopback(a) {
			return fmt.Errorf("%w: address %q is not on loopback", ErrInvalid, a)
		}
	}
	return nil
}
