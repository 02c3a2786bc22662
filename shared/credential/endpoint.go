package credential

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/vault"
)

// A stored secret is only ever presented to the endpoint it was stored
// for. Moving a tenant to a new SMTP address or MailU API URL therefore
// needs the new API token in the same request, never tests the old
// password against the new host, and sets a fresh password there through
// the four steps, with the new endpoints recorded as pending beside it:
// they replace the current ones only when that password is promoted, and
// a change that fails leaves the record as it was.

var (
	// ErrTokenRequired refuses an endpoint change without the new MailU
	// API token.
	ErrTokenRequired = codedError("mailu_api_token is required to change mailu_api_url or smtp_addr", "mailu_api_token_required")
	// ErrEndpointNotAllowed refuses a new endpoint outside the tenant's
	// domain that Config.AllowedHosts does not name.
	ErrEndpointNotAllowed = codedError("endpoint not allowed", "endpoint_not_allowed")
)

// endpointChange is a move of a tenant to new endpoints.
type endpointChange struct {
	oldSMTP, newSMTP string
	oldURL, newURL   string
	token            string
	webmailURL       string // the tenant's webmail after the move; "" keeps it
	// password, when set, is the password to set at the new endpoints (a
	// recovery keeping the stored one); otherwise a fresh one is made.
	password string
}

// checkEndpointHosts refuses new endpoints whose hosts are neither the
// tenant's domain (or under it) nor named in Config.AllowedHosts.
func (s *Service) checkEndpointHosts(domain string, c endpointChange) error {
	u, err := url.Parse(c.newURL)
	if err != nil {
		return fmt.Errorf("%w: mailu_api_url is not a URL", ErrInvalidInput)
	}
	smtpHost := hostOf(c.newSMTP)
	if smtpHost == "" {
		return fmt.Errorf("%w: %s", ErrInvalidInput, smtpAddrRule)
	}
	for _, h := range []string{u.Hostname(), smtpHost} {
		h = strings.ToLower(strings.TrimSuffix(h, "."))
		if h == domain || strings.HasSuffix(h, "."+domain) || slices.Contains(s.cfg.AllowedHosts, h) {
			continue
		}
		return fmt.Errorf("%w: %s is not under the tenant's domain %s and not in the allowed hosts", ErrEndpointNotAllowed, h, domain)
	}
	return nil
}

// changeEndpoints moves a tenant whose record holds no pending change to
// the endpoints of c with a fresh password: createSecret records the
// password and the new endpoints as pending, setSecret and testSecret run
// against the new MailU only, and finishSecret promotes all of it at once.
// When setting or testing fails, the pending change is dropped again, so
// the record is as it was; the old password keeps working at the old
// endpoints throughout.
func (s *Service) changeEndpoints(ctx context.Context, tenantID string, rec *Record, username string, c endpointChange, ev audit.Event) error {
	tokenSealed, tokenKey, err := s.seal(ctx, tenantID, mailuTokenField, c.token)
	if err != nil {
		return err
	}
	before := *rec
	if c.webmailURL != "" {
		rec.WebmailURL = c.webmailURL
	}
	rec.MailUAPI = s.cfg.KVMount + "/" + MailUPath(tenantID)
	rec.PendingSMTPAddr, rec.PendingMailUURL = c.newSMTP, c.newURL
	rec.PendingMailUToken, rec.PendingMailUTokenKey = tokenSealed, tokenKey
	pw := c.password
	if pw != "" {
		err = s.recordPending(ctx, tenantID, rec, username, PurposeEndpoint, pw)
	} else {
		pw, err = s.createSecret(ctx, tenantID, rec, username, PurposeEndpoint)
	}
	if err != nil {
		*rec = before
		return err
	}
	admin := s.cfg.DialMailU(c.newURL, c.token)
	err = s.recordChangeStarted(ctx, tenantID, rec, ev)
	if err == nil {
		err = s.setSecret(ctx, admin, username, pw)
	}
	if err == nil {
		err = s.testSecret(ctx, admin, c.newSMTP, username, pw)
	}
	if err == nil {
		err = s.recordEndpointChanged(ctx, tenantID, c, ev)
	}
	if errors.Is(err, ErrLoginRefused) {
		// The new MailU holds the password but refuses its login for now:
		// the change stays pending, and resume finishes it there.
		return err
	}
	if err != nil {
		s.restore(ctx, tenantID, rec, before)
		return err
	}
	return s.finishSecret(ctx, tenantID, rec, ev)
}

