package backup

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"

	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/pathseg/pathsegtest"
)

// TestPathConstructors: every S3 key a backup name becomes refuses a name
// that pathseg refuses, before the bucket is asked; objectName builds only
// names pathseg accepts.
func TestPathConstructors(t *testing.T) {
	b := &Bucket{Client: refusingS3{}}
	ctx := context.Background()
	pathsegtest.Refuses(t, "Bucket.open", pathseg.BackupName, func(v string) string { _, _ = b.open(ctx, v); return v })
	pathsegtest.Refuses(t, "Bucket.remove", pathseg.BackupName, func(v string) string { _ = b.remove(ctx, v); return v })
	for _, at := range []time.Time{time.Date(2026, 12, 4, 2, 0, 0, 0, time.UTC), time.Date(2030, 1, 1, 23, 59, 59, 999999999, time.FixedZone("x", 3600))} {
		if err := pathseg.Check(pathseg.BackupName, objectName(at)); err != nil {
			t.Errorf("objectName(%v) = %q: %v", at, objectName(at), err)
		}
	}
}

// refusingS3 answers every read and delete with an error.
type refusingS3 struct{ S3API }

func (refusingS3) GetObject(context.Context, *s3.GetObjectInput, ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return nil, errors.New("refused")
}

func (refusingS3) DeleteObject(context.Context, *s3.DeleteObjectInput, ...func(*s3.Options)) (*s3.DeleteObjectOutput, error) {
	return nil, errors.New("refused")
}
