package credential

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"time"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/mailu"
)

// StoreInput is what the provisioning flow of a new tenant hands over.
type StoreInput struct {
	TenantID   string `json:"tenant_id"`
	Domain     string `json:"domain"`
	WebmailURL string `json:"webmail_url"`
	// How to reach the tenant's MailU: its admin API and SMTP submission.
	MailUAPIURL string `json:"mailu_api_url"`
	SMTPAddr    string `json:"smtp_addr"`
	// MailUAPIToken is needed the first time; it is stored in Vault and may
	// be left out afterwards.
	MailUAPIToken string `json:"mailu_api_token,omitempty"`
}

// StoreResult describes the stored credential; it never holds the password.
type StoreResult struct {
	TenantID     string    `json:"tenant_id"`
	Username     string    `json:"username"`
	WebmailURL   string    `json:"webmail_url"`
	CreatedAt    time.Time `json:"created_at"`
	LastRotated  time.Time `json:"last_rotated"`
	NextRotation time.Time `json:"next_rotation"`
	// Action is created, replaced (a new password because the stored one no
	// longer logged in), updated (non-secret fields changed) or unchanged.
	Action  string `json:"action"`
	Version int    `json:"version"`
}

var domainPattern = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)

// Validate checks the input before anything is called.
func (in StoreInput) Validate() error {
	if err := ValidateTenantID(in.TenantID); err != nil {
		return err
	}
	if len(in.Domain) > 253 || !domainPattern.MatchString(in.Domain) {
		return fmt.Errorf("%w: domain must be a lowercase DNS name", ErrInvalidInput)
	}
	if err := checkURL("webmail_url", in.WebmailURL, false); err != nil {
		return err
	}
	if err := checkURL("mailu_api_url", in.MailUAPIURL, true); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(in.SMTPAddr)
	if err != nil || host == "" || port == "" {
		return fmt.Errorf("%w: smtp_addr must be host:port", ErrInvalidInput)
	}
	if len(in.MailUAPIToken) > 512 || strings.ContainsAny(in.MailUAPIToken, " \t\r\n") {
		return fmt.Errorf("%w: mailu_api_token must be at most 512 characters without whitespace", ErrInvalidInput)
	}
	return nil
}

// checkURL accepts https URLs; plain http only for a loopback host when
// allowLoopbackHTTP (the local MailU stand-in).
func checkURL(name, raw string, allowLoopbackHTTP bool) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil || len(raw) > 2048 {
		return fmt.Errorf("%w: %s must be an absolute https URL", ErrInvalidInput, name)
	}
	switch {
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && allowLoopbackHTTP && mailu.IsLoopback(u.Hostname()):
		return nil
	}
	return fmt.Errorf("%w: %s must be an absolute https URL", ErrInvalidInput, name)
}

// Store makes Vault and the tenant's MailU agree on an admin credential:
// the first time it generates one; later runs keep a password that still
// logs in (updating non-secret fields) and replace one that does not. Any
// change an earlier run left half-done is finished or undone first, so
// re-running Store is always safe.
func (s *Service) Store(ctx context.Context, in StoreInput, actor Actor) (StoreResult, error) {
	if err := in.Validate(); err != nil {
		return StoreResult{}, err
	}
	release, err := s.lock(ctx, in.TenantID, PurposeStore)
	if err != nil {
		return StoreResult{}, err
	}
	defer release()

	username := "admin@" + in.Domain
	ev := audit.Event{Event: audit.CredentialsStored, UserID: actor.UserID, IP: actor.IP, UserAgent: actor.UserAgent}

	rec, err := s.readRecord(ctx, in.TenantID)
	if errors.Is(err, ErrNotFound) {
		rec, err = &Record{}, nil
	}
	if err != nil {
		return StoreResult{}, err
	}
	// The domain decides which hosts the tenant's endpoints may move to
	// (checkEndpointHosts): a request naming another domain would pick
	// its own allow-list. A stored tenant keeps its domain.
	if d := rec.domain(); d != "" && d != in.Domain {
		return StoreResult{}, fmt.Errorf("%w: domain: tenant %s is stored for %s; store never changes a tenant's domain", ErrInvalidInput, in.TenantID, d)
	}
	fresh := rec.Version() == 0
	storedURL, err := s.storedMailUURL(ctx, in.TenantID)
	if err != nil {
		return StoreResult{}, err
	}
	var conn *mailuConn // the MailU connection, once saved
	switch {
	case rec.Pending() && rec.Password == "" && (rec.SMTPAddr != in.SMTPAddr || storedURL != in.MailUAPIURL):
		// A first store that never finished, retried at other endpoints:
		// there is no current password to protect, and createSecret below
		// replaces the abandoned pending one.
	case rec.Pending():
		// Finish or undo what an earlier run left; a rotation's change is
		// audited as a rotation. A new token for the same MailU is saved
		// first, so that the resumed change can use it.
		if !s.movesEndpoints(rec, storedURL, in) {
			c, err := s.saveMailUConn(ctx, in)
			if err != nil {
				return StoreResult{}, err
			}
			conn = &c
		}
		rev := ev
		if rec.PendingPurpose == PurposeRotate {
			rev.Event, rev.Details = audit.CredentialsRotated, map[string]any{"trigger": "store"}
		}
		if _, err := s.resume(ctx, in.TenantID, rec, &rev); err != nil {
			return StoreResult{}, err
		}
		if storedURL, err = s.storedMailUURL(ctx, in.TenantID); err != nil {
			return StoreResult{}, err
		}
	}
	if s.movesEndpoints(rec, storedURL, in) {
		return s.storeEndpoints(ctx, in, rec, storedURL, username, ev)
	}
	if conn == nil {
		c, err := s.saveMailUConn(ctx, in)
		if err != nil {
			return StoreResult{}, err
		}
		conn = &c
	}
	admin := s.cfg.DialMailU(conn.apiURL, conn.token)
	fieldsChanged := rec.WebmailURL != in.WebmailURL || rec.SMTPAddr != in.SMTPAddr || rec.MailUAPI != s.cfg.KVMount+"/"+MailUPath(in.TenantID)
	rec.WebmailURL = in.WebmailURL
	rec.SMTPAddr = in.SMTPAddr
	rec.MailUAPI = s.cfg.KVMount + "/" + MailUPath(in.TenantID)

	action := "unchanged"
	keep := false
	if rec.Password != "" && rec.Username == username {
		if keep, err = s.currentLogsIn(ctx, in.TenantID, rec); err != nil {
			return StoreResult{}, err
		}
	}
	switch {
	case keep && fieldsChanged:
		action = "updated"
		if err := s.cfg.Audit.Record(ctx, withTenant(ev, in.TenantID, action)); err != nil {
			return StoreResult{}, upstream("record "+ev.Event, err)
		}
		if err := s.writeRecord(ctx, in.TenantID, rec); err != nil {
			return StoreResult{}, err
		}
	case keep:
		// Nothing changes, but the request is still an action of an
		// admin on this credential: it is audited like the others, and
		// refused when it cannot be.
		if err := s.cfg.Audit.Record(ctx, withTenant(ev, in.TenantID, action)); err != nil {
			return StoreResult{}, upstream("record "+ev.Event, err)
		}
	default:
		action = "replaced"
		if fresh || rec.Password == "" {
			action = "created"
		}
		// A store that must change the password (new tenant, or MailU no
		// longer takes the stored one) is not held back by the rotation
		// cool-down: nobody can log in with the old password anyway.
		if _, err := s.runSteps(ctx, in.TenantID, rec, admin, username, PurposeStore, withTenant(ev, in.TenantID, action)); err != nil {
			return StoreResult{}, err
		}
	}
	s.log.InfoContext(ctx, "credential stored", "tenant_id", in.TenantID, "action", action, "kv_version", rec.Version())
	return s.storeResult(in.TenantID, rec, action), nil
}

