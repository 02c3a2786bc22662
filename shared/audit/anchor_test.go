package audit_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/audit"
)

// TestAnchorsShowARewrittenTail: nothing links to a chain's newest
// records, so without Object Lock whoever can delete objects could drop
// them unseen. Anchor keeps each chain's head in Vault (no Vault write
// per record: the daily sweep calls it), and Verify then reports a bucket
// that ends before the anchor or holds something else there. Anchor only
// moves forward over records that link up.
func TestAnchorsShowARewrittenTail(t *testing.T) {
	srv := devenv.StartTestS3(t)
	ctx := context.Background()
	const bucket = "unlocked-anchored"
	if err := srv.CreateBucket(ctx, bucket, false); err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	day := time.Date(2026, 5, 4, 2, 0, 0, 0, time.UTC)
	write := func(b *audit.Bucket, tenant string, n int) {
		t.Helper()
		rec := audit.NewRecorder(nil, b)
		for i := range n {
			if err := rec.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: tenant, UserID: fmt.Sprintf("u%d", i)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	del := func(tenant string, seq uint64) {
		t.Helper()
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(audit.ChainKey(tenant, seq))}); err != nil {
			t.Fatal(err)
		}
	}

	truncated, rewritten, other := uuid.NewString(), uuid.NewString(), uuid.NewString()
	b := newBucket(t, c, bucket, 0)
	write(b, truncated, 5)
	write(b, rewritten, 5)
	write(b, other, 2)
	reps, err := b.AnchorAll(ctx, day)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 3 {
		t.Fatalf("anchored %d chains, want 3: %+v", len(reps), reps)
	}
	for _, r := range reps {
		want := uint64(5)
		if r.Chain == other {
			want = 2
		}
		if r.From != 0 || r.To != want || r.Blocked() || len(r.Problems) != 0 {
			t.Fatalf("first anchor of %s: %+v, want 0 -> %d", r.Chain, r, want)
		}
	}

	// The next day: the anchor moves over the new records only.
	write(b, other, 3)
	r, err := b.Anchor(ctx, other, day.AddDate(0, 0, 1))
	if err != nil || r.From != 2 || r.To != 5 || r.Blocked() {
		t.Fatalf("second anchor: %+v %v, want 2 -> 5", r, err)
	}
	rep, err := b.Verify(ctx, other)
	if err != nil || !rep.Intact || rep.Anchor == nil || rep.Anchor.Seq != 5 || rep.Anchor.Hash != rep.HeadHash || !rep.Anchor.At.Equal(day.AddDate(0, 0, 1)) {
		t.Fatalf("verify of an anchored chain: %+v %v", rep, err)
	}

	// The tail dropped: the chain alone looks intact (records 1-3 link
	// up), the anchor says otherwise.
	del(truncated, 5)
	del(truncated, 4)
	rep, err = b.Verify(ctx, truncated)
	if err != nil || rep.Intact || rep.HeadSeq != 3 || fmt.Sprint(problems(rep)) != "[truncated@5]" {
		t.Fatalf("verify after the tail was dropped: %+v %v", rep, err)
	}
	// The tail replaced: record 5 deleted and a new, valid record 5
	// written by a function (so it links and MACs correctly).
	del(rewritten, 5)
	write(newBucket(t, c, bucket, 0), rewritten, 1)
	rep, err = b.Verify(ctx, rewritten)
	if err != nil || rep.Intact || fmt.Sprint(problems(rep)) != "[rewritten@5]" {
		t.Fatalf("verify after the tail was rewritten: %+v %v", rep, err)
	}
	// Anchor does not move over either; it reports why.
	for _, tn := range []string{truncated, rewritten} {
		r, err := b.Anchor(ctx, tn, day.AddDate(0, 0, 2))
		if err != nil || !r.Blocked() || r.To != 5 || r.From != 5 {
			t.Fatalf("anchor of a tampered chain: %+v %v", r, err)
		}
	}
	sec, err := functionsVault(t).ReadKV(ctx, devenv.AuditAnchorsMount, truncated)
	if err != nil || sec.Data["seq"] != "5" {
		t.Fatalf("the anchor in Vault: %+v %v", sec, err)
	}
	out, _ := json.Marshal(rep)
	if !strings.Contains(string(out), `"kind":"rewritten"`) {
		t.Fatalf("report JSON: %s", out)
	}
}
