package rotation_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"smtp-vault/shared/rotation"
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
		{"fresh", 0, false, rotation.ClassOK, 180},
		{"day 172", 172 * day, false, rotation.ClassOK, 8},
		{"a second before day 173", 173*day - time.Second, false, rotation.ClassOK, 8},
		{"day 173", 173 * day, false, rotation.ClassDueSoon, 7},
		{"day 179", 179 * day, false, rotation.ClassDueSoon, 1},
		{"a second before day 180", 180*day - time.Second, false, rotation.ClassDueSoon, 1},
		{"day 180", 180 * day, false, rotation.ClassOverdue, 0},
		{"day 181 and a bit", 181*day + time.Hour, false, rotation.ClassOverdue, -1},
		{"compromised wins", 10 * day, true, rotation.ClassCompromised, 170},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := rotation.Status{LastRotated: last, Compromised: c.compromised}
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
	unknown := rotation.Status{}
	if unknown.Class(last) != rotation.ClassOverdue || unknown.Overdue(last) || unknown.DueSoon(last) {
		t.Fatalf("unknown age: class %q, overdue %v, due soon %v", unknown.Class(last), unknown.Overdue(last), unknown.DueSoon(last))
	}
}

// TestLocalQueueRedeliversThenDrops checks the local stand-in for
// RotateQueue: batches of at most ten, failed jobs delivered again, and a
// job failing MaxReceives times dropped as SQS moves it to the DLQ.
func TestLocalQueueRedeliversThenDrops(t *testing.T) {
	q := rotation.NewLocalQueue(slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	deliveries := map[string]int{}
	biggest := 0
	q.Start(ctx, 2, func(_ context.Context, batch []rotation.Job) ([]int, error) {
		mu.Lock()
		defer mu.Unlock()
		biggest = max(biggest, len(batch))
		var failed []int
		for i, j := range batch {
			deliveries[j.TenantID]++
			switch {
			case j.TenantID == "always-fails":
				failed = append(failed, i)
			case j.TenantID == "fails-once" && deliveries[j.TenantID] == 1:
				failed = append(failed, i)
			}
		}
		if len(batch) == 1 && batch[0].TenantID == "batch-error" && deliveries["batch-error"] == 1 {
			return nil, errors.New("the function failed")
		}
		return failed, nil
	})
	jobs := []rotation.Job{{TenantID: "always-fails"}, {TenantID: "fails-once"}}
	for range 23 {
		jobs = append(jobs, rotation.Job{TenantID: "ok"})
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	for _, batch := range [][]rotation.Job{jobs, {{TenantID: "batch-error"}}} {
		if _, err := q.Send(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := q.Wait(wctx); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if deliveries["always-fails"] != rotation.MaxReceives || deliveries["fails-once"] != 2 || deliveries["ok"] != 23 || deliveries["batch-error"] != 2 {
		t.Fatalf("deliveries %v", deliveries)
	}
	if q.Dead() != 1 || biggest > 10 {
		t.Fatalf("dead %d (want 1), biggest batch %d (at most 10)", q.Dead(), biggest)
	}
}
