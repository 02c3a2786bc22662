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

// Config wires a Service: the rotation engine's configuration, since
// every change of a password runs that engine.
type Config = rotation.Config

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
	eng := rotation.New(cfg)
	return &Service{eng: eng, cfg: cfg, log: cfg.Log}
}

// Rotation is the engine that changes this service's credentials.
func (s *Service) Rotation() *rotation.Engine { return s.eng }

func (s *Service) now() time.Time { return s.eng.Now() }

// readRecord reads a tenant's admin record; ErrNotFound when there is none.
func (s *Service) readRecord(ctx context.Context, tenantID string) (*rotation.Record, error) {
	return s.eng.ReadRecord(ctx, tenantID)
}