// recordEndpointChanged audits the move (smtp_endpoint_changed, warning),
// failing closed, before anything is promoted.
func (s *Service) recordEndpointChanged(ctx context.Context, tenantID string, c endpointChange, ev audit.Event) error {
	err := s.cfg.Audit.Record(ctx, audit.Event{
		Event:     audit.EndpointChanged,
		TenantID:  tenantID,
		UserID:    ev.UserID,
		IP:        ev.IP,
		UserAgent: ev.UserAgent,
		Severity:  audit.Warning,
		Details: map[string]any{
			"old_smtp_host": hostOf(c.oldSMTP), "new_smtp_host": hostOf(c.newSMTP),
			"old_mailu_api_host": urlHost(c.oldURL), "new_mailu_api_host": urlHost(c.newURL),
		},
	})
	return upstream("record "+audit.EndpointChanged, err)
}

// restore writes back the record as it was before a change that MailU
// never completed (a new KV version with the old data). A failure is
// logged: the next run's resume rolls the change back then.
func (s *Service) restore(ctx context.Context, tenantID string, rec *Record, before Record) {
	before.version = rec.version
	if err := s.writeRecord(ctx, tenantID, &before); err != nil {
		s.log.WarnContext(ctx, "undo a failed change; the next run rolls it back", "tenant_id", tenantID, "error", err)
		return
	}
	*rec = before
	s.markState(ctx, tenantID, rec, stateOf(rec))
}

// promoteEndpoints writes the pending MailU connection of an endpoint
// change as the tenant's connection; the record's SMTP address is promoted
// with the password by finishSecret. Writing the same connection again is
// harmless, so a resumed finish repeats it safely.
func (s *Service) promoteEndpoints(ctx context.Context, tenantID string, rec *Record) error {
	version := 0
	cur, err := s.cfg.Vault.Read(ctx, MailUPath(tenantID))
	switch {
	case err == nil:
		version = cur.Version
	case !errors.Is(err, vault.ErrNotFound):
		return upstream("read the MailU connection", err)
	}
	if _, err := s.cfg.Vault.WriteCAS(ctx, MailUPath(tenantID), map[string]string{
		mailuURLField:   rec.PendingMailUURL,
		mailuTokenField: rec.PendingMailUToken,
		mailuKeyField:   rec.PendingMailUTokenKey,
		"updated_at":    FormatTime(s.Now()),
	}, version); err != nil {
		return upstream("write the MailU connection", err)
	}
	rec.SMTPAddr = rec.PendingSMTPAddr
	return nil
}

// pendingMailUAdmin is the MailU admin API of a pending endpoint change.
func (s *Service) pendingMailUAdmin(ctx context.Context, tenantID string, rec *Record) (MailU, error) {
	token, err := s.open(ctx, tenantID, mailuTokenField, rec.PendingMailUToken, rec.PendingMailUTokenKey)
	if err != nil {
		return nil, err
	}
	return s.cfg.DialMailU(rec.PendingMailUURL, token), nil
}

// smtpAddrRule is what an smtp_addr must be (mailu.ParseSMTPAddr).
const smtpAddrRule = "smtp_addr must be host:port, smtps://host:port (implicit TLS, MailU's 465) or smtp://host:port (STARTTLS, 587); a bare host:port is STARTTLS except on port 465"

func hostOf(addr string) string {
	a, err := mailu.ParseSMTPAddr(addr)
	if err != nil {
		return ""
	}
	return a.Host
}

func urlHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Hostname()
}

// pendingChange describes the endpoint change rec holds, for its audit
// event; the old MailU URL is read without decrypting anything.
func (s *Service) pendingChange(ctx context.Context, tenantID string, rec *Record) endpointChange {
	c := endpointChange{oldSMTP: rec.SMTPAddr, newSMTP: rec.PendingSMTPAddr, newURL: rec.PendingMailUURL}
	if cur, err := s.cfg.Vault.Read(ctx, MailUPath(tenantID)); err == nil {
		c.oldURL = cur.Data[mailuURLField]
	}
	return c
}
