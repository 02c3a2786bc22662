package audit_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/uuid"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/audit"
)

// These tests run the bucket sink against the real local S3 server
// (versitygw) with and without Object Lock.

func getObject(t *testing.T, c *s3.Client, bucket, key string, version *string) []byte {
	t.Helper()
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), VersionId: version})
	if err != nil {
		t.Fatalf("get %s: %v", key, err)
	}
	defer out.Body.Close()
	b, _ := io.ReadAll(out.Body)
	return b
}

func TestBucketObjectsAreLockedInComplianceMode(t *testing.T) {
	srv := devenv.StartTestS3(t)
	c := srv.Client()
	ctx := context.Background()
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	rec := audit.NewRecorder(func() time.Time { return at }, newBucket(t, c, devenv.AuditBucket, 7))
	tenant := uuid.NewString()
	if err := rec.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: tenant, UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	key := audit.ChainKey(tenant, 1)
	orig := getObject(t, c, devenv.AuditBucket, key, nil)
	var r audit.Record
	if err := json.Unmarshal(orig, &r); err != nil || r.Seq != 1 || r.PrevHash != audit.GenesisHash || r.Event.Event != audit.CredentialsAccessed {
		t.Fatalf("stored record %s (%v)", orig, err)
	}
	ret, err := c.GetObjectRetention(ctx, &s3.GetObjectRetentionInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	if ret.Retention.Mode != s3types.ObjectLockRetentionModeCompliance || !aws.ToTime(ret.Retention.RetainUntilDate).Equal(at.AddDate(7, 0, 0)) {
		t.Fatalf("retention %s until %v, want COMPLIANCE until %v", ret.Retention.Mode, aws.ToTime(ret.Retention.RetainUntilDate), at.AddDate(7, 0, 0))
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(key)})
	if err != nil {
		t.Fatal(err)
	}
	version := head.VersionId

	// The version cannot be deleted, its retention neither shortened nor
	// switched to GOVERNANCE, even by the server's root user.
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(key), VersionId: version}); err == nil {
		t.Fatal("a locked audit record's version was deleted")
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(key), VersionId: version, BypassGovernanceRetention: aws.Bool(true)}); err == nil {
		t.Fatal("a COMPLIANCE lock was bypassed")
	}
	for _, r := range []s3types.ObjectLockRetention{
		{Mode: s3types.ObjectLockRetentionModeCompliance, RetainUntilDate: aws.Time(at.AddDate(0, 0, 1))},
		{Mode: s3types.ObjectLockRetentionModeGovernance, RetainUntilDate: aws.Time(at.AddDate(7, 0, 0))},
	} {
		if _, err := c.PutObjectRetention(ctx, &s3.PutObjectRetentionInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(key), VersionId: version, Retention: &r}); err == nil {
			t.Fatalf("retention changed to %s until %v", r.Mode, aws.ToTime(r.RetainUntilDate))
		}
	}
	// An overwrite only adds a version: the original stays, byte for
	// byte, and the verifier reports the attempt.
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(devenv.AuditBucket), Key: aws.String(key), Body: strings.NewReader(`{"forged":true}`)}); err != nil {
		t.Logf("overwrite refused outright: %v", err)
	}
	if got := getObject(t, c, devenv.AuditBucket, key, version); !bytes.Equal(got, orig) {
		t.Fatalf("the original version changed: %s", got)
	}
	rep, err := newBucket(t, c, devenv.AuditBucket, 7).Verify(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Intact || rep.Break == nil {
		t.Fatalf("verify after an overwrite attempt: %+v", rep)
	}
}

