package app

import (
	"context"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/tracing"
)

// auditBucket returns the audit trail in cfg.AuditBucket, or nil when no
// bucket is configured (only tests of the wiring; FromEnvironment
// requires one). With S3_ENDPOINT the client speaks path-style to that
// server; otherwise it is AWS S3 with the function role's credentials.
func auditBucket(_ context.Context, cfg Config, loadAWS func() (aws.Config, error)) (*audit.Bucket, error) {
	if cfg.AuditBucket == "" {
		return nil, nil
	}
	var c aws.Config
	if cfg.S3AccessKey != "" {
		c = aws.Config{Region: cfg.S3Region, Credentials: credentials.NewStaticCredentialsProvider(cfg.S3AccessKey, cfg.S3SecretKey, "")}
		tracing.InstrumentAWS(&c)
	} else {
		var err error
		if c, err = loadAWS(); err != nil {
			return nil, err
		}
	}
	client := s3.NewFromConfig(c, func(o *s3.Options) {
		if cfg.S3Region != "" {
			o.Region = cfg.S3Region
		}
		o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(cfg.S3Timeout).WithTransportOptions(func(t *http.Transport) {
			t.MaxIdleConnsPerHost = 16
		})
		if cfg.S3Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.S3Endpoint)
			o.UsePathStyle = true
		}
	})
	return audit.NewBucket(client, cfg.AuditBucket, cfg.AuditRetentionYears), nil
}
