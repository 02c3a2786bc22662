// Package queue hands jobs to a worker function through SQS. It knows
// nothing of what a job means: the domain declares the port and the job
// type, and app instantiates SQS with that type.
package queue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// SQSAPI is the part of the SQS client a queue needs.
type SQSAPI interface {
	SendMessageBatch(ctx context.Context, in *sqs.SendMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error)
}

// SQS sends jobs of type T as JSON messages to an SQS queue, ten per
// request.
type SQS[T any] struct {
	Client   SQSAPI
	QueueURL string
}

// Send sends every batch even when one fails and returns how many jobs
// SQS accepted; the error names what it refused.
func (q SQS[T]) Send(ctx context.Context, jobs []T) (int, error) {
	sent := 0
	var errs []error
	for start := 0; start < len(jobs); start += 10 {
		batch := jobs[start:min(start+10, len(jobs))]
		in := &sqs.SendMessageBatchInput{QueueUrl: aws.String(q.QueueURL)}
		for i, j := range batch {
			body, err := json.Marshal(j)
			if err != nil {
				return sent, fmt.Errorf("queue: encode job: %w", err)
			}
			in.Entries = append(in.Entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(string(body))})
		}
		out, err := q.Client.SendMessageBatch(ctx, in)
		if err != nil {
			errs = append(errs, fmt.Errorf("queue: send to %s: %w", q.QueueURL, err))
			continue
		}
		sent += len(batch) - len(out.Failed)
		if len(out.Failed) > 0 {
			errs = append(errs, fmt.Errorf("queue: %s refused %d of %d messages (first: %s)", q.QueueURL, len(out.Failed), len(batch), aws.ToString(out.Failed[0].Code)))
		}
	}
	return sent, errors.Join(errs...)
}
