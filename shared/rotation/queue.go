package rotation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Job is one tenant for the rotate worker: the body of a RotateQueue
// message. It holds no secret.
type Job struct {
	TenantID string `json:"tenant_id"`
	Reason   string `json:"reason"` // JobScheduled, JobResume or JobBulk
	// RequestedBy and Note are the member of staff behind a bulk rotation
	// and the reason they gave, for the audit trail.
	RequestedBy string `json:"requested_by,omitempty"`
	Note        string `json:"note,omitempty"`
}

// Reasons of a Job.
const (
	JobScheduled = "scheduled" // the sweep found the credential due
	JobResume    = "resume"    // a change is pending, or the metadata is stale
	JobBulk      = "bulk"      // rotate-overdue
)

// Request is the rotation a job asks for. Every job rotates only a due
// credential (the record decides), so a message delivered twice, or a job
// for a tenant rotated meanwhile, changes nothing.
func (j Job) Request() Request {
	r := Request{TenantID: j.TenantID, Reason: j.Reason, Trigger: TriggerSchedule, OnlyIfDue: true,
		Actor: Actor{UserID: "system:rotate-sweep"}}
	if j.Reason == JobBulk {
		r.Trigger, r.Actor.UserID = TriggerBulk, j.RequestedBy
		if j.Note != "" {
			r.Reason = j.Note
		}
	}
	return r
}

// Queue takes jobs for the rotate worker: SQS in AWS, LocalQueue locally.
// Send returns how many jobs it accepted, and an error when not all.
type Queue interface {
	Send(ctx context.Context, jobs []Job) (int, error)
}

// SQSAPI is the part of the SQS client a queue needs.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// SQS sends jobs to an SQS queue, ten per request.
type SQS struct {
	Client   SQSAPI
	QueueURL string
}

// Send implements Queue. It sends every batch even when one fails; the
// jobs SQS refused are counted out, and the next day's sweep finds those
// tenants again.
func (q SQS) Send(ctx context.Context, jobs []Job) (int, error) {
	sent := 0
	var errs []error
	for start := 0; start < len(jobs); start += 10 {
		batch := jobs[start:min(start+10, len(jobs))]
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.QueueURL)}
		for i, j := range batch {
			body, err := json.Marshal(j)
			if err != nil {
				return sent, fmt.Errorf("rotation: encode job: %w", err)
			}
			in.Entries = append(in.Entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))})
		}
		out, err := q.Client.SendMessageBatch(ctx, in)
		if err != nil {
			errs = append(errs, fmt.Errorf("rotation: send to the rotate queue: %w", err))
			continue
		}
		sent += len(batch) - len(out.Failed)
		if len(out.Failed) > 0 {
			errs = append(errs, fmt.Errorf("rotation: the rotate queue refused %d of %d messages (first: %s)", len(out.Failed), len(batch), aws.ToString(out.Failed[0].Code)))
		}
	}
	return sent, errors.Join(errs...)
}

// LocalQueue stands in for RotateQueue and its event source mapping when
// running locally: jobs are handed in batches of up to ten to a consumer
// (the rotate function's handler, through an SQS event), and the ones it
// reports failed are delivered again, up to MaxReceives times, as with
// template.yaml's redrive policy; then they are dropped with an error log
// (the dead-letter queue).
type LocalQueue struct {
	mu      sync.Mutex
	cond    *sync.Cond
	jobs    []queued
	busy    int
	consume func(ctx context.Context, batch []Job) (failed []int, err error)
	log     *slog.Logger
	// Dead counts jobs dropped after MaxReceives deliveries.
	dead int
}

type queued struct {
	job      Job
	receives int
}

// MaxReceives is RotateQueue's maxReceiveCount.
const MaxReceives = 5

// NewLocalQueue returns a queue with no consumer yet (see Start).
func NewLocalQueue(log *slog.Logger) *LocalQueue {
	q := &LocalQueue{log: log}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Start runs workers goroutines delivering batches to consume until ctx
// ends. consume returns the indexes of the jobs that failed.
func (q *LocalQueue) Start(ctx context.Context, workers int, consume func(ctx context.Context, batch []Job) (failed []int, err error)) {
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

// Send implements Queue.
func (q *LocalQueue) Send(_ context.Context, jobs []Job) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, j := range jobs {
		q.jobs = append(q.jobs, queued{job: j})
	}
	q.cond.Broadcast()
	return len(jobs), nil
}

// Wait blocks until every job sent so far has been delivered and handled
// (or dropped), or ctx ends.
func (q *LocalQueue) Wait(ctx context.Context) error {
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
func (q *LocalQueue) Dead() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dead
}

func (q *LocalQueue) work(ctx context.Context) {
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
		batch := append([]queued(nil), q.jobs[:n]...)
		q.jobs = q.jobs[n:]
		q.busy++
		consume := q.consume
		q.mu.Unlock()

		jobs := make([]Job, len(batch))
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
				q.log.ErrorContext(ctx, "rotate job dropped after repeated failures (dead-letter queue)", "tenant_id", batch[i].job.TenantID, "reason", batch[i].job.Reason)
				continue
			}
			q.jobs = append(q.jobs, batch[i])
		}
		q.busy--
		q.cond.Broadcast()
		q.mu.Unlock()
	}
}
