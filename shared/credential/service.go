// Package credential is the domain of smtp-vault: a tenant's MailU admin
// credential, how it is stored, read and changed. It composes the adapters
// (Vault, MailU, audit) and knows nothing about Lambda or HTTP.
package credential

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

// Vault is what the domain needs from Vault; *vault.Client implements it,
// and tests wrap it to inject faults.
type Vault interface {
	Read(ctx context.Context, path string) (*vault.Secret, error)
	WriteCAS(ctx context.Context, path string, data map[string]string, cas int) (int, error)
	PatchCustomMetadata(ctx context.Context, path string, md map[string]string) error
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
	Now         func() time.Time
	Log         *slog.Logger
	// LockTTL bounds how long a crashed change can block the next one. It
	// must exceed the longest function timeout.
	LockTTL time.Duration
}

// Service stores, reads and changes tenants' credentials.
type Service struct {
	cfg Config
	log *slog.Logger
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
	return &Service{cfg: cfg, log: cfg.Log}
}

// Actor is who asked for an action, for the audit trail.
type Actor struct {
	UserID    string
	IP        string
	UserAgent string
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

// seal encrypts a secret field of a tenant under a fresh Transit data key
// derived for that tenant, and returns the sealed value and the wrapped key.
func (s *Service) seal(ctx context.Context, tenantID, field, plaintext string) (sealed, wrapped string, err error) {
	dk, wrapped, err := s.cfg.Vault.DataKey(ctx, s.cfg.TransitKey, tenantID)
	if err != nil {
		return "", "", upstream("get a data key", err)
	}
	defer crypto.Wipe(dk)
	sealed, err = crypto.Seal(dk, []byte(plaintext), crypto.AAD(tenantID, field))
	if err != nil {
		return "", "", fmt.Errorf("seal %s: %w", field, err)
	}
	return sealed, wrapped, nil
}

// open decrypts a sealed field of a tenant.
func (s *Service) open(ctx context.Context, tenantID, field, sealed, wrapped string) (string, error) {
	dk, err := s.cfg.Vault.Decrypt(ctx, s.cfg.TransitKey, tenantID, wrapped)
	if err != nil {
		return "", upstream("unwrap the data key", err)
	}
	defer crypto.Wipe(dk)
	pt, err := crypto.Open(dk, sealed, crypto.AAD(tenantID, field))
	if err != nil {
		return "", fmt.Errorf("open %s of tenant %s: %w", field, tenantID, err)
	}
	defer crypto.Wipe(pt)
	return string(pt), nil
}

// upstream maps adapter errors to domain errors, keeping the cause.
func upstream(doing string, err error) error {
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
