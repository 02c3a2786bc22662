package credential

import (
	"context"
	"errors"
	"fmt"
	"time"

	"smtp-vault/shared/vault"
)

// RotationPolicy is the only policy the platform has: rotate every 180 days.
const (
	RotationPolicy   = "180_days"
	RotationInterval = 180 * 24 * time.Hour
	// NoticeAhead is how long before the due date the notice goes out
	// (day 173 of 180).
	NoticeAhead = 7 * 24 * time.Hour
)

// Purposes of a change, recorded with its pending password so that a run
// resuming it writes the right audit event.
const (
	PurposeStore    = "store"
	PurposeRotate   = "rotate"
	PurposeEndpoint = "endpoint" // a store or recovery that moves the tenant to new endpoints
	PurposeReset    = "reset"    // an emergency reset
)

// Record is the KV v2 data at smtp/<tenant>/admin. password and
// pending_password hold sealed values (base64 IV||tag||ct) under the data
// keys next to them; nothing here is plaintext. The data is authoritative;
// custom_metadata (metadata.go) is a cache of it for the sweep.
type Record struct {
	version int // KV version this was read at; 0 when not yet written
	// index, when set, batches this change's status index writes (a
	// compromise response's chunk, indexbatch.go); indexMarked: its
	// pending mark is written and still stands.
	index       *indexBatch
	indexMarked bool
	// stateMarked: custom_metadata already says a change is pending (the
	// emergency reset's compromise mark says so in the same patch).
	stateMarked bool

	Username       string
	Password       string
	DataKey        string
	WebmailURL     string
	CreatedAt      string
	LastRotated    string
	RotationPolicy string
	SMTPAddr       string
	MailUAPI       string // KV path of the MailU admin API connection

	// A change in flight (SPEC section 6): the password that MailU may
	// already have, recorded before MailU is touched.
	PendingUsername string
	PendingPassword string
	PendingDataKey  string
	PendingSince    string
	PendingPurpose  string // PurposeStore, PurposeRotate or PurposeEndpoint
	// The last emergency reset, shown until the next normal rotation: the
	// incident, when, and the KV version it declared compromised.
	CompromisedIncident string
	CompromisedAt       string
	CompromisedVersion  string
	// ResetIncidents lists the incidents (comma-separated, newest last)
	// whose reset promoted a password, so one incident resets it once;
	// ResetResponse is the compromise response whose reset promoted the
	// current password, if any.
	ResetIncidents string
	ResetResponse  string
	// CurrentCompromised is the incident that declared the current
	// password compromised, until a new password is promoted: a reset
	// that failed and was rolled back leaves it set, and nothing serves or
	// redeploys that password.
	CurrentCompromised string
	// PendingResetResponse is the compromise response of a pending reset.
	PendingResetResponse string

	// An endpoint change in flight (PurposeEndpoint): the new SMTP address
	// and MailU connection, whose token is sealed as in the MailU record
	// (AAD <tenant>/api_token). They replace the current ones only when
	// the pending password is promoted.
	PendingSMTPAddr      string
	PendingMailUURL      string
	PendingMailUToken    string
	PendingMailUTokenKey string
}

