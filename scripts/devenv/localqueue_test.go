package devenv_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/credential"
)

// TestLocalQueueRedeliversThenDrops checks the local stand-in for
// RotateQueue: batches of at most ten, failed jobs delivered again, and a
// job failing MaxReceives times dropped as SQS moves it to the DLQ.
func TestLocalQueueRedeliversThenDrops(t *testing.T) {
	q := devenv.NewLocalQueue(slog.New(slog.NewTextHandler(io.Discard, nil)), func(j credential.Job) []any { return []any{"tenant_id", j.TenantID} })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	deliveries := map[string]int{}
	biggest := 0
	q.Start(ctx, 2, func(_ context.Context, batch []credential.Job) ([]int, error) {
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
	jobs := []credential.Job{{TenantID: "always-fails"}, {TenantID: "fails-once"}}
	for range 23 {
		jobs = append(jobs, credential.Job{TenantID: "ok"})
	}
	wctx, wcancel := context.WithTimeout(ctx, time.Minute)
	defer wcancel()
	for _, batch := range [][]credential.Job{jobs, {{TenantID: "batch-error"}}} {
		if _, err := q.Send(ctx, batch); err != nil {
			t.Fatal(err)
		}
		if err := q.Wait(wctx); err != nil {
			t.Fatal(err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if deliveries["always-fails"] != devenv.MaxReceives || deliveries["fails-once"] != 2 || deliveries["ok"] != 23 || deliveries["batch-error"] != 2 {
		t.Fatalf("deliveries %v", deliveries)
	}
	if q.Dead() != 1 || biggest > 10 {
		t.Fatalf("dead %d (want 1), biggest batch %d (at most 10)", q.Dead(), biggest)
	}
}