func withTenant(ev audit.Event, tenantID, action string) audit.Event {
	ev.TenantID = tenantID
	ev.Details = map[string]any{"action": action}
	return ev
}

func (s *Service) storeResult(tenantID string, rec *Record, action string) StoreResult {
	created, _ := time.Parse(time.RFC3339, rec.CreatedAt)
	last := rec.LastRotatedTime()
	return StoreResult{
		TenantID:     tenantID,
		Username:     rec.Username,
		WebmailURL:   rec.WebmailURL,
		CreatedAt:    created,
		LastRotated:  last,
		NextRotation: last.Add(RotationInterval),
		Action:       action,
		Version:      rec.Version(),
	}
}

// currentLogsIn says whether MailU still accepts the current password.
func (s *Service) currentLogsIn(ctx context.Context, tenantID string, rec *Record) (bool, error) {
	pw, err := s.open(ctx, tenantID, passwordField, rec.Password, rec.DataKey)
	if err != nil {
		return false, err
	}
	err = s.cfg.VerifyLogin(ctx, rec.SMTPAddr, rec.Username, pw)
	switch {
	case err == nil:
		return true, nil
	case isAuthFailed(err):
		return false, nil
	default:
		return false, upstream("test the stored password", err)
	}
}

// domain is the tenant domain of the current credential (its username's),
// "" when there is none yet.
func (r *Record) domain() string {
	if r.Password == "" {
		return ""
	}
	return domainOf(r.Username)
}

// movesEndpoints says whether in moves a stored tenant to another SMTP
// address or MailU API URL.
func (s *Service) movesEndpoints(rec *Record, storedURL string, in StoreInput) bool {
	return rec.Password != "" && storedURL != "" && (rec.SMTPAddr != in.SMTPAddr || storedURL != in.MailUAPIURL)
}

// storeEndpoints moves a stored tenant to the endpoints of in, with a
// fresh password set there (endpoint.go). A refused or failed move leaves
// the record and the MailU connection as they were.
func (s *Service) storeEndpoints(ctx context.Context, in StoreInput, rec *Record, storedURL, username string, ev audit.Event) (StoreResult, error) {
	c := endpointChange{oldSMTP: rec.SMTPAddr, newSMTP: in.SMTPAddr, oldURL: storedURL, newURL: in.MailUAPIURL, token: in.MailUAPIToken, webmailURL: in.WebmailURL}
	if c.token == "" {
		return StoreResult{}, fmt.Errorf("%w: %w; the stored token is only ever sent to %s", ErrInvalidInput, ErrTokenRequired, urlHost(storedURL))
	}
	if err := s.checkEndpointHosts(rec.domain(), c); err != nil {
		return StoreResult{}, err
	}
	if err := s.changeEndpoints(ctx, in.TenantID, rec, username, c, withTenant(ev, in.TenantID, "endpoint_changed")); err != nil {
		return StoreResult{}, err
	}
	s.log.InfoContext(ctx, "credential moved to new endpoints", "tenant_id", in.TenantID, "kv_version", rec.Version())
	return s.storeResult(in.TenantID, rec, "endpoint_changed"), nil
}
