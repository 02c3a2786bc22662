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

// startRotateQueue delivers the local RotateQueue's jobs to the rotate
// function as SQS batches, through the same Lambda handler path as in AWS
// (RotateQueueMapping with ReportBatchItemFailures).
func (s *Stack) startRotateQueue() {
	ctx, cancel := context.WithCancel(context.Background())
	s.closers = append(s.closers, closerFunc(func() error { cancel(); return nil }))
	s.RotateQueue.Start(ctx, 2, func(ctx context.Context, batch []credential.Job) ([]int, error) {
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
				EventSourceARN: "arn:aws:sqs:local:000000000000:RotateQueue",
				AWSRegion:      "local",
			})
		}
		raw, err := json.Marshal(ev)
		if err != nil {
			return nil, err
		}
		out, err := s.Gateway.Invoke(ctx, "rotate", raw)
		if err != nil {
			return nil, fmt.Errorf("devenv: rotate function: %w", err)
		}
		var resp events.SQSEventResponse
		if err := json.Unmarshal(out, &resp); err != nil {
			return nil, fmt.Errorf("devenv: rotate function answered %s: %w", out, err)
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
	})
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
