package credential

import (
	"context"
	"fmt"
	"strings"
	"time"

	"smtp-vault/shared/audit"
)

// RecoverInput moves a tenant whose VPS was lost to its new MailU.
type RecoverInput struct {
	TenantID      string `json:"tenant_id"`
	MailUAPIURL   string `json:"mailu_api_url"`
	MailUAPIToken string `json:"mailu_api_token"`
	SMTPAddr      string `json:"smtp_addr"`
	WebmailURL    string `json:"webmail_url"`
	// Rotate sets a fresh password on the new MailU instead of the stored
	// one (when the old VPS may have leaked it).
	Rotate bool `json:"rotate,omitempty"`
}

// RecoverResult describes the recovered credential; it never holds the
// password.
type RecoverResult struct {
	TenantID     string    `json:"tenant_id"`
	Username     string    `json:"username"`
	WebmailURL   string    `json:"webmail_url"`
	SMTPAddr     string    `json:"smtp_addr"`
	Rotated      bool      `json:"rotated"`
	LastRotated  time.Time `json:"last_rotated"`
	NextRotation time.Time `json:"next_rotation"`
	Version      int       `json:"version"`
	// Took is how long the recovery ran (RTO evidence).
	Took time.Duration `json:"took_ns"`
}

// Recover re-creates a tenant's MailU admin on a new MailU after the VPS
// was lost: with the stored password (so clients that have it keep
// working) or, with Rotate, a fresh one, set through the new MailU's API
// named in the same request with its own token, proved with an SMTP AUTH
// login there, and promoted with the new endpoints by check-and-set
// (endpoint.go: the stored secret goes only to the endpoint of this
// request, whose host must be under the tenant's domain or allowed). A
// change left pending at the lost VPS is dropped: its MailU is gone.
// Audited as smtp_credentials_recovered (and smtp_endpoint_changed).
func (s *Service) Recover(ctx context.Context, in RecoverInput, actor Actor) (RecoverResult, error) {
	started := time.Now()
	if err := ValidateTenantID(in.TenantID); err != nil {
		return RecoverResult{}, err
	}
	if err := checkURL("webmail_url", in.WebmailURL, false); err != nil {
		return RecoverResult{}, err
	}
	if err := checkURL("mailu_api_url", in.MailUAPIURL, true); err != nil {
		return RecoverResult{}, err
	}
	if hostOf(in.SMTPAddr) == "" || len(in.SMTPAddr) > 300 {
		return RecoverResult{}, fmt.Errorf("%w: %s", ErrInvalidInput, smtpAddrRule)
	}
	if in.MailUAPIToken == "" || len(in.MailUAPIToken) > 512 || strings.ContainsAny(in.MailUAPIToken, " \t\r\n") {
		return RecoverResult{}, fmt.Errorf("%w: %w (at most 512 characters without whitespace)", ErrInvalidInput, ErrTokenRequired)
	}
	release, err := s.lock(ctx, in.TenantID, PurposeEndpoint)
	if err != nil {
		return RecoverResult{}, err
	}
	defer release()
	rec, err := s.readRecord(ctx, in.TenantID)
	if err != nil {
		return RecoverResult{}, err
	}
	if rec.Password == "" {
		return RecoverResult{}, fmt.Errorf("%w: tenant %s has no stored credential to recover", ErrNotFound, in.TenantID)
	}
	ev := audit.Event{
		Event: audit.CredentialsRecovered, TenantID: in.TenantID, UserID: actor.UserID, IP: actor.IP, UserAgent: actor.UserAgent, Severity: audit.Warning,
		Details: map[string]any{"rotated": in.Rotate, "new_smtp_host": hostOf(in.SMTPAddr), "new_mailu_api_host": urlHost(in.MailUAPIURL)},
	}
	if s.pendingRecoveryHeld(ctx, in, rec) {
		// A recovery to this same MailU that set its password there but
		// whose login was refused (or that stopped): finish it, rather
		// than set another password on the strength of the refusal.
		if _, err := s.resume(ctx, in.TenantID, rec, &ev); err != nil {
			return RecoverResult{}, err
		}
		if !rec.Pending() && rec.SMTPAddr == in.SMTPAddr {
			last := rec.LastRotatedTime()
			return RecoverResult{TenantID: in.TenantID, Username: rec.Username, WebmailURL: rec.WebmailURL, SMTPAddr: rec.SMTPAddr, Rotated: in.Rotate,
				LastRotated: last, NextRotation: last.Add(RotationInterval), Version: rec.Version(), Took: time.Since(started)}, nil
		}
	}
	if rec.Pending() {
		s.log.WarnContext(ctx, "recover: dropping a change left pending at the lost VPS", "tenant_id", in.TenantID, "purpose", rec.PendingPurpose)
		rec.clearPending()
	}
	storedURL, err := s.storedMailUURL(ctx, in.TenantID)
	if err != nil {
		return RecoverResult{}, err
	}
	c := endpointChange{oldSMTP: rec.SMTPAddr, newSMTP: in.SMTPAddr, oldURL: storedURL, newURL: in.MailUAPIURL, token: in.MailUAPIToken, webmailURL: in.WebmailURL}
	if err := s.checkEndpointHosts(rec.domain(), c); err != nil {
		return RecoverResult{}, err
	}
	if !in.Rotate {
		if rec.CurrentCompromised != "" {
			return RecoverResult{}, fmt.Errorf("%w (or recover with rotate)", compromisedError(in.TenantID, rec))
		}
		if c.password, err = s.open(ctx, in.TenantID, passwordField, rec.Password, rec.DataKey); err != nil {
			return RecoverResult{}, err
		}
	}
	if err := s.changeEndpoints(ctx, in.TenantID, rec, rec.Username, c, ev); err != nil {
		return RecoverResult{}, err
	}
	took := time.Since(started)
	s.log.InfoContext(ctx, "credential recovered on a new MailU", "tenant_id", in.TenantID, "rotated", in.Rotate, "took_ms", took.Milliseconds())
	last := rec.LastRotatedTime()
	return RecoverResult{TenantID: in.TenantID, Username: rec.Username, WebmailURL: rec.WebmailURL, SMTPAddr: rec.SMTPAddr, Rotated: in.Rotate,
		LastRotated: last, NextRotation: last.Add(RotationInterval), Version: rec.Version(), Took: took}, nil
}

// pendingRecoveryHeld says whether rec holds a recovery to in's MailU
// whose password that MailU already holds (its hash says so).
func (s *Service) pendingRecoveryHeld(ctx context.Context, in RecoverInput, rec *Record) bool {
	if !rec.Pending() || rec.PendingPurpose != PurposeEndpoint || rec.PendingSMTPAddr != in.SMTPAddr || rec.PendingMailUURL != in.MailUAPIURL {
		return false
	}
	pw, err := s.open(ctx, in.TenantID, passwordField, rec.PendingPassword, rec.PendingDataKey)
	if err != nil {
		return false
	}
	held, err := s.holds(ctx, s.cfg.DialMailU(in.MailUAPIURL, in.MailUAPIToken), rec.PendingUsername, pw)
	return err == nil && held
}
