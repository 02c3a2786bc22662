package audit_test

import (
	"bufio"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/uuid"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/audit"
)

// TestOneTransitCallPerInstanceAndEveryHashOnTheStream: an instance asks
// Transit for its MAC key once, however many records it writes (no Vault
// round trip per record), and puts each record's hash on the audit
// stream, so CloudWatch Logs holds the chain outside the bucket.
func TestOneTransitCallPerInstanceAndEveryHashOnTheStream(t *testing.T) {
	srv := devenv.StartTestS3(t)
	c := srv.Client()
	ctx := context.Background()
	tr := &countingTransit{Transit: functionsVault(t)}
	var lines strings.Builder
	b := audit.NewBucket(audit.BucketConfig{Client: c, Name: devenv.AuditBucket, RetentionYears: 1, Keys: audit.NewKeys(tr, devenv.AuditMACKey), Lines: &lines})
	rec := audit.NewRecorder(nil, b)
	tenants := []string{uuid.NewString(), uuid.NewString(), ""}
	const each = 10
	for i := range each * len(tenants) {
		if err := rec.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: tenants[i%len(tenants)]}); err != nil {
			t.Fatal(err)
		}
	}
	if d, u := tr.dataKeys.Load(), tr.decrypts.Load(); d != 1 || u != 0 {
		t.Fatalf("%d data keys and %d decrypts for %d records, want 1 and 0", d, u, each*len(tenants))
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(lines.String()))
	for sc.Scan() {
		var lt map[string]any
		if err := json.Unmarshal(sc.Bytes(), &lt); err != nil {
			t.Fatal(err)
		}
		key := audit.ChainKey(lt["chain"].(string), uint64(lt["seq"].(float64)))
		if lt["log_type"] != "audit_chain" || lt["hash"] != audit.Hash(getObject(t, c, devenv.AuditBucket, key, nil)) || lt["event_id"] == "" {
			t.Fatalf("line %s does not carry the hash of %s", sc.Text(), key)
		}
		n++
	}
	if n != each*len(tenants) {
		t.Fatalf("%d lines, want one per record", n)
	}
	// Another instance verifying unwraps that one key once.
	tr2 := &countingTransit{Transit: functionsVault(t)}
	v := audit.NewBucket(audit.BucketConfig{Client: c, Name: devenv.AuditBucket, Keys: audit.NewKeys(tr2, devenv.AuditMACKey)})
	for _, tn := range []string{tenants[0], tenants[1], audit.PlatformChain} {
		rep, err := v.Verify(ctx, tn)
		if err != nil || !rep.Intact {
			t.Fatalf("verify %s: %+v %v", tn, rep, err)
		}
	}
	if tr2.decrypts.Load() != 1 || tr2.dataKeys.Load() != 0 {
		t.Fatalf("verifying: %d decrypts, %d data keys; want 1 and 0", tr2.decrypts.Load(), tr2.dataKeys.Load())
	}
}
