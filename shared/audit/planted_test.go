package audit_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/audit"
)

// TestPlantedObjectsDoNotWedgeTheChain: objects that anyone with
// s3:PutObject could plant under a tenant's prefix (in the Object Lock
// bucket, where nobody can delete them again) used to stop every later
// write for that tenant: a garbage key sorting as the head, a record at
// the largest sequence number, the very next slot taken. Writers now skip
// them and chain onto the last valid record; the verifier reports each.
func TestPlantedObjectsDoNotWedgeTheChain(t *testing.T) {
	srv := devenv.StartTestS3(t)
	c := srv.Client()
	ctx := context.Background()
	tenant := uuid.NewString()
	writer := audit.NewRecorder(nil, newBucket(t, c, devenv.AuditBucket, 1))
	for i := 1; i <= 2; i++ {
		if err := writer.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: tenant, UserID: fmt.Sprintf("user-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	second := getObject(t, c, devenv.AuditBucket, audit.ChainKey(tenant, 2), nil)
	var copied audit.Record
	if err := json.Unmarshal(second, &copied); err != nil {
		t.Fatal(err)
	}
	copied.Seq = audit.MaxSeq - 1
	huge, _ := audit.EncodeRecord(copied) // its MAC no longer matches
	prefix := audit.ChainPrefix(tenant)
	planted := map[string][]byte{
		prefix + "!sorts-first":                []byte("not json"),
		prefix + "0000000000000.json":          []byte(`{"seq":1}`), // 13 digits
		audit.ChainKey(tenant, audit.MaxSeq-1): huge,                // a "record" at the largest sequence
		audit.ChainKey(tenant, 3):              []byte(`{}`),        // the next writer's slot
		audit.ChainKey(tenant, 4):              second,              // a valid record moved to the slot after
	}
	for k, body := range planted {
		in := &s3.PutObjectInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(k), Body: bytes.NewReader(body)}
		if _, err := c.PutObject(ctx, in); err != nil {
			t.Fatalf("plant %s: %v", k, err)
		}
	}

	// A new instance (nothing cached) and the one that knew the head both
	// keep writing; each record chains onto the last valid one.
	fresh := audit.NewRecorder(nil, newBucket(t, c, devenv.AuditBucket, 1))
	for i, r := range []*audit.Recorder{fresh, writer, fresh} {
		if err := r.Record(ctx, audit.Event{Event: audit.CredentialsViewed, TenantID: tenant, UserID: fmt.Sprintf("after-%d", i)}); err != nil {
			t.Fatalf("write %d after the planted objects: %v", i, err)
		}
	}
	var fifth audit.Record
	if err := json.Unmarshal(getObject(t, c, devenv.AuditBucket, audit.ChainKey(tenant, 5), nil), &fifth); err != nil {
		t.Fatal(err)
	}
	if fifth.UserID != "after-0" || fifth.PrevHash != audit.Hash(second) {
		t.Fatalf("the first write after the planted objects: %+v, want slot 5 linked to record 2", fifth)
	}

	rep, err := newBucket(t, c, devenv.AuditBucket, 1).Verify(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(problems(rep), " ")
	for _, want := range []string{"malformed_key@0", "forged@3", "reordered@4", fmt.Sprintf("forged@%d", audit.MaxSeq-1)} {
		if !strings.Contains(got, want) {
			t.Errorf("verify reports %s, want %s among them", got, want)
		}
	}
	if strings.Contains(got, "missing") || strings.Contains(got, "broken_link") || rep.Records != 5 || rep.HeadSeq != 7 {
		t.Fatalf("verify: %d valid records, head %d, problems %s; want 5 records up to 7, none missing or unlinked", rep.Records, rep.HeadSeq, got)
	}
	if rep.ProblemCount != 5 || rep.Intact {
		t.Fatalf("%d problems, want the 5 planted objects: %s", rep.ProblemCount, got)
	}

	// The console's trail shows the five real events, newest first.
	p, err := newBucket(t, c, devenv.AuditBucket, 1).Query(ctx, audit.Query{Chain: tenant, Page: 1, PerPage: 10})
	if err != nil {
		t.Fatal(err)
	}
	var users []string
	for _, e := range p.Events {
		users = append(users, e.UserID)
	}
	if p.Total != 7 || fmt.Sprint(users) != "[after-2 after-1 after-0 user-2 user-1]" {
		t.Fatalf("query: total %d, users %v", p.Total, users)
	}
}
