package notify

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sns"
)

func TestLinesRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	at := time.Date(2026, 5, 1, 2, 0, 0, 0, time.UTC)
	l := NewLines(&buf, func() time.Time { return at })
	ctx := context.Background()
	in := []Message{
		{Kind: KindRotationNotice, Subject: "due in 7 days", TenantID: "t1", Attrs: map[string]string{"due": "2026-05-08"}},
		{Kind: KindSecurityAlert, Subject: "night access", Body: "details", Attrs: map[string]string{"rule": "night_access"}},
	}
	for _, m := range in {
		if err := l.Notify(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	out, err := ReadLines(&buf)
	if err != nil || len(out) != 2 {
		t.Fatalf("%d messages, %v", len(out), err)
	}
	if out[0].TenantID != "t1" || out[0].Attrs["due"] != "2026-05-08" || !out[0].Time.Equal(at) || out[1].Body != "details" {
		t.Fatalf("read back %+v", out)
	}
}

func TestInvalidMessagesAreRefused(t *testing.T) {
	ctx := context.Background()
	bad := map[string]Message{
		"no kind":       {Subject: "s"},
		"no subject":    {Kind: KindSecurityAlert},
		"long subject":  {Kind: KindSecurityAlert, Subject: string(bytes.Repeat([]byte("x"), 101))},
		"secret attr":   {Kind: KindSecurityAlert, Subject: "s", Attrs: map[string]string{"new_password": "x"}},
		"token in attr": {Kind: KindSecurityAlert, Subject: "s", Attrs: map[string]string{"ReauthToken": "x"}},
	}
	for name, m := range bad {
		var buf bytes.Buffer
		mem := &Memory{}
		pub := &fakeSNS{}
		for _, n := range []Notifier{NewLines(&buf, nil), mem, SNS{Client: pub, TopicARN: "arn"}} {
			if err := n.Notify(ctx, m); !errors.Is(err, ErrInvalid) {
				t.Errorf("%s via %T: %v, want ErrInvalid", name, n, err)
			}
		}
		if buf.Len() != 0 || len(mem.Messages()) != 0 || len(pub.in) != 0 {
			t.Errorf("%s: something was delivered", name)
		}
	}
}

type fakeSNS struct {
	in  []*sns.PublishInput
	err error
}

func (f *fakeSNS) Publish(_ context.Context, in *sns.PublishInput, _ ...func(*sns.Options)) (*sns.PublishOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	f.in = append(f.in, in)
	return &sns.PublishOutput{MessageId: aws.String("1")}, nil
}

func TestSNSPublishesAttributes(t *testing.T) {
	pub := &fakeSNS{}
	n := SNS{Client: pub, TopicARN: "arn:aws:sns:eu-west-1:1:alerts"}
	err := n.Notify(context.Background(), Message{Kind: KindSecurityAlert, Subject: "5+ accesses", TenantID: "t", Attrs: map[string]string{"rule": "access_burst", "empty": ""}})
	if err != nil {
		t.Fatal(err)
	}
	in := pub.in[0]
	if aws.ToString(in.TopicArn) != n.TopicARN || aws.ToString(in.Message) != "5+ accesses" || aws.ToString(in.Subject) != "5+ accesses" {
		t.Fatalf("publish input %+v", in)
	}
	if aws.ToString(in.MessageAttributes["kind"].StringValue) != KindSecurityAlert ||
		aws.ToString(in.MessageAttributes["rule"].StringValue) != "access_burst" ||
		aws.ToString(in.MessageAttributes["tenant_id"].StringValue) != "t" {
		t.Fatalf("attributes %+v", in.MessageAttributes)
	}
	if _, ok := in.MessageAttributes["empty"]; ok {
		t.Fatal("an empty attribute was sent (SNS refuses empty values)")
	}
	pub.err = errors.New("throttled")
	if err := n.Notify(context.Background(), Message{Kind: KindSecurityAlert, Subject: "s"}); err == nil {
		t.Fatal("a publish failure was not returned")
	}
}

func TestOpenFileAppendsPrivately(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "notifications.jsonl")
	for i := range 2 {
		l, c, err := OpenFile(path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Notify(context.Background(), Message{Kind: KindRotationNotice, Subject: "n"}); err != nil {
			t.Fatal(err)
		}
		c.Close()
		f, _ := os.Open(path)
		msgs, _ := ReadLines(f)
		f.Close()
		if len(msgs) != i+1 {
			t.Fatalf("after %d opens: %d messages", i+1, len(msgs))
		}
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode().Perm())
	}
}
