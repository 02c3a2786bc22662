package main

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/audit"
)

// TestCommandVerifiesChains runs the command's code against the local S3
// server configured the way dev.env configures it.
func TestCommandVerifiesChains(t *testing.T) {
	srv := devenv.StartTestS3(t)
	ctx := context.Background()
	t.Setenv("SMTP_VAULT_LOCAL", t.TempDir()) // no dev.env: the environment alone
	t.Setenv("S3_ENDPOINT", srv.Endpoint)
	t.Setenv("S3_REGION", devenv.S3Region)
	t.Setenv("S3_ACCESS_KEY", srv.AccessKey)
	t.Setenv("S3_SECRET_KEY", srv.SecretKey)
	const bucket = "unlocked"
	if err := srv.CreateBucket(ctx, bucket, false); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUDIT_BUCKET", bucket)
	good, bad := uuid.NewString(), uuid.NewString()
	rec := audit.NewRecorder(nil, audit.NewBucket(srv.Client(), bucket, 0))
	for _, tn := range []string{good, bad, good, bad, bad, ""} {
		if err := rec.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: tn, UserID: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []string{good, audit.PlatformChain} {
		if broken, err := run(ctx, c, false); err != nil || broken {
			t.Fatalf("chain %s: broken %v, %v", c, broken, err)
		}
	}
	if _, err := srv.Client().DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(audit.ChainKey(bad, 2))}); err != nil {
		t.Fatal(err)
	}
	if broken, err := run(ctx, bad, false); err != nil || !broken {
		t.Fatalf("chain with a deleted record: broken %v, %v", broken, err)
	}
	if broken, err := run(ctx, "", true); err != nil || !broken {
		t.Fatalf("-all: broken %v, %v", broken, err)
	}
	chains, err := listChains(ctx, srv.Client(), bucket)
	if err != nil || len(chains) != 3 || !strings.Contains(strings.Join(chains, " "), audit.PlatformChain) {
		t.Fatalf("chains %v, %v", chains, err)
	}
}
