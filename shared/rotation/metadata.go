package rotation

import (
	"context"
	"time"
)

// Keys of a credential's KV custom_metadata. They let the sweep and the
// overview decide without reading, let alone decrypting, any secret. The KV
// data stays authoritative: custom_metadata has no check-and-set in Vault,
// so it is a cache that every change rewrites and that a run finding it
// stale (a worker sent by the sweep) repairs from the data.
const (
	MetaLastRotated = "last_rotated"   // RFC 3339, as in the data
	MetaState       = "rotation_state" // StateCurrent or StatePending
	// MetaNoticeFor is the last_rotated of the cycle whose day-173 notice
	// went out, so each cycle gets one notice.
	MetaNoticeFor = "notice_sent_for"
	// MetaCompromised is set by the emergency reset (SPEC section 6) to
	// the incident; any non-empty value shows the tenant as compromised.
	MetaCompromised = "compromised"
)

// Values of MetaState.
const (
	StateCurrent = "current"
	StatePending = "pending"
)

// stateOf is the metadata that mirrors rec.
func stateOf(rec *Record) map[string]string {
	md := map[string]string{MetaState: StateCurrent, MetaLastRotated: rec.LastRotated}
	if rec.Pending() {
		md[MetaState] = StatePending
	}
	if rec.LastRotated == "" {
		delete(md, MetaLastRotated)
	}
	return md
}

// markState updates custom_metadata. The KV data is authoritative, so a
// failure here is logged and corrected by the next change or sweep.
func (e *Engine) markState(ctx context.Context, tenantID string, md map[string]string) {
	if err := e.cfg.Vault.PatchCustomMetadata(ctx, AdminPath(tenantID), md); err != nil {
		e.log.WarnContext(ctx, "update credential metadata", "tenant_id", tenantID, "error", err)
	}
}

// Status is a credential's place in the rotation cycle, from metadata.
type Status struct {
	TenantID    string
	LastRotated time.Time // zero when unknown
	State       string    // MetaState, "" when unknown
	NoticeFor   string
	Compromised bool
	// Err is why the metadata could not be read; the rest is then zero.
	Err error
}

// Due is when the credential must be rotated.
func (s Status) Due() time.Time { return s.LastRotated.Add(RotationInterval) }

// DaysUntilDue counts the days from now to the due date, a started day
// counting as one: zero or less exactly when the credential is overdue.
func (s Status) DaysUntilDue(now time.Time) int {
	d := s.Due().Sub(now)
	days := int(d / (24 * time.Hour))
	if d > 0 && d%(24*time.Hour) != 0 {
		days++
	}
	return days
}

// Overdue reports whether the credential is at or past its due date. One
// whose last rotation is unknown (still being created, or its metadata
// lost) is not overdue: the sweep resumes it instead of rotating it.
// The sweep, rotate-overdue and the overview all decide with this.
func (s Status) Overdue(now time.Time) bool {
	return !s.LastRotated.IsZero() && !now.Before(s.Due())
}

// DueSoon reports whether the due date is less than NoticeAhead away: the
// window of the rotation notice.
func (s Status) DueSoon(now time.Time) bool {
	return !s.LastRotated.IsZero() && !s.Overdue(now) && !now.Before(s.Due().Add(-NoticeAhead))
}

// Class is the overview's filter value of a credential. A credential of
// unknown age is listed as overdue: like an overdue one, it needs
// someone to look at it.
func (s Status) Class(now time.Time) string {
	switch {
	case s.Compromised:
		return ClassCompromised
	case s.LastRotated.IsZero(), s.Overdue(now):
		return ClassOverdue
	case s.DueSoon(now):
		return ClassDueSoon
	default:
		return ClassOK
	}
}

// Classes of Status.Class.
const (
	ClassOverdue     = "overdue"
	ClassDueSoon     = "due_soon"
	ClassOK          = "ok"
	ClassCompromised = "compromised"
)

func statusFrom(tenantID string, md map[string]string) Status {
	last, _ := time.Parse(time.RFC3339, md[MetaLastRotated])
	return Status{
		TenantID:    tenantID,
		LastRotated: last,
		State:       md[MetaState],
		NoticeFor:   md[MetaNoticeFor],
		Compromised: md[MetaCompromised] != "",
	}
}
