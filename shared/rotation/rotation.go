// Package rotation changes a tenant's MailU admin password the way AWS
// Secrets Manager rotates a secret: four named steps (createSecret,
// setSecret, testSecret, finishSecret), each safe to repeat, with the state
// in Vault so that any run can resume or roll back any tenant. Storing a
// tenant's first password and the 180-day rotation both run these steps;
// the daily sweep (sweep.go) decides who is due from KV metadata alone.
package rotation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/crypto"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/vault"
)

// Domain errors. The HTTP layer maps each to one status in one place; the
// message after the sentinel is safe to show to the caller.
var (
	ErrInvalidInput = errors.New("invalid input")
	ErrNotFound     = errors.New("credential not found")
	ErrConflict     = errors.New("conflicting change in progress")
	ErrUnavailable  = errors.New("upstream unavailable")
	ErrRejected     = errors.New("rejected by MailU")
	ErrAudit        = errors.New("audit record could not be written")
	// ErrCooldown refuses a rotation that would change MailU's password
	// less than Config.Cooldown after the previous change (the readers'
	// guarantee in docs/architecture.md rests on it).
	ErrCooldown = errors.New("rotated too recently")
)

// Vault is what the engine needs from Vault; *vault.Client implements it,
// and tests wrap it to inject faults.
type Vault interface {
	Read(ctx context.Context, path string) (*vault.Secret, error)
	WriteCAS(ctx context.Context, path string, data map[string]string, cas int) (int, error)
	ReadMetadata(ctx context.Context, path string) (*vault.Metadata, error)
	PatchCustomMetadata(ctx context.Context, path string, md map[string]string) error
	List(ctx context.Context, path string) ([]string, error)
	DataKey(ctx context.Context, key, derivationContext string) ([]byte, string, error)
	Decrypt(ctx context.Context, key, derivationContext, wrapped string) ([]byte, error)
	Rewrap(ctx context.Context, key, derivationContext, wrapped string) (string, error)
}

// MailU is one tenant's MailU admin API; *mailu.Client implements it.
type MailU interface {
	GetUser(ctx context.Context, email string) (mailu.User, error)
	CreateUser(ctx context.Context, u mailu.UserCreate) error
	SetPassword(ctx context.Context, email, password string) error
}

// Recorder records audit events, failing closed.
type Recorder interface {
	Record(ctx context.Context, e audit.Event) error
}

// Config wires an Engine.
type Config struct {
	Vault      Vault
	TransitKey string // the derived Transit key that wraps data keys
	KVMount    string // for references written into records
	// DialMailU returns a client for one tenant's MailU admin API.
	DialMailU func(apiURL, token string) MailU
	// VerifyLogin proves a password with a real SMTP AUTH login.
	VerifyLogin func(ctx context.Context, addr, username, password string) error
	Audit       Recorder
	Now         func() time.Time
	Log         *slog.Logger
	// LockTTL bounds how long a crashed change can block the next one. It
	// must exceed the longest function timeout.
	LockTTL time.Duration
	// Cooldown is the least time between two rotations of one tenant
	// (default DefaultCooldown); negative disables it.
	Cooldown time.Duration
	// Hook, when set, is called at every step boundary; fault tests use it
	// to crash a run there. Production code leaves it nil.
	Hook Hook
}

// DefaultCooldown is the least time between two password changes of one
// tenant by rotation: a client that logs in at least this often and
// re-reads once after an SMTP auth failure always gets a password MailU
// accepts.
const DefaultCooldown = 10 * time.Minute

// Engine runs the four steps for one tenant at a time.
type Engine struct {
	cfg Config
	log *slog.Logger
}

// New returns an Engine. Missing optional fields get defaults.
func New(cfg Config) *Engine {
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
	return &Engine{cfg: cfg, log: cfg.Log}
}

// Actor is who asked for an action, for the audit trail.
type Actor struct {
	UserID    string
	IP        string
	UserAgent string
}

// Now is the engine's clock, in UTC.
func (e *Engine) Now() time.Time { return e.cfg.Now().UTC() }

// cooldown is the configured least time between two rotations of a
// tenant; zero when disabled.
func (e *Engine) cooldown() time.Duration { return max(e.cfg.Cooldown, 0) }

// VerifyLogin proves a password with an SMTP AUTH login.
func (e *Engine) VerifyLogin(ctx context.Context, addr, username, password string) error {
	return e.cfg.VerifyLogin(ctx, addr, username, password)
}

// Seal encrypts a secret field of a tenant under a fresh Transit data key
// derived for that tenant, and returns the sealed value and the wrapped key.
func (e *Engine) Seal(ctx context.Context, tenantID, field, plaintext string) (sealed, wrapped string, err error) {
	dk, wrapped, err := e.cfg.Vault.DataKey(ctx, e.cfg.TransitKey, tenantID)
	if err != nil {
		return "", "", Upstream("get a data key", err)
	}
	defer crypto.Wipe(dk)
	sealed, err = crypto.Seal(dk, []byte(plaintext), crypto.AAD(tenantID, field))
	if err != nil {
		return "", "", fmt.Errorf("seal %s: %w", field, err)
	}
	return sealed, wrapped, nil
}

// Open decrypts a sealed field of a tenant.
func (e *Engine) Open(ctx context.Context, tenantID, field, sealed, wrapped string) (string, error) {
	dk, err := e.cfg.Vault.Decrypt(ctx, e.cfg.TransitKey, tenantID, wrapped)
	if err != nil {
		return "", Upstream("unwrap the data key", err)
	}
	defer crypto.Wipe(dk)
	pt, err := crypto.Open(dk, sealed, crypto.AAD(tenantID, field))
	if err != nil {
		return "", fmt.Errorf("open %s of tenant %s: %w", field, tenantID, err)
	}
	defer crypto.Wipe(pt)
	return string(pt), nil
}

// Upstream maps adapter errors to domain errors, keeping the cause.
func Upstream(doing string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, vault.ErrNotFound):
		return fmt.Errorf("%s: %w: %w", doing, ErrNotFound, err)
	case errors.Is(err, vault.ErrCASConflict):
		return fmt.Errorf("%s: %w: %w", doing, ErrConflict, err)
	case errors.Is(err, mailu.ErrConflict):
		return fmt.Errorf("%s: %w: %w", doing, ErrConflict, err)
	case errors.Is(err, mailu.ErrRejected), errors.Is(err, mailu.ErrNotFound):
		return fmt.Errorf("%s: %w: %w", doing, ErrRejected, err)
	case errors.Is(err, audit.ErrNotRecorded):
		return fmt.Errorf("%s: %w: %w", doing, ErrAudit, err)
	default:
		// Sealed, down, forbidden, timeouts, MailU auth failures: the caller
		// can do nothing but retry later.
		return fmt.Errorf("%s: %w: %w", doing, ErrUnavailable, err)
	}
}
