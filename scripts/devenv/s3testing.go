package devenv

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// StartTestS3 starts an S3 server (with the audit bucket) in a temporary
// folder and stops it when the test ends; for tests of the audit trail
// that need no Vault. Without a versitygw binary the test fails; it never
// skips.
func StartTestS3(t testing.TB) *S3 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	s, err := StartS3(ctx, t.TempDir(), addr)
	if err != nil {
		t.Fatalf("start test S3 server: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// BucketText returns every version of every object in bucket, joined:
// what a test searches for secrets that must never be there.
func (s *S3) BucketText(t testing.TB, bucket string) string {
	t.Helper()
	ctx := context.Background()
	c := s.Client()
	var b strings.Builder
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(bucket)}
	for {
		out, err := c.ListObjectVersions(ctx, in)
		if err != nil {
			t.Fatalf("list versions of %s: %v", bucket, err)
		}
		for _, v := range out.Versions {
			o, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: v.Key, VersionId: v.VersionId})
			if err != nil {
				t.Fatalf("get %s: %v", aws.ToString(v.Key), err)
			}
			body, _ := io.ReadAll(o.Body)
			o.Body.Close()
			b.Write(body)
			b.WriteByte('\n')
		}
		if !aws.ToBool(out.IsTruncated) {
			return b.String()
		}
		in.KeyMarker, in.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
}
