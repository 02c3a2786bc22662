// Command audit-verify walks audit hash chains in the audit bucket and
// reports every problem of each (exit status 1 when one has any): forged
// records (no valid MAC: written by someone without the functions' Vault
// access), missing ones (a gap below a valid record), reordered or moved
// ones, broken prev_hash links, malformed keys, overwrite or delete
// attempts, and a bucket that no longer ends at (or holds) the head
// anchored in Vault.
//
//	go run ./scripts/audit-verify -tenant <tenant_id>   one tenant
//	go run ./scripts/audit-verify -chain platform       events without a tenant
//	go run ./scripts/audit-verify -all                  every chain in the bucket
//
// It reads the bucket with any S3 credentials allowed to list and get, and
// needs Vault to unwrap the records' MAC keys (transit/decrypt on the MAC
// key) and read the anchors: locally the settings of .local/dev.env
// (S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY, AUDIT_BUCKET, VAULT_ADDR,
// VAULT_TOKEN, read from the environment or that file); in AWS,
// AUDIT_BUCKET, the caller's own AWS credentials and a VAULT_TOKEN with
// the operator policy. VAULT_AUDIT_MAC_KEY and VAULT_AUDIT_ANCHORS_MOUNT
// override the defaults (audit-mac, smtp-audit-anchors). The audit
// function's verify invocation (events/audit-verify.json) does the same
// inside AWS and records that it did.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/progress"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/vault"
)

func main() {
	tenant := flag.String("tenant", "", "tenant id whose chain to verify")
	chain := flag.String("chain", "", `chain to verify: a tenant id or "platform"`)
	all := flag.Bool("all", false, "verify every chain in the bucket")
	flag.Parse()
	if *tenant != "" {
		*chain = *tenant
	}
	if (*chain == "") == !*all {
		fmt.Fprintln(os.Stderr, "usage: audit-verify -tenant <tenant_id> | -chain platform | -all")
		os.Exit(2)
	}
	broken, err := run(context.Background(), *chain, *all)
	if err != nil {
		fmt.Fprintln(os.Stderr, "audit-verify:", err)
		os.Exit(2)
	}
	if broken {
		os.Exit(1)
	}
}

func run(ctx context.Context, chain string, all bool) (broken bool, err error) {
	loadDevEnv()
	bucketName := os.Getenv("AUDIT_BUCKET")
	if bucketName == "" {
		return false, errors.New("AUDIT_BUCKET is not set (and no .local/dev.env was found)")
	}
	client, err := s3Client(ctx)
	if err != nil {
		return false, err
	}
	vc, err := vault.New(vault.Config{Address: os.Getenv("VAULT_ADDR"), AuthMethod: vault.AuthToken, Token: os.Getenv("VAULT_TOKEN")})
	if err != nil {
		return false, fmt.Errorf("VAULT_ADDR and VAULT_TOKEN: %w", err)
	}
	b := audit.NewBucket(audit.BucketConfig{
		Client:  client,
		Name:    bucketName,
		Keys:    audit.NewKeys(vc, envOr("VAULT_AUDIT_MAC_KEY", "audit-mac")),
		Anchors: &audit.VaultAnchors{Vault: vc, Mount: envOr("VAULT_AUDIT_ANCHORS_MOUNT", "smtp-audit-anchors")},
	})
	chains := []string{chain}
	if all {
		if chains, err = b.Chains(ctx); err != nil {
			return false, err
		}
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	// With -all, stderr shows progress over the chains and the broken
	// ones; every report, intact or not, is on stdout.
	var bar *progress.Bar
	if all {
		bar = progress.New(os.Stderr, "verify chains", len(chains))
		defer bar.Finish()
	}
	for _, c := range chains {
		rep, err := b.Verify(ctx, c)
		if err != nil {
			return broken, err
		}
		if err := enc.Encode(rep); err != nil {
			return broken, err
		}
		if rep.Intact {
			if bar == nil {
				fmt.Fprintf(os.Stderr, "chain %s: intact, %d records, head %d %s\n", c, rep.Records, rep.HeadSeq, rep.HeadHash)
			} else {
				bar.Add(1)
			}
			continue
		}
		broken = true
		kinds := map[string]int{}
		for _, p := range rep.Problems {
			kinds[p.Kind]++
		}
		lines := []string{fmt.Sprintf("chain %s: %d PROBLEMS %v; %d valid records, head %d", c, rep.ProblemCount, kinds, rep.Records, rep.HeadSeq)}
		for _, p := range rep.Problems {
			lines = append(lines, fmt.Sprintf("  %s at record %d (%s): %s", strings.ToUpper(p.Kind), p.Seq, p.Key, p.Problem))
		}
		for _, line := range lines {
			if bar != nil {
				bar.Printf("%s", line)
			} else {
				fmt.Fprintln(os.Stderr, line)
			}
		}
		if bar != nil {
			bar.Add(1)
		}
	}
	return broken, nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func s3Client(ctx context.Context) (*s3.Client, error) {
	endpoint := os.Getenv("S3_ENDPOINT")
	if endpoint == "" {
		cfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return nil, err
		}
		return s3.NewFromConfig(cfg), nil
	}
	region := os.Getenv("S3_REGION")
	if region == "" {
		region = devenv.S3Region
	}
	return s3.New(s3.Options{
		Region:       region,
		BaseEndpoint: aws.String(endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(os.Getenv("S3_ACCESS_KEY"), os.Getenv("S3_SECRET_KEY"), ""),
	}), nil
}

// loadDevEnv fills unset variables from the local stack's dev.env.
func loadDevEnv() {
	devenv.LoadDevEnv("S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY", "S3_SECRET_KEY", "AUDIT_BUCKET", "VAULT_ADDR", "VAULT_TOKEN")
}
