// Command audit-verify walks audit hash chains in the audit bucket and
// reports the first break of each (exit status 1 when one is broken).
//
//	go run ./scripts/audit-verify -tenant <tenant_id>   one tenant
//	go run ./scripts/audit-verify -chain platform       events without a tenant
//	go run ./scripts/audit-verify -all                  every chain in the bucket
//
// It reads the bucket only, with any S3 credentials allowed to list and
// get: locally those of .local/dev.env (S3_ENDPOINT, S3_ACCESS_KEY,
// S3_SECRET_KEY, AUDIT_BUCKET, read from the environment or that file); in
// AWS, AUDIT_BUCKET and the caller's own AWS credentials. The audit
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
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/progress"
	"smtp-vault/shared/audit"
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
	b := audit.NewBucket(client, bucketName, 0)
	chains := []string{chain}
	if all {
		if chains, err = listChains(ctx, client, bucketName); err != nil {
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
		switch {
		case !rep.Intact:
			broken = true
			line := fmt.Sprintf("chain %s: BROKEN at record %d (%s): %s", c, rep.Break.Seq, rep.Break.Key, rep.Break.Problem)
			if bar != nil {
				bar.Printf("%s", line)
			} else {
				fmt.Fprintln(os.Stderr, line)
			}
		case bar == nil:
			fmt.Fprintf(os.Stderr, "chain %s: intact, %d records, head %d %s\n", c, rep.Records, rep.HeadSeq, rep.HeadHash)
		}
		if bar != nil {
			bar.Add(1)
		}
	}
	return broken, nil
}

// listChains names every chain with records in the bucket.
func listChains(ctx context.Context, c *s3.Client, bucket string) ([]string, error) {
	chains := []string{}
	out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("platform/"), MaxKeys: aws.Int32(1)})
	if err != nil {
		return nil, err
	}
	if len(out.Contents) > 0 {
		chains = append(chains, audit.PlatformChain)
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String("tenants/"), Delimiter: aws.String("/")}
	for {
		out, err := c.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, err
		}
		for _, p := range out.CommonPrefixes {
			id := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), "tenants/"), "/")
			if audit.ValidChain(id) {
				chains = append(chains, id)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return chains, nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
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
	dir := os.Getenv("SMTP_VAULT_LOCAL")
	if dir == "" {
		root, err := devenv.RepoRoot()
		if err != nil {
			return
		}
		dir = filepath.Join(root, ".local")
	}
	env, err := devenv.ReadEnvFile(filepath.Join(dir, "dev.env"))
	if err != nil {
		return
	}
	for _, k := range []string{"S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY", "S3_SECRET_KEY", "AUDIT_BUCKET"} {
		if v, ok := env[k]; ok && os.Getenv(k) == "" {
			os.Setenv(k, v)
		}
	}
}
