// Package credential is the domain of smtp-vault: a tenant's MailU admin
// credential, how it is stored, read and changed. It composes the adapters
// (Vault, MailU, audit) and knows nothing about Lambda or HTTP. Changes of
// the password run the rotation engine's four steps (shared/rotation).
package credential

import (
	"context"
	"log/slog"
	"time"

	"smtp-vault/shared/rotation"
)

// Vault is what the domain needs from Vault; *vault.Client implements it,
// and tests wrap it to inject faults.
type Vault = rotation.Vault

// MailU is one tenant's MailU admin API; *mailu.Client implements it.
type MailU = rotation.MailU

// Recorder records audit events, failing closed.
type Recorder = rotation.Recorder

// Actor is who asked for an action, for the audit trail.
type Actor = rotation.Actor

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
	// Cooldown and Hook are the rotation engine's (rotation.Config).
	Cooldown time.Duration
	Hook     rotation.Hook
}

// Service stores, reads and changes tenants' credentials.
type Service struct {
	eng *rotation.Engine
	cfg Config
	log *slog.Logger
}

// New returns a Service. Missing optional fields get defaults.
func New(cfg Config) *Service {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.KVMount == "" {
		cfg.KVMount = "smtp"
	}
	eng := rotation.New(rotation.Config{
		Vault:       cfg.Vault,
		TransitKey:  cfg.TransitKey,
		KVMount:     cfg.KVMount,
		DialMailU:   cfg.DialMailU,
		VerifyLogin: cfg.VerifyLogin,
		Audit:       cfg.Audit,
		Now:         cfg.Now,
		Log:         cfg.Log,
		LockTTL:     cfg.LockTTL,
		Cooldown:    cfg.Cooldown,
		Hook:        cfg.Hook,
	})
	return &Service{eng: eng, cfg: cfg, log: cfg.Log}
}

// Rotation is the engine that changes this service's credentials.
func (s *Service) Rotation() *rotation.Engine { return s.eng }

func (s *Service) now() time.Time { return s.eng.Now() }

// readRecord reads a tenant's admin record; ErrNotFound when there is none.
func (s *Service) readRecord(ctx context.Context, tenantID string) (*rotation.Record, error) {
	return s.eng.ReadRecord(ctx, tenantID)
}
