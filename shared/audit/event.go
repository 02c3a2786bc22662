// Package audit records who touched which credential, when and how, as one
// event type written to every configured sink. Recording fails closed: when
// any sink cannot take the event, Record returns an error and the caller
// must not hand out a secret or make the change.
package audit

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/google/uuid"
)

// Event names (SPEC section 7). Successful actions use these; refusals and
// failures use the names below them.
const (
	CredentialsStored         = "smtp_credentials_stored"
	CredentialsAccessed       = "smtp_credentials_accessed"
	CredentialsViewed         = "smtp_credentials_viewed"
	CredentialsCopied         = "smtp_credentials_copied"
	CredentialsRotated        = "smtp_credentials_rotated"
	CredentialsEmergencyReset = "smtp_credentials_emergency_reset"
	CredentialsRecovered      = "smtp_credentials_recovered"
	CompromiseResponse        = "credential_compromise_response"
	VaultRestoredFromBackup   = "vault_restored_from_backup"
	// VaultRestoreStarted: a verified backup is about to be sent to the
	// named target Vault. Written before anything is sent, failing closed.
	VaultRestoreStarted  = "vault_restore_started"
	CredentialsRewrapped = "smtp_credentials_rewrapped"
	// CredentialsChangeStarted: a new password is recorded as pending and
	// is about to be set in MailU (the four steps' setSecret). Written
	// before MailU is touched, failing closed, so no password changes in
	// MailU without a record.
	CredentialsChangeStarted = "smtp_credentials_change_started"
	// EndpointChanged: a tenant's SMTP address or MailU API URL changed
	// (store with the new API token); severity warning.
	EndpointChanged = "smtp_endpoint_changed"
	// BulkRotationRequested: an admin asked for every overdue credential
	// to be rotated (rotate-overdue). Platform chain; each rotation it
	// causes is audited on its tenant's chain.
	BulkRotationRequested = "smtp_credentials_bulk_rotation_requested"
	// OverviewViewed: an admin listed the credentials' rotation state
	// (usernames, webmail URLs, dates; no password). Platform chain.
	OverviewViewed = "smtp_credentials_overview_viewed"
	// AdminReauthenticated: a member of staff proved password and TOTP
	// again and received a re-auth token.
	AdminReauthenticated = "admin_reauthenticated"
	// ReauthLocked: too many failed re-authentications locked a user's
	// re-authentication. Critical: it is the alert.
	ReauthLocked         = "reauth_locked"
	AuthenticationFailed = "authentication_failed"
	AuthorizationDenied  = "authorization_denied"
	RequestRejected      = "request_rejected"
	ActionFailed         = "action_failed"
)

// Severity of an event.
type Severity string

const (
	Info     Severity = "info"
	Warning  Severity = "warning"
	Critical Severity = "critical"
)

// Event is the one audit record type. Details carries non-secret context
// only; Record refuses keys that name secrets.
type Event struct {
	ID        string         `json:"id"`
	Event     string         `json:"event"`
	TenantID  string         `json:"tenant_id,omitempty"`
	UserID    string         `json:"user_id,omitempty"`
	Timestamp time.Time      `json:"timestamp"`
	IP        string         `json:"ip,omitempty"`
	UserAgent string         `json:"user_agent,omitempty"`
	Severity  Severity       `json:"severity"`
	Details   map[string]any `json:"details,omitempty"`
}

// Sink stores events somewhere durable.
type Sink interface {
	Write(ctx context.Context, e Event) error
}

// ErrNotRecorded wraps every failure to record an event.
var ErrNotRecorded = errors.New("audit: event not recorded")

// secretKey matches detail keys that could only hold a secret. It is a
// guard against programming mistakes, not a content scanner.
var secretKey = regexp.MustCompile(`(?i)(password|secret|token|data_?key|private)`)

// Observer is shown every event the Recorder is given, while the sinks
// write it. It cannot refuse an event: what it does (the alert rules) never
// decides whether an action happens, and it must not fail a request.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// Recorder writes each event to all its sinks and shows it to its
// observers meanwhile.
type Recorder struct {
	sinks     []Sink
	observers []Observer
	now       func() time.Time
}

// AddObservers adds observers; call it before the first Record.
func (r *Recorder) AddObservers(obs ...Observer) { r.observers = append(r.observers, obs...) }

// NewRecorder returns a recorder over sinks. now may be nil (time.Now).
func NewRecorder(now func() time.Time, sinks ...Sink) *Recorder {
	if now == nil {
		now = time.Now
	}
	return &Recorder{sinks: sinks, now: now}
}

// Record fills in the id and timestamp and writes e to every sink, in
// order. The first failure stops it and is returned wrapped in
// ErrNotRecorded.
func (r *Recorder) Record(ctx context.Context, e Event) error {
	if e.Event == "" {
		return fmt.Errorf("%w: event name missing", ErrNotRecorded)
	}
	for k := range e.Details {
		if secretKey.MatchString(k) {
			return fmt.Errorf("%w: detail %q looks like a secret", ErrNotRecorded, k)
		}
	}
	if e.ID == "" {
		e.ID = uuid.NewString()
	}
	if e.Timestamp.IsZero() {
		e.Timestamp = r.now().UTC()
	}
	if e.Severity == "" {
		e.Severity = Info
	}
	// Observers run beside the sinks rather than after them, so their
	// round trips (the alert rules' state in Vault) add nothing to a
	// request's latency beyond the bucket write's. They therefore also see
	// an event whose recording then fails: an attempt, refused for it.
	// Record returns only once they are done (Lambda freezes a function
	// after it answers).
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, o := range r.observers {
		wg.Go(func() { o.Observe(ctx, e) })
	}
	for _, s := range r.sinks {
		if err := s.Write(ctx, e); err != nil {
			return fmt.Errorf("%w: %w", ErrNotRecorded, err)
		}
	}
	return nil
}
