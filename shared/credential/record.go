package credential

import "time"

// RotationPolicy is the only policy the platform has: rotate every 180 days.
const (
	RotationPolicy   = "180_days"
	RotationInterval = 180 * 24 * time.Hour
)

// record is the KV v2 data at smtp/<tenant>/admin. password and
// pending_password hold sealed values (base64 IV||tag||ct) under the data
// keys next to them; nothing here is plaintext.
type record struct {
	version int // KV version this was read at; 0 when not yet written

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
}

var recordFields = []struct {
	name string
	get  func(*record) *string
}{
	{"username", func(r *record) *string { return &r.Username }},
	{"password", func(r *record) *string { return &r.Password }},
	{"data_key", func(r *record) *string { return &r.DataKey }},
	{"webmail_url", func(r *record) *string { return &r.WebmailURL }},
	{"created_at", func(r *record) *string { return &r.CreatedAt }},
	{"last_rotated", func(r *record) *string { return &r.LastRotated }},
	{"rotation_policy", func(r *record) *string { return &r.RotationPolicy }},
	{"smtp_addr", func(r *record) *string { return &r.SMTPAddr }},
	{"mailu_api", func(r *record) *string { return &r.MailUAPI }},
	{"pending_username", func(r *record) *string { return &r.PendingUsername }},
	{"pending_password", func(r *record) *string { return &r.PendingPassword }},
	{"pending_data_key", func(r *record) *string { return &r.PendingDataKey }},
	{"pending_since", func(r *record) *string { return &r.PendingSince }},
}

func recordFromData(data map[string]string, version int) *record {
	r := &record{version: version}
	for _, f := range recordFields {
		*f.get(r) = data[f.name]
	}
	return r
}

// data renders the record for a KV write; empty fields are left out.
func (r *record) data() map[string]string {
	out := make(map[string]string, len(recordFields))
	for _, f := range recordFields {
		if v := *f.get(r); v != "" {
			out[f.name] = v
		}
	}
	return out
}

func (r *record) pending() bool { return r.PendingPassword != "" }

func (r *record) clearPending() {
	r.PendingUsername, r.PendingPassword, r.PendingDataKey, r.PendingSince = "", "", "", ""
}

// lastRotated parses last_rotated; the zero time when absent or malformed.
func (r *record) lastRotated() time.Time {
	t, _ := time.Parse(time.RFC3339, r.LastRotated)
	return t
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }
