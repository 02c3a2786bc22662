package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// S3 is the part of the S3 API BucketState uses; *s3.Client implements it.
type S3 interface {
	GetObject(ctx context.Context, in *s3.GetObjectInput, opts ...func(*s3.Options)) (*s3.GetObjectOutput, error)
	PutObject(ctx context.Context, in *s3.PutObjectInput, opts ...func(*s3.Options)) (*s3.PutObjectOutput, error)
}

// BucketState keeps each record as a small JSON object in an S3 bucket
// without Object Lock (template.yaml's AlertStateBucket), changed with S3
// conditional writes: If-None-Match: * creates a record, If-Match: <ETag>
// replaces the version that was read. The version is the ETag.
//
// It is the store the functions use in AWS and locally: a write costs
// about what the audit record's own put costs, and the two run side by
// side, where a Vault KV write (a raft commit) took three times as long
// on every retrieve. A lifecycle rule deletes records nobody touched for
// days; the rules' windows are an hour at most, so an expired record and
// an empty one mean the same.
type BucketState struct {
	Client S3
	Bucket string
	Prefix string // before every key, e.g. "alerts/"
}

// maxStateBytes bounds what Read accepts; a record is a few hundred bytes.
const maxStateBytes = 64 << 10

// Read implements State.
func (s BucketState) Read(ctx context.Context, key string) (map[string]string, string, error) {
	out, err := s.Client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.Bucket), Key: aws.String(s.Prefix + key)})
	if isStatus(err, http.StatusNotFound, "NoSuchKey") {
		return map[string]string{}, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("read alert state %s: %w", key, err)
	}
	defer out.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(out.Body, maxStateBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("read alert state %s: %w", key, err)
	}
	data := map[string]string{}
	if len(raw) > maxStateBytes || json.Unmarshal(raw, &data) != nil {
		// Not a record this code wrote: start the key over rather than
		// stop evaluating it for good (the version still guards the write).
		data = map[string]string{}
	}
	return data, aws.ToString(out.ETag), nil
}

// Write implements State.
func (s BucketState) Write(ctx context.Context, key string, data map[string]string, version string) (string, error) {
	body, err := json.Marshal(data)
	if err != nil {
		return "", fmt.Errorf("encode alert state %s: %w", key, err)
	}
	in := &s3.PutObjectInput{
		Bucket:      aws.String(s.Bucket),
		Key:         aws.String(s.Prefix + key),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/json"),
	}
	if version == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(version)
	}
	out, err := s.Client.PutObject(ctx, in)
	switch {
	case isStatus(err, http.StatusPreconditionFailed, "PreconditionFailed"),
		isStatus(err, http.StatusConflict, "ConditionalRequestConflict"),
		// If-Match on a record the lifecycle rule deleted meanwhile.
		isStatus(err, http.StatusNotFound, "NoSuchKey"):
		return "", ErrConflict
	case err != nil:
		return "", fmt.Errorf("write alert state %s: %w", key, err)
	}
	return aws.ToString(out.ETag), nil
}

// isStatus reports whether err is S3's answer with that error code or
// HTTP status.
func isStatus(err error, status int, code string) bool {
	if err == nil {
		return false
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == code {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && re.HTTPStatusCode() == status
}