var recordFields = []struct {
	name string
	get  func(*Record) *string
}{
	{"username", func(r *Record) *string { return &r.Username }},
	{"password", func(r *Record) *string { return &r.Password }},
	{"data_key", func(r *Record) *string { return &r.DataKey }},
	{"webmail_url", func(r *Record) *string { return &r.WebmailURL }},
	{"created_at", func(r *Record) *string { return &r.CreatedAt }},
	{"last_rotated", func(r *Record) *string { return &r.LastRotated }},
	{"rotation_policy", func(r *Record) *string { return &r.RotationPolicy }},
	{"smtp_addr", func(r *Record) *string { return &r.SMTPAddr }},
	{"mailu_api", func(r *Record) *string { return &r.MailUAPI }},
	{"pending_username", func(r *Record) *string { return &r.PendingUsername }},
	{"pending_password", func(r *Record) *string { return &r.PendingPassword }},
	{"pending_data_key", func(r *Record) *string { return &r.PendingDataKey }},
	{"pending_since", func(r *Record) *string { return &r.PendingSince }},
	{"pending_purpose", func(r *Record) *string { return &r.PendingPurpose }},
	{"compromised_incident", func(r *Record) *string { return &r.CompromisedIncident }},
	{"compromised_at", func(r *Record) *string { return &r.CompromisedAt }},
	{"compromised_version", func(r *Record) *string { return &r.CompromisedVersion }},
	{"reset_incidents", func(r *Record) *string { return &r.ResetIncidents }},
	{"reset_response", func(r *Record) *string { return &r.ResetResponse }},
	{"current_compromised", func(r *Record) *string { return &r.CurrentCompromised }},
	{"pending_reset_response", func(r *Record) *string { return &r.PendingResetResponse }},
	{"pending_smtp_addr", func(r *Record) *string { return &r.PendingSMTPAddr }},
	{"pending_mailu_api_url", func(r *Record) *string { return &r.PendingMailUURL }},
	{"pending_mailu_api_token", func(r *Record) *string { return &r.PendingMailUToken }},
	{"pending_mailu_data_key", func(r *Record) *string { return &r.PendingMailUTokenKey }},
}

func recordFromData(data map[string]string, version int) *Record {
	r := &Record{version: version}
	for _, f := range recordFields {
		*f.get(r) = data[f.name]
	}
	return r
}

// data renders the record for a KV write; empty fields are left out.
func (r *Record) data() map[string]string {
	out := make(map[string]string, len(recordFields))
	for _, f := range recordFields {
		if v := *f.get(r); v != "" {
			out[f.name] = v
		}
	}
	return out
}

// Version is the KV version the record was read or last written at; 0 for
// a record not written yet.
func (r *Record) Version() int { return r.version }

// Pending says whether a change is in flight.
func (r *Record) Pending() bool { return r.PendingPassword != "" }

func (r *Record) clearPending() {
	r.PendingUsername, r.PendingPassword, r.PendingDataKey, r.PendingSince, r.PendingPurpose, r.PendingResetResponse = "", "", "", "", "", ""
	r.PendingSMTPAddr, r.PendingMailUURL, r.PendingMailUToken, r.PendingMailUTokenKey = "", "", "", ""
}

// pendingSMTPAddr is where the pending password is set and tested: the
// new address of an endpoint change, the current one otherwise.
func (r *Record) pendingSMTPAddr() string {
	if r.PendingSMTPAddr != "" {
		return r.PendingSMTPAddr
	}
	return r.SMTPAddr
}

// LastRotatedTime parses last_rotated; the zero time when absent or
// malformed.
func (r *Record) LastRotatedTime() time.Time {
	t, _ := time.Parse(time.RFC3339, r.LastRotated)
	return t
}

// FormatTime is how times are written into records and metadata.
func FormatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// readRecord reads a tenant's admin record; ErrNotFound when there is none.
func (s *Service) readRecord(ctx context.Context, tenantID string) (*Record, error) {
	sec, err := s.cfg.Vault.Read(ctx, AdminPath(tenantID))
	if err != nil {
		if errors.Is(err, vault.ErrNotFound) {
			return nil, fmt.Errorf("%w: no credential for tenant %s", ErrNotFound, tenantID)
		}
		return nil, upstream("read the credential", err)
	}
	return recordFromData(sec.Data, sec.Version), nil
}

// writeRecord stores rec as the next KV version, with check-and-set on the
// version it was read at.
func (s *Service) writeRecord(ctx context.Context, tenantID string, rec *Record) error {
	v, err := s.cfg.Vault.WriteCAS(ctx, AdminPath(tenantID), rec.data(), rec.version)
	if err != nil {
		return upstream("write the credential", err)
	}
	rec.version = v
	return nil
}
