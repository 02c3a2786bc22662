package devenv

import (
	"context"
	"log/slog"
	"sync"
)

// LocalQueue stands in for an SQS queue (RotateQueue, ResetQueue) and its
// event source mapping when running locally: jobs are handed in batches of up to ten to a consumer
// (the rotate function's handler, through an SQS event), and the ones it
// reports failed are delivered again, up to MaxReceives times, as with
// template.yaml's redrive policy; then they are dropped with an error log
// (the dead-letter queue).
type LocalQueue[T any] struct {
	mu      sync.Mutex
	cond    *sync.Cond
	jobs    []queued[T]
	busy    int
	consume func(ctx context.Context, batch []T) (failed []int, err error)
	log     *slog.Logger
	// describe names a job in the log (never a secret).
	describe func(T) []any
	// dead counts jobs dropped after MaxReceives deliveries.
	dead int
}

type queued[T any] struct {
	job      T
	receives int
}

// MaxReceives is RotateQueue's maxReceiveCount.
const MaxReceives = 5

// NewLocalQueue returns a queue with no consumer yet (see Start).
func NewLocalQueue[T any](log *slog.Logger, describe func(T) []any) *LocalQueue[T] {
	q := &LocalQueue[T]{log: log, describe: describe}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Start runs workers goroutines delivering batches to consume until ctx
// ends. consume returns the indexes of the jobs that failed.
func (q *LocalQueue[T]) Start(ctx context.Context, workers int, consume func(ctx context.Context, batch []T) (failed []int, err error)) {
	q.mu.Lock()
	q.consume = consume
	q.mu.Unlock()
	go func() {
		<-ctx.Done()
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	}()
	for range max(workers, 1) {
		go q.work(ctx)
	}
}

// Send queues jobs for delivery; it never refuses any.
func (q *LocalQueue[T]) Send(_ context.Context, jobs []T) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range jobs {
		q.jobs = append(q.jobs, queued[T]{job: j})
	}
	q.cond.Broadcast()
	return len(jobs), nil
}

// Wait blocks until every job sent so far has been delivered and handled
// (or dropped), or ctx ends.
func (q *LocalQueue[T]) Wait(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() {
		q.mu.Lock()
		q.cond.Broadcast()
		q.mu.Unlock()
	})
	defer stop()
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.jobs) > 0 || q.busy > 0 {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		q.cond.Wait()
	}
	return nil
}

// Dead is how many jobs were dropped after MaxReceives deliveries.
func (q *LocalQueue[T]) Dead() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dead
}

func (q *LocalQueue[T]) work(ctx context.Context) {
	for {
		q.mu.Lock()
		for len(q.jobs) == 0 && ctx.Err() == nil {
			q.cond.Wait()
		}
		if ctx.Err() != nil {
			q.mu.Unlock()
			return
		}
		n := min(10, len(q.jobs))
		batch := append([]queued[T](nil), q.jobs[:n]...)
		q.jobs = q.jobs[n:]
		q.busy++
		consume := q.consume
		q.mu.Unlock()

		jobs := make([]T, len(batch))
		for i := range batch {
			batch[i].receives++
			jobs[i] = batch[i].job
		}
		failed, err := consume(ctx, jobs)
		if err != nil {
			// The whole batch failed, as when the function errors.
			failed = failed[:0]
			for i := range batch {
				failed = append(failed, i)
			}
		}
		q.mu.Lock()
		for _, i := range failed {
			if i < 0 || i >= len(batch) {
				continue
			}
			if batch[i].receives >= MaxReceives {
				q.dead++
				q.log.ErrorContext(ctx, "job dropped after repeated failures (dead-letter queue)", q.describe(batch[i].job)...)
				continue
			}
			q.jobs = append(q.jobs, batch[i])
		}
		q.busy--
		q.cond.Broadcast()
		q.mu.Unlock()
	}
}
