package app

import (
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"smtp-vault/shared/alert"
	"smtp-vault/shared/tracing"
)

// s3Client returns the client of the audit and alert-state buckets, or
// nil when neither is configured (only tests of the wiring;
// FromEnvironment requires the audit bucket). With S3_ENDPOINT it speaks
// path-style to that server; otherwise it is AWS S3 with the function
// role's credentials.
func s3Client(cfg Config, loadAWS func() (aws.Config, error)) (*s3.Client, error) {
	if cfg.AuditBucket == "" && cfg.AlertStateBucket == "" {
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
	return s3.NewFromConfig(c, func(o *s3.Options) {
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
	}), nil
}

// alertState is where the alert rules count: the state bucket when one
// is configured, the KV mount otherwise.
func alertState(cfg Config, client *s3.Client, v alert.Vault) alert.State {
	if cfg.AlertStateBucket != "" && client != nil {
		return alert.BucketState{Client: client, Bucket: cfg.AlertStateBucket, Prefix: "alerts/"}
	}
	return alert.VaultState{Vault: v, Mount: cfg.AlertsMount}
}
