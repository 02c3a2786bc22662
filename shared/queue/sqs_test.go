package queue_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"smtp-vault/shared/queue"
)

// job is a message body as the domain would send one.
type job struct {
	TenantID string `json:"tenant_id"`
	Reason   string `json:"reason"`
}

// fakeSQS records batches; it refuses the entries whose tenant is listed,
// and fails a whole call on the call numbers listed.
type fakeSQS struct {
	calls     int
	failCalls map[int]bool
	refuse    map[string]bool
	got       []job
	batch     []int
}

func (f *fakeSQS) SendMessageBatch(_ context.Context, in *sqs.SendMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.SendMessageBatchOutput, error) {
	f.calls++
	if f.failCalls[f.calls] {
		return nil, errors.New("throttled")
	}
	if aws.ToString(in.QueueUrl) != "https://sqs.example/rotate" {
		return nil, fmt.Errorf("queue %q", aws.ToString(in.QueueUrl))
	}
	f.batch = append(f.batch, len(in.Entries))
	out := &sqs.SendMessageBatchOutput{}
	for _, e := range in.Entries {
		var j job
		if err := json.Unmarshal([]byte(aws.ToString(e.MessageBody)), &j); err != nil {
			return nil, err
		}
		if f.refuse[j.TenantID] {
			out.Failed = append(out.Failed, sqstypes.BatchResultErrorEntry{Id: e.Id, Code: aws.String("InternalError")})
			continue
		}
		f.got = append(f.got, j)
	}
	return out, nil
}

func TestSQSQueueSendsBatchesOfTen(t *testing.T) {
	var jobs []job
	for i := range 25 {
		jobs = append(jobs, job{TenantID: fmt.Sprint("t", i), Reason: "scheduled"})
	}
	cases := []struct {
		name     string
		fake     *fakeSQS
		sent     int
		wantErr  bool
		batches  []int
		received int
	}{
		{"all", &fakeSQS{}, 25, false, []int{10, 10, 5}, 25},
		{"two entries refused", &fakeSQS{refuse: map[string]bool{"t3": true, "t21": true}}, 23, true, []int{10, 10, 5}, 23},
		{"second call fails, third still sent", &fakeSQS{failCalls: map[int]bool{2: true}}, 15, true, []int{10, 5}, 15},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := queue.SQS[job]{Client: c.fake, QueueURL: "https://sqs.example/rotate"}
			sent, err := q.Send(context.Background(), jobs)
			if sent != c.sent || (err != nil) != c.wantErr {
				t.Fatalf("sent %d, err %v; want %d, error %v", sent, err, c.sent, c.wantErr)
			}
			if fmt.Sprint(c.fake.batch) != fmt.Sprint(c.batches) || len(c.fake.got) != c.received {
				t.Fatalf("batches %v, received %d", c.fake.batch, len(c.fake.got))
			}
			if c.fake.got[0] != jobs[0] {
				t.Fatalf("first job %+v, want %+v", c.fake.got[0], jobs[0])
			}
		})
	}
}
