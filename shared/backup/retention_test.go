package backup_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"smtp-vault/shared/backup"
)

// TestRetentionOver400Days runs a nightly backup (and an extra one every
// fifth afternoon) for 400 simulated days, applying Retain after each as
// the backup run does, and checks that exactly the newest backup of each
// of the last 30 days and of each of the last 12 months remain.
func TestRetentionOver400Days(t *testing.T) {
	start := time.Date(2025, 11, 17, 0, 0, 0, 0, time.UTC)
	var kept, all []backup.Info
	var now time.Time
	for day := range 400 {
		times := []time.Time{start.AddDate(0, 0, day).Add(2 * time.Hour)}
		if day%5 == 0 {
			times = append(times, start.AddDate(0, 0, day).Add(14*time.Hour+30*time.Minute))
		}
		for _, at := range times {
			now = at
			b := backup.Info{Name: fmt.Sprintf("b-%s", at.Format(time.RFC3339)), Time: at}
			all = append(all, b)
			var drop []backup.Info
			kept, drop = backup.Retain(append(kept, b), now)
			for _, d := range drop {
				if d.Name == b.Name {
					t.Fatalf("day %d: the backup just taken was dropped", day)
				}
			}
		}
	}

	// What must remain, counted from the full history.
	want := map[string]bool{}
	newest := func(match func(time.Time) bool) {
		var best *backup.Info
		for i := range all {
			if match(all[i].Time) && (best == nil || all[i].Time.After(best.Time)) {
				best = &all[i]
			}
		}
		if best != nil {
			want[best.Name] = true
		}
	}
	for d := range 30 {
		y, m, dd := now.AddDate(0, 0, -d).Date()
		newest(func(t time.Time) bool { ty, tm, td := t.Date(); return ty == y && tm == m && td == dd })
	}
	for mo := range 12 {
		first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -mo, 0)
		newest(func(t time.Time) bool { return t.Year() == first.Year() && t.Month() == first.Month() })
	}
	var got []string
	for _, b := range kept {
		got = append(got, b.Name)
	}
	var wantNames []string
	for n := range want {
		wantNames = append(wantNames, n)
	}
	slices.Sort(got)
	slices.Sort(wantNames)
	if !slices.Equal(got, wantNames) {
		t.Fatalf("after 400 days (now %s) kept %d:\n%v\nwant %d:\n%v", now, len(got), got, len(wantNames), wantNames)
	}
	// 30 days span this month and the one before: 30 + 10 other months.
	if len(got) != 40 {
		t.Fatalf("kept %d backups, want 40 (30 days + 10 earlier months)", len(got))
	}
}

func TestRetainCases(t *testing.T) {
	now := time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)
	at := func(s string) backup.Info {
		tm, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return backup.Info{Name: s, Time: tm}
	}
	cases := []struct {
		name string
		in   []string
		drop []string
	}{
		{"nothing", nil, nil},
		{"two on one day: the older goes", []string{"2026-11-20T02:00:00Z", "2026-11-20T14:00:00Z"}, []string{"2026-11-20T02:00:00Z"}},
		{"31 days ago, newest of its month: kept", []string{"2026-10-31T02:00:00Z", "2026-10-30T02:00:00Z"}, []string{"2026-10-30T02:00:00Z"}},
		{"12 months ago: dropped, 11 months ago: kept", []string{"2025-12-31T02:00:00Z", "2026-01-01T02:00:00Z"}, []string{"2025-12-31T02:00:00Z"}},
		{"in the future: kept", []string{"2026-12-05T02:00:00Z"}, nil},
		{"first day of the window: its newest kept, the day before not", []string{"2026-11-02T00:00:00Z", "2026-11-02T01:00:00Z", "2026-11-01T23:59:59Z"}, []string{"2026-11-01T23:59:59Z", "2026-11-02T00:00:00Z"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var in []backup.Info
			for _, s := range c.in {
				in = append(in, at(s))
			}
			_, drop := backup.Retain(in, now)
			var got []string
			for _, d := range drop {
				got = append(got, d.Name)
			}
			slices.Sort(got)
			if !slices.Equal(got, c.drop) {
				t.Fatalf("dropped %v, want %v", got, c.drop)
			}
		})
	}
}
