package alert_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/alert"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/notify"
)

// checkCheckAndSet runs the State contract against a real store: a
// missing record reads empty, creation happens once, and a write naming a
// version that is no longer current is refused.
func checkCheckAndSet(t *testing.T, st alert.State) {
	t.Helper()
	ctx := context.Background()
	data, version, err := st.Read(ctx, "rule/alice")
	if err != nil || len(data) != 0 || version != "" {
		t.Fatalf("missing record: %v %q %v", data, version, err)
	}
	v1, err := st.Write(ctx, "rule/alice", map[string]string{"n": "1"}, "")
	if err != nil || v1 == "" {
		t.Fatalf("create: %q %v", v1, err)
	}
	if _, err := st.Write(ctx, "rule/alice", map[string]string{"n": "other"}, ""); !errors.Is(err, alert.ErrConflict) {
		t.Fatalf("a second create: %v, want ErrConflict", err)
	}
	v2, err := st.Write(ctx, "rule/alice", map[string]string{"n": "2"}, v1)
	if err != nil || v2 == "" || v2 == v1 {
		t.Fatalf("replace: %q %v", v2, err)
	}
	if _, err := st.Write(ctx, "rule/alice", map[string]string{"n": "stale"}, v1); !errors.Is(err, alert.ErrConflict) {
		t.Fatalf("a write of a stale version: %v, want ErrConflict", err)
	}
	data, version, err = st.Read(ctx, "rule/alice")
	if err != nil || data["n"] != "2" || version != v2 {
		t.Fatalf("after the refused writes: %v %q %v, want n=2 at %q", data, version, err, v2)
	}
}

// TestBucketStateAgainstTheLocalS3Server checks BucketState against the
// real S3 server (versitygw), then three engines sharing it.
func TestBucketStateAgainstTheLocalS3Server(t *testing.T) {
	srv := devenv.StartTestS3(t)
	st := alert.BucketState{Client: srv.Client(), Bucket: devenv.AlertStateBucket, Prefix: "alerts/"}
	ctx := context.Background()
	checkCheckAndSet(t, st)

	// Three instances share the bucket; twelve accesses of one user in
	// parallel: every one counted, one alert.
	var n notify.Memory
	var gs []*alert.Engine
	for range 3 {
		gs = append(gs, alert.New(st, &n, slog.New(slog.DiscardHandler)))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var fired []alert.Alert
	for i := range 12 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, err := gs[i%3].Evaluate(ctx, access("bob", noon.Add(time.Duration(i)*time.Second)))
			if err != nil {
				t.Errorf("evaluate: %v", err)
			}
			mu.Lock()
			fired = append(fired, a...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(fired) != 1 || fired[0].Rule != alert.RuleAccessBurst || fired[0].UserID != "bob" || fired[0].Count != alert.AccessLimit+1 {
		t.Fatalf("twelve parallel accesses fired %+v, want one burst alert counting %d", fired, alert.AccessLimit+1)
	}
	alerts, err := gs[0].Evaluate(ctx, access("bob", noon.Add(time.Minute)))
	if err != nil || len(alerts) != 0 {
		t.Fatalf("the thirteenth access: %v %v, want no new alert (the burst goes on)", alerts, err)
	}
	data, _, err := st.Read(ctx, alert.RuleAccessBurst+"/Ym9i")
	if err != nil || data["in_burst"] != "true" {
		t.Fatalf("bob's burst record: %v %v", data, err)
	}
}

// TestVaultStateAndTheStacksChoice: without ALERT_STATE_BUCKET the rules
// keep their counters in the KV v2 mount, which honours the same contract
// against the real Vault; the local stack sets the bucket, so an access
// leaves its counter there and none in Vault.
func TestVaultStateAndTheStacksChoice(t *testing.T) {
	s := devenv.StartTestStack(t, 1)
	ctx := context.Background()
	checkCheckAndSet(t, alert.VaultState{Vault: s.App.Vault, Mount: devenv.AlertsMount})

	if _, err := s.App.API.Credentials.Retrieve(ctx, s.Tenants[0].TenantID, credential.Actor{UserID: "sam", IP: "127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	listed, err := s.S3.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(devenv.AlertStateBucket), Prefix: aws.String("alerts/" + alert.RuleAccessBurst + "/")})
	if err != nil || len(listed.Contents) != 1 {
		t.Fatalf("access counters in the state bucket: %v %v, want 1", listed, err)
	}
	keys, err := s.Vault.Root().Logical().ListWithContext(ctx, devenv.AlertsMount+"/metadata")
	if err != nil {
		t.Fatal(err)
	}
	if keys == nil || len(keys.Data["keys"].([]any)) != 1 { // rule/ from the contract check only
		t.Fatalf("alert records in Vault: %v, want only the contract check's", keys)
	}
}
