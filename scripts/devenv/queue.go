package devenv

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/aws/aws-lambda-go/events"
	"github.com/google/uuid"

	"smtp-vault/shared/credential"
)

// startQueues delivers the local RotateQueue's and ResetQueue's jobs to
// the rotate and emergency-reset functions as SQS batches, through the
// same Lambda handler path as in AWS (the event source mappings, with
// ReportBatchItemFailures).
func (s *Stack) startQueues() {
	ctx, cancel := context.WithCancel(context.Background())
	s.closers = append(s.closers, closerFunc(func() error { cancel(); return nil }))
	s.RotateQueue.Start(ctx, 2, sqsConsumer[credential.Job](s, "rotate", "RotateQueue"))
	s.ResetQueue.Start(ctx, 4, sqsConsumer[credential.ResetJob](s, "emergency-reset", "ResetQueue"))
}

// sqsConsumer hands a batch of jobs to a function as an SQS event and
// returns the indexes of the messages it reports failed.
func sqsConsumer[T any](s *Stack, function, queue string) func(ctx context.Context, batch []T) ([]int, error) {
	return func(ctx context.Context, batch []T) ([]int, error) {
		ev := events.SQSEvent{}
		for i, j := range batch {
			body, err := json.Marshal(j)
			if err != nil {
				return nil, err
			}
			ev.Records = append(ev.Records, events.SQSMessage{
				MessageId:      strconv.Itoa(i) + "-" + uuid.NewString(),
				Body:           string(body),
				EventSource:    "aws:sqs",
				EventSourceARN: "arn:aws:sqs:local:000000000000:" + queue,
				AWSRegion:      "local",
			})
		}
		raw, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		out, err := s.Gateway.Invoke(ctx, function, raw)
		if err != nil {
			return nil, fmt.Errorf("devenv: %s function: %w", function, err)
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			return nil, fmt.Errorf("devenv: %s function answered %s: %w", function, out, err)
		}
		var failed []int
		for _, f := range resp.BatchItemFailures {
			for i, r := range ev.Records {
				if r.MessageId == f.ItemIdentifier {
					failed = append(failed, i)
				}
			}
		}
		return failed, nil
	}
}

// describeResetJob names a reset job in the local queue's log.
func describeResetJob(j credential.ResetJob) []any {
	return []any{"incident_id", j.IncidentID, "response_id", j.ResponseID, "chunk", j.Chunk, "plan", j.Plan}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func logOut(w io.Writer) io.Writer {
	if w == nil {
		return os.Stderr
	}
	return w
}

// describeJob names a rotate job in the local queue's log.
func describeJob(j credential.Job) []any {
	return []any{"tenant_id", j.TenantID, "reason", j.Reason}
}
