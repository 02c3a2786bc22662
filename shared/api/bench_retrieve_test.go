package api_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/uuid"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/alert"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
)

// BenchmarkRetrieveVersusBareIO measures, in one run against the real
// local servers, a retrieve through the local gateway (JWT check, re-auth
// token check, KV read, Transit decrypt, audit to stdout and to the
// Object Lock bucket, alert rules) beside the bare I/O a retrieve cannot
// avoid: the same KV read, Transit decrypt and S3 put made directly. The
// two alternate, so both see the same machine load. It reports p50 and p99
// of each and their ratio (goal: at most 1.5).
//
//	go test -run '^$' -bench RetrieveVersusBareIO -benchtime 300x ./shared/api/
func BenchmarkRetrieveVersusBareIO(b *testing.B) {
	s := devenv.StartTestStack(b, 1)
	ctx := context.Background()
	tn := s.Tenants[0]
	bearer, rt, err := s.ReauthAs(auth.RoleSupport)
	if err != nil {
		b.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	req, _ := http.NewRequest("GET", s.APIURL+credPath(tn.TenantID), nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	req.Header.Set("X-Reauth-Token", rt)
	retrieve := func() {
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("retrieve: %d", resp.StatusCode)
		}
	}

	v := s.App.Vault
	cfg := s.App.Config
	s3c := s.S3.Client()
	record, _ := audit.EncodeRecord(audit.Record{Seq: 1, PrevHash: audit.GenesisHash, Event: audit.Event{
		ID: uuid.NewString(), Event: audit.CredentialsAccessed, TenantID: tn.TenantID, UserID: "sam",
		IP: "127.0.0.1", UserAgent: "Go-http-client/1.1", Timestamp: time.Now().UTC(), Severity: audit.Info,
	}})
	chain := uuid.NewString() // a chain of its own, so the keys stay fresh
	seq := uint64(0)
	bare := func() {
		sec, err := v.Read(ctx, tn.TenantID+"/admin")
		if err != nil {
			b.Fatal(err)
		}
		dk, err := v.Decrypt(ctx, cfg.TransitKey, tn.TenantID, sec.Data["data_key"])
		if err != nil || len(dk) != 32 {
			b.Fatal(err)
		}
		seq++
		_, err = s3c.PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(devenv.AuditBucket), Key: aws.String(audit.ChainKey(chain, seq)), Body: bytes.NewReader(record),
			ContentType: aws.String("application/json"), IfNoneMatch: aws.String("*"),
			ObjectLockMode: s3types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: aws.Time(time.Now().AddDate(cfg.AuditRetentionYears, 0, 0)),
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	// Where the difference goes: the two checks a retrieve makes
	// beyond the bare I/O, timed alone.
	subject := s.UserWithRole(auth.RoleSupport)
	reauthCheck := func() {
		if _, err := s.App.API.Reauthenticator.Verify(ctx, rt, subject); err != nil {
			b.Fatal(err)
		}
	}
	state := alert.BucketState{Client: s3c, Bucket: devenv.AlertStateBucket, Prefix: "bench/"}
	alertVersion := ""
	alertState := func() {
		n, err := state.Write(ctx, chain, map[string]string{"stamps": time.Now().UTC().Format(time.RFC3339Nano)}, alertVersion)
		if err != nil {
			b.Fatal(err)
		}
		alertVersion = n
	}
	// Warm every path (connections, the chain head cache, the Vault token).
	for range 5 {
		retrieve()
		bare()
		reauthCheck()
		alertState()
	}
	var tr, tb, tv, ta []time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		retrieve()
		t1 := time.Now()
		bare()
		t2 := time.Now()
		reauthCheck()
		t3 := time.Now()
		alertState()
		tr, tb = append(tr, t1.Sub(t0)), append(tb, t2.Sub(t1))
		tv, ta = append(tv, t3.Sub(t2)), append(ta, time.Since(t3))
	}
	b.StopTimer()
	pct := func(d []time.Duration, p float64) float64 {
		slices.Sort(d)
		return float64(d[int(p*float64(len(d)-1))].Microseconds()) / 1000
	}
	r50, r99, b50, b99 := pct(tr, 0.50), pct(tr, 0.99), pct(tb, 0.50), pct(tb, 0.99)
	b.ReportMetric(r50, "retrieve-p50-ms")
	b.ReportMetric(r99, "retrieve-p99-ms")
	b.ReportMetric(b50, "bare-p50-ms")
	b.ReportMetric(b99, "bare-p99-ms")
	b.ReportMetric(r50/b50, "ratio-p50")
	b.ReportMetric(r99/b99, "ratio-p99")
	b.ReportMetric(pct(tv, 0.5), "reauth-check-p50-ms")
	b.ReportMetric(pct(ta, 0.5), "alert-state-write-p50-ms")
	b.Logf("beyond the bare I/O a retrieve checks the re-auth token (ed25519, public key read from Transit once a minute; p50 %.2f ms) and updates the alert state (conditional S3 put, beside the audit put; p50 %.2f ms)", pct(tv, 0.5), pct(ta, 0.5))
	b.Logf("%d retrieves: p50 %.2f ms, p99 %.2f ms; bare I/O (KV read + Transit decrypt + S3 put): p50 %.2f ms, p99 %.2f ms; ratio p50 %.2f, p99 %.2f (goal <= 1.5)",
		len(tr), r50, r99, b50, b99, r50/b50, r99/b99)
}
