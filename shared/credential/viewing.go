package credential

import (
	"context"
	"fmt"

	"smtp-vault/shared/audit"
)

// viewingEvents are what the console reports of a credential it
// retrieved, and the fields it may report them of.
var (
	viewingEvents = map[string]bool{audit.CredentialsViewed: true, audit.CredentialsCopied: true}
	viewingFields = map[string]bool{"password": true, "username": true}
)

// RecordViewing records that actor revealed (audit.CredentialsViewed) or
// copied (audit.CredentialsCopied) a field of a tenant's credential in the
// console. Bad input is ErrInvalidInput and a tenant without a credential
// ErrNotFound; either way nothing is recorded. Recording fails closed
// (ErrAudit).
func (s *Service) RecordViewing(ctx context.Context, tenantID, event, field string, actor Actor) error {
	if err := ValidateTenantID(tenantID); err != nil {
		return err
	}
	if !viewingEvents[event] {
		return fmt.Errorf("%w: event must be %s or %s", ErrInvalidInput, audit.CredentialsViewed, audit.CredentialsCopied)
	}
	if !viewingFields[field] {
		return fmt.Errorf("%w: field must be password or username", ErrInvalidInput)
	}
	rec, err := s.readRecord(ctx, tenantID)
	if err != nil {
		return err
	}
	err = s.cfg.Audit.Record(ctx, audit.Event{
		Event: event, TenantID: tenantID, UserID: actor.UserID, IP: actor.IP, UserAgent: actor.UserAgent,
		Severity: audit.Info, Details: map[string]any{"field": field, "kv_version": rec.version},
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAudit, err)
	}
	return nil
}
