package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/google/uuid"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/vault"
)

// TestCommandVerifiesChains runs the command's code against the local S3
// server and Vault configured the way dev.env configures them: an intact
// chain passes; a deleted record (missing), a record written by someone
// with bucket access only (forged) and two swapped records (reordered)
// are each reported, with exit status 1.
func TestCommandVerifiesChains(t *testing.T) {
	srv := devenv.StartTestS3(t)
	ctx := context.Background()
	vctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	addr, err := devenv.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	v, err := devenv.StartVault(vctx, t.TempDir(), addr)
	if err != nil {
		t.Fatalf("start vault: %v", err)
	}
	defer v.Stop()
	t.Setenv("SMTP_VAULT_LOCAL", t.TempDir()) // no dev.env: the environment alone
	t.Setenv("S3_ENDPOINT", srv.Endpoint)
	t.Setenv("S3_REGION", devenv.S3Region)
	t.Setenv("S3_ACCESS_KEY", srv.AccessKey)
	t.Setenv("S3_SECRET_KEY", srv.SecretKey)
	t.Setenv("VAULT_ADDR", v.Addr)
	t.Setenv("VAULT_TOKEN", v.OperatorToken)
	const bucket = "unlocked"
	if err := srv.CreateBucket(ctx, bucket, false); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AUDIT_BUCKET", bucket)
	fn, err := vault.New(vault.Config{Address: v.Addr, AuthMethod: vault.AuthAppRole, RoleID: v.RoleID, SecretID: v.SecretID})
	if err != nil {
		t.Fatal(err)
	}
	c := srv.Client()
	rec := audit.NewRecorder(nil, audit.NewBucket(audit.BucketConfig{Client: c, Name: bucket, Keys: audit.NewKeys(fn, devenv.AuditMACKey)}))
	good, missing, forged, reordered := uuid.NewString(), uuid.NewString(), uuid.NewString(), uuid.NewString()
	for _, tn := range []string{good, missing, forged, reordered, good, missing, forged, reordered, missing, reordered, ""} {
		if err := rec.Record(ctx, audit.Event{Event: audit.CredentialsAccessed, TenantID: tn, UserID: "alice"}); err != nil {
			t.Fatal(err)
		}
	}
	put := func(key string, body []byte) {
		t.Helper()
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
			t.Fatal(err)
		}
	}
	get := func(key string) []byte {
		t.Helper()
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
		if err != nil {
			t.Fatal(err)
		}
		defer out.Body.Close()
		b, _ := io.ReadAll(out.Body)
		return b
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String(audit.ChainKey(missing, 2))}); err != nil {
		t.Fatal(err)
	}
	k := audit.ChainKey(forged, 2)
	put(k, bytes.Replace(get(k), []byte(`"user_id":"alice"`), []byte(`"user_id":"bob"`), 1))
	b2, b3 := get(audit.ChainKey(reordered, 2)), get(audit.ChainKey(reordered, 3))
	put(audit.ChainKey(reordered, 2), b3)
	put(audit.ChainKey(reordered, 3), b2)

	for _, c := range []string{good, audit.PlatformChain} {
		if broken, err := run(ctx, c, false); err != nil || broken {
			t.Fatalf("chain %s: broken %v, %v", c, broken, err)
		}
	}
	for chain, kind := range map[string]string{missing: "MISSING", forged: "FORGED", reordered: "REORDERED"} {
		stderr := captureStderr(t, func() {
			if broken, err := run(ctx, chain, false); err != nil || !broken {
				t.Fatalf("chain %s: broken %v, %v", chain, broken, err)
			}
		})
		if !strings.Contains(stderr, kind+" at record 2") {
			t.Fatalf("chain %s: the report does not say %s at record 2:\n%s", chain, kind, stderr)
		}
	}
	if broken, err := run(ctx, "", true); err != nil || !broken {
		t.Fatalf("-all: broken %v, %v", broken, err)
	}
}

// captureStderr returns what fn wrote to os.Stderr.
func captureStderr(t *testing.T, fn func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stderr
	os.Stderr = w
	done := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		done <- string(b)
	}()
	defer func() { os.Stderr = old }()
	fn()
	w.Close()
	os.Stderr = old
	return <-done
}
