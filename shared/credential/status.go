package credential

import "time"

// Status is a credential's place in the rotation cycle, from the status
// index.
type Status struct {
	TenantID    string
	LastRotated time.Time // zero when unknown
	State       string    // MetaState, "" when unknown
	NoticeFor   string
	Compromised bool
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
