// Package credential is the domain of smtp-vault: a tenant's MailU admin
// credential, how it is stored, read, rotated, reset and listed. Every
// handler calls a Service method; the adapters it needs (Vault, MailU,
// audit, notices, queue) are ports declared in ports.go. A change of the
// password runs AWS Secrets Manager's four rotation steps (steps.go), with
// its state in Vault so that any run can resume or roll back any tenant.
package credential

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// Config wires a Service.
type Config struct {
	Vault      Vault
	TransitKey string // the derived Transit key that wraps data keys
	KVMount    string // for references written into records
	// DialMailU returns a client for one tenant's MailU admin API.
	DialMailU func(apiURL, token string) MailU
	// VerifyLogin proves a password with a real SMTP AUTH login.
	VerifyLogin func(ctx context.Context, addr, username, password string) error
	Audit       Recorder
	// Trail reads the audit trail back (the audit function's); nil where
	// no function reads it.
	Trail Trail
	// Notifier sends the day-173 rotation notices (the sweep's).
	Notifier Notifier
	// Queue takes the sweep's and the bulk rotation's jobs beyond Inline;
	// nil runs every job in the invocation.
	Queue Queue
	// ResetQueue takes a compromise response's jobs for the emergency-reset
	// worker; nil resets every tenant in the request.
	ResetQueue ResetQueue
	// Inline is how many jobs the sweep runs itself when Queue is set.
	Inline int
	// Reserve is the time left before the invocation's deadline at which
	// the sweep stops running jobs itself and queues the rest.
	Reserve time.Duration
	// Concurrency bounds the metadata reads of a listing and the sweep's
	// inline rotations (default DefaultConcurrency).
	Concurrency int
	// IndexMount is the KV v2 mount of the status index (index.go) and
	// IndexShards its number of shards (defaults DefaultIndexMount,
	// DefaultIndexShards).
	IndexMount  string
	IndexShards int
	// IndexCacheTTL, when positive, lets the overview answer from the
	// status index as read less than this long ago (real time), so that
	// paging through a listing reads the shards once; a change shows
	// within it. The sweep and the bulk rotation always read afresh.
	IndexCacheTTL time.Duration
	Now           func() time.Time
	Log           *slog.Logger
	// LockTTL bounds how long a crashed change can block the next one. It
	// must exceed the longest function timeout.
	LockTTL time.Duration
	// Cooldown is the least time between two rotations of one tenant
	// (default DefaultCooldown); negative disables it.
	Cooldown time.Duration
	// AllowedHosts are hosts outside a tenant's domain that its endpoints
	// may move to (a shared MailU of the platform); lower case, no port.
	AllowedHosts []string
	// Hook, when set, is called at every step boundary; fault tests use it
	// to crash a run there. Production code leaves it nil.
	Hook Hook
}

// DefaultCooldown is the least time between two password changes of one
// tenant by rotation: a client that logs in at least this often and
// re-reads once after an SMTP auth failure always gets a password MailU
// accepts.
const DefaultCooldown = 10 * time.Minute

// DefaultConcurrency is how many metadata reads a listing keeps in flight.
const DefaultConcurrency = 16

// Service stores, reads and changes tenants' credentials.
type Service struct {
	cfg Config
	log *slog.Logger

	cache struct { // the overview's read of the status index
		sync.Mutex
		idx indexed
		at  time.Time
	}
}

// New returns a Service. Missing optional fields get defaults.
func New(cfg Config) *Service {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.LockTTL == 0 {
		cfg.LockTTL = 5 * time.Minute
	}
	if cfg.KVMount == "" {
		cfg.KVMount = "smtp"
	}
	if cfg.Cooldown == 0 {
		cfg.Cooldown = DefaultCooldown
	}
	if cfg.IndexMount == "" {
		cfg.IndexMount = DefaultIndexMount
	}
	if cfg.IndexShards <= 0 {
		cfg.IndexShards = DefaultIndexShards
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	return &Service{cfg: cfg, log: cfg.Log}
}

// Actor is who asked for an action, for the audit trail.
type Actor struct {
	UserID    string
	IP        string
	UserAgent string
}

// Now is the service's clock, in UTC.
func (s *Service) Now() time.Time { return s.cfg.Now().UTC() }

// cooldown is the configured least time between two rotations of a
// tenant; zero when disabled.
func (s *Service) cooldown() time.Duration { return max(s.cfg.Cooldown, 0) }

// forEach calls fn(i) for every i in [0, n), Config.Concurrency calls at
// a time, and returns when all have returned: the one worker pool of the
// listings, the checks and the bulk resets.
func (s *Service) forEach(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(s.cfg.Concurrency, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// tally counts the tenants of a bulk job as each finishes and hands each
// outcome to report (may be nil) with the count so far, one call at a
// time, so a caller's progress display needs no locking of its own.
type tally[T any] struct {
	mu     sync.Mutex
	done   int
	total  int
	report func(outcome T, done, total int)
}

func (t *tally[T]) finish(outcome T) {
	if t.report == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.done++
	t.report(outcome, t.done, t.total)
}