func TestBucketAppendsSafelyFromManyInstances(t *testing.T) {
	srv := devenv.StartTestS3(t)
	ctx := context.Background()
	tenant := uuid.NewString()
	// Four "function instances", each with its own client and head cache.
	var recs []*audit.Recorder
	for range 4 {
		recs = append(recs, audit.NewRecorder(nil, newBucket(t, srv.Client(), devenv.AuditBucket, 1)))
	}
	const each = 12
	var wg sync.WaitGroup
	errs := make(chan error, len(recs)*each)
	for i, r := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := range each {
				errs <- r.Record(ctx, audit.Event{Event: audit.CredentialsViewed, TenantID: tenant, UserID: fmt.Sprintf("i%d-%d", i, n)})
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	rep, err := newBucket(t, srv.Client(), devenv.AuditBucket, 1).Verify(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Intact || rep.Records != len(recs)*each || rep.HeadSeq != uint64(len(recs)*each) {
		t.Fatalf("after concurrent appends: %+v", rep)
	}
	users := map[string]bool{}
	p, err := newBucket(t, srv.Client(), devenv.AuditBucket, 1).Query(ctx, audit.Query{Chain: tenant, Page: 1, PerPage: 200})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range p.Events {
		users[e.UserID] = true
	}
	if len(users) != len(recs)*each {
		t.Fatalf("%d distinct events stored, want %d (one lost or duplicated)", len(users), len(recs)*each)
	}
}

func TestBucketWriteFailsWhileTheServerIsDown(t *testing.T) {
	srv := devenv.StartTestS3(t)
	ctx := context.Background()
	tenant := uuid.NewString()
	b := newBucket(t, srv.Client(), devenv.AuditBucket, 1)
	rec := audit.NewRecorder(nil, b)
	if err := rec.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: tenant}); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	err := rec.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: tenant})
	if !errors.Is(err, audit.ErrNotRecorded) {
		t.Fatalf("write with the server down: %v, want ErrNotRecorded", err)
	}
	if err := srv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := rec.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: tenant}); err != nil {
		t.Fatalf("write once the server is back: %v", err)
	}
	rep, err := b.Verify(ctx, tenant)
	if err != nil || !rep.Intact || rep.Records != 2 {
		t.Fatalf("chain after the outage: %+v %v", rep, err)
	}
}

// TestVerifyCatchesTampering edits, deletes and reorders records in a
// bucket without Object Lock, where nothing stops it: the chain alone
// must show each.
func TestVerifyCatchesTampering(t *testing.T) {
	srv := devenv.StartTestS3(t)
	ctx := context.Background()
	const bucket = "unlocked-trail"
	if err := srv.CreateBucket(ctx, bucket, false); err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	put := func(key string, body []byte) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name   string
		tamper func(tenant string)
		want   []string // "<kind>@<seq>" of every problem, in chain order
	}{
		{"intact", func(string) {}, nil},
		{"edited", func(tn string) {
			k := audit.ChainKey(tn, 3)
			put(k, bytes.Replace(getObject(t, c, bucket, k, nil), []byte(`"user_id":"user-3"`), []byte(`"user_id":"someone-else"`), 1))
		}, []string{"forged@3", "broken_link@4"}},
		{"the newest record edited", func(tn string) {
			k := audit.ChainKey(tn, 6)
			put(k, bytes.Replace(getObject(t, c, bucket, k, nil), []byte(`"ip":"203.0.113.6"`), []byte(`"ip":"198.51.100.1"`), 1))
		}, []string{"forged@6"}}, // the MAC shows what no later link can
		{"deleted", func(tn string) {
			if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(audit.ChainKey(tn, 2))}); err != nil {
				t.Fatal(err)
			}
		}, []string{"missing@2", "broken_link@3"}},
		{"reordered", func(tn string) {
			k2, k3 := audit.ChainKey(tn, 2), audit.ChainKey(tn, 3)
			b2, b3 := getObject(t, c, bucket, k2, nil), getObject(t, c, bucket, k3, nil)
			put(k2, b3)
			put(k3, b2)
		}, []string{"reordered@2", "reordered@3", "broken_link@4"}},
		{"renumbered", func(tn string) {
			// Swap two records and fix their seq fields: the MACs give it away.
			k2, k3 := audit.ChainKey(tn, 2), audit.ChainKey(tn, 3)
			b2, b3 := getObject(t, c, bucket, k2, nil), getObject(t, c, bucket, k3, nil)
			put(k2, bytes.Replace(b3, []byte(`"seq":3`), []byte(`"seq":2`), 1))
			put(k3, bytes.Replace(b2, []byte(`"seq":2`), []byte(`"seq":3`), 1))
		}, []string{"forged@2", "forged@3", "broken_link@4"}},
		{"appended by a bucket writer", func(tn string) {
			// A record that links correctly and names a real wrapped key,
			// MACed with a key of the writer's own: it is not a function's.
			head := getObject(t, c, bucket, audit.ChainKey(tn, 6), nil)
			var r audit.Record
			if err := json.Unmarshal(head, &r); err != nil {
				t.Fatal(err)
			}
			r.Seq, r.PrevHash, r.ID, r.UserID = 7, audit.Hash(head), uuid.NewString(), "mallory"
			put(audit.ChainKey(tn, 7), forgeMAC(t, r))
		}, []string{"forged@7"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tenant := uuid.NewString()
			b := newBucket(t, c, bucket, 0)
			rec := audit.NewRecorder(nil, b)
			for i := 1; i <= 6; i++ {
				if err := rec.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: tenant, UserID: fmt.Sprintf("user-%d", i), IP: fmt.Sprintf("203.0.113.%d", i)}); err != nil {
					t.Fatal(err)
				}
			}
			tc.tamper(tenant)
			rep, err := newBucket(t, c, bucket, 0).Verify(ctx, tenant)
			if err != nil {
				t.Fatal(err)
			}
			if got := problems(rep); fmt.Sprint(got) != fmt.Sprint(tc.want) || rep.Intact != (tc.want == nil) {
				t.Fatalf("verify found %v (intact %v), want %v\n%+v", got, rep.Intact, tc.want, rep.Problems)
			}
			if tc.want != nil && (rep.Break == nil || fmt.Sprintf("%s@%d", rep.Break.Kind, rep.Break.Seq) != tc.want[0]) {
				t.Fatalf("break %+v, want the first problem", rep.Break)
			}
		})
	}
}

