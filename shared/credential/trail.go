package credential

import (
	"context"
	"errors"
	"fmt"
	"time"

	"smtp-vault/shared/audit"
)

// ErrTrailUnreadable: the audit trail could not be read back.
var ErrTrailUnreadable = codedError("audit trail cannot be read", "audit_unavailable")

// AuditTrail returns a page of a tenant's audit events, newest first.
// Reading the trail is itself audited (audit_trail_queried), and the
// events are not returned when that record cannot be written.
func (s *Service) AuditTrail(ctx context.Context, tenantID string, q audit.Query, actor Actor) (audit.Page, error) {
	if err := ValidateTenantID(tenantID); err != nil {
		return audit.Page{}, err
	}
	if s.cfg.Trail == nil {
		return audit.Page{}, errors.New("audit trail: no audit bucket configured")
	}
	q.Chain = tenantID
	page, err := s.cfg.Trail.Query(ctx, q)
	switch {
	case errors.Is(err, audit.ErrQueryTooBroad):
		return audit.Page{}, err
	case err != nil:
		s.log.ErrorContext(ctx, "audit query failed", "tenant_id", tenantID, "error", err)
		return audit.Page{}, fmt.Errorf("%w: %w", ErrTrailUnreadable, err)
	}
	details := map[string]any{"page": q.Page, "per_page": q.PerPage, "returned": len(page.Events), "total": page.Total}
	for k, v := range map[string]string{"event": q.Event, "user": q.User} {
		if v != "" {
			details["filter_"+k] = v
		}
	}
	for k, v := range map[string]time.Time{"from": q.From, "to": q.To} {
		if !v.IsZero() {
			details["filter_"+k] = v.Format(time.RFC3339)
		}
	}
	if err := s.recordRequest(ctx, actor, audit.AuditTrailQueried, tenantID, details); err != nil {
		return audit.Page{}, err
	}
	return page, nil
}

// VerifyAuditChain verifies one chain (a tenant id, or audit.PlatformChain)
// and audits that it did, as audit_chain_verified (critical when the chain
// is broken).
func (s *Service) VerifyAuditChain(ctx context.Context, chain, by string) (audit.Report, error) {
	if s.cfg.Trail == nil {
		return audit.Report{}, errors.New("verify: no audit bucket configured")
	}
	if !audit.ValidChain(chain) {
		return audit.Report{}, fmt.Errorf("%w: tenant_id must be a lowercase UUID v4, or chain \"platform\"", ErrInvalidInput)
	}
	rep, err := s.cfg.Trail.Verify(ctx, chain)
	if err != nil {
		return rep, fmt.Errorf("verify audit chain %s: %w", chain, err)
	}
	sev, details := audit.Info, map[string]any{"intact": rep.Intact, "records": rep.Records, "head_seq": rep.HeadSeq, "head_hash": rep.HeadHash}
	if rep.Break != nil {
		sev = audit.Critical
		details["break_seq"] = rep.Break.Seq
		details["break"] = rep.Break.Problem
	}
	tenant := ""
	if chain != audit.PlatformChain {
		tenant = chain
	}
	if by == "" {
		by = "operator"
	}
	if err := s.cfg.Audit.Record(ctx, audit.Event{Event: audit.AuditChainVerified, TenantID: tenant, UserID: by, Severity: sev, Details: details}); err != nil {
		s.log.ErrorContext(ctx, "audit chain verification not recorded", "chain", chain, "error", err)
	}
	return rep, nil
}
