package credential_test

import (
	"testing"
	"time"

	"smtp-vault/shared/credential"
)

func TestStatusClassAndDaysUntilDue(t *testing.T) {
	last := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC)
	cases := []struct {
		name        string
		at          time.Duration // after last
		compromised bool
		class       string
		days        int
	}{
		{"fresh", 0, false, credential.ClassOK, 180},
		{"day 172", 172 * day, false, credential.ClassOK, 8},
		{"a second before day 173", 173*day - time.Second, false, credential.ClassOK, 8},
		{"day 173", 173 * day, false, credential.ClassDueSoon, 7},
		{"day 179", 179 * day, false, credential.ClassDueSoon, 1},
		{"a second before day 180", 180*day - time.Second, false, credential.ClassDueSoon, 1},
		{"day 180", 180 * day, false, credential.ClassOverdue, 0},
		{"day 181 and a bit", 181*day + time.Hour, false, credential.ClassOverdue, -1},
		{"compromised wins", 10 * day, true, credential.ClassCompromised, 170},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := credential.Status{LastRotated: last, Compromised: c.compromised}
			now := last.Add(c.at)
			if got := s.Class(now); got != c.class {
				t.Errorf("class %q, want %q", got, c.class)
			}
			if got := s.DaysUntilDue(now); got != c.days {
				t.Errorf("days until due %d, want %d", got, c.days)
			}
			// The sweep and rotate-overdue ask Overdue and DueSoon; they
			// agree with the overview's class whatever the marks.
			if got, want := s.Overdue(now), c.at >= 180*day; got != want {
				t.Errorf("overdue %v, want %v", got, want)
			}
			if got, want := s.DueSoon(now), c.at >= 173*day && c.at < 180*day; got != want {
				t.Errorf("due soon %v, want %v", got, want)
			}
		})
	}
	// Unknown age (still being created, metadata lost): listed as
	// overdue for attention, but neither overdue nor due soon for the
	// sweep (it resumes such a credential) and rotate-overdue.
	unknown := credential.Status{}
	if unknown.Class(last) != credential.ClassOverdue || unknown.Overdue(last) || unknown.DueSoon(last) {
		t.Fatalf("unknown age: class %q, overdue %v, due soon %v", unknown.Class(last), unknown.Overdue(last), unknown.DueSoon(last))
	}
}