// problems renders a report's problems as "<kind>@<seq>".
func problems(rep audit.Report) []string {
	var out []string
	for _, p := range rep.Problems {
		out = append(out, fmt.Sprintf("%s@%d", p.Kind, p.Seq))
	}
	return out
}

// forgeMAC encodes r as a writer would, with a MAC under a key of the
// forger's own, as someone with bucket access but no Vault access could.
func forgeMAC(t *testing.T, r audit.Record) []byte {
	t.Helper()
	r.MAC = strings.Repeat("0", 64)
	b, err := audit.EncodeRecord(r)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := append(bytes.TrimSuffix(b, []byte(`,"mac":"`+r.MAC+`"}`)), '}')
	h := hmac.New(sha256.New, []byte("the forger's own key, 32 bytes!!"))
	h.Write(unsigned)
	return fmt.Appendf(unsigned[:len(unsigned)-1:len(unsigned)-1], `,"mac":"%s"}`, hex.EncodeToString(h.Sum(nil)))
}

func TestQueryPagesNewestFirstAndFilters(t *testing.T) {
	srv := devenv.StartTestS3(t)
	ctx := context.Background()
	tenant, other := uuid.NewString(), uuid.NewString()
	// Timestamps 20 s apart in the last minutes: close to when the
	// objects are written, as in the real system (Query uses that).
	const step = 20 * time.Second
	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Second)
	b := newBucket(t, srv.Client(), devenv.AuditBucket, 1)
	rec := audit.NewRecorder(nil, b)
	for i := range 23 {
		ev := audit.CredentialsAccessed
		if i%3 == 0 {
			ev = audit.CredentialsViewed
		}
		user := []string{"alice", "sam"}[i%2]
		if err := rec.Record(ctx, audit.Event{Event: ev, TenantID: tenant, UserID: user, Timestamp: base.Add(time.Duration(i) * step), Details: map[string]any{"n": i}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := rec.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: other, UserID: "alice"}); err != nil {
		t.Fatal(err)
	}
	ns := func(p audit.Page) []int {
		var out []int
		for _, e := range p.Events {
			out = append(out, int(e.Details["n"].(float64)))
		}
		return out
	}
	cases := []struct {
		name  string
		q     audit.Query
		total int
		want  []int
	}{
		{"first page", audit.Query{Page: 1, PerPage: 5}, 23, []int{22, 21, 20, 19, 18}},
		{"third page", audit.Query{Page: 3, PerPage: 5}, 23, []int{12, 11, 10, 9, 8}},
		{"last page", audit.Query{Page: 5, PerPage: 5}, 23, []int{2, 1, 0}},
		{"past the end", audit.Query{Page: 6, PerPage: 5}, 23, nil},
		{"by event", audit.Query{Event: audit.CredentialsViewed, Page: 1, PerPage: 3}, 8, []int{21, 18, 15}},
		{"by user, second page", audit.Query{User: "sam", Page: 2, PerPage: 4}, 11, []int{13, 11, 9, 7}},
		{"time window", audit.Query{From: base.Add(5 * step), To: base.Add(9 * step), Page: 1, PerPage: 50}, 5, []int{9, 8, 7, 6, 5}},
		{"everything combined", audit.Query{Event: audit.CredentialsAccessed, User: "alice", From: base.Add(4 * step), Page: 1, PerPage: 50}, 7, []int{22, 20, 16, 14, 10, 8, 4}},
		{"no match", audit.Query{User: "nobody", Page: 1, PerPage: 50}, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Chain = tenant
			p, err := b.Query(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if p.Total != tc.total || fmt.Sprint(ns(p)) != fmt.Sprint(tc.want) || p.Page != tc.q.Page || p.PerPage != tc.q.PerPage {
				t.Fatalf("got total %d events %v, want total %d events %v", p.Total, ns(p), tc.total, tc.want)
			}
			for _, e := range p.Events {
				if e.TenantID != tenant {
					t.Fatal("another tenant's event in the result")
				}
			}
		})
	}
}
