// Package tracing is the project's only seam to AWS X-Ray. The X-Ray Go SDK
// reaches end of support in February 2027; replacing it with OpenTelemetry's
// X-Ray exporter changes this package and nothing else.
//
// Tracing is on only when TRACING=xray (template.yaml sets it); locally it
// is off and silent.
package tracing

import (
	"context"
	"net/http"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-xray-sdk-go/instrumentation/awsv2"
	"github.com/aws/aws-xray-sdk-go/xray"
	"github.com/aws/aws-xray-sdk-go/xraylog"
)

// Enabled reports whether traces are sent.
func Enabled() bool { return os.Getenv("TRACING") == "xray" }

func init() {
	if !Enabled() {
		// The SDK logs to stdout by default; keep local runs and the audit
		// stream free of its lines.
		xray.SetLogger(xraylog.NullLogger)
	}
}

// HTTPClient returns c instrumented to record each request as a
// subsegment (URL and status only; bodies and headers are not recorded).
func HTTPClient(c *http.Client) *http.Client {
	if c == nil {
		c = &http.Client{}
	}
	if !Enabled() {
		return c
	}
	return xray.Client(c)
}

// InstrumentAWS adds X-Ray subsegments to every AWS SDK v2 call made with
// cfg.
func InstrumentAWS(cfg *aws.Config) {
	if Enabled() {
		awsv2.AWSV2Instrumentor(&cfg.APIOptions)
	}
}

// Capture runs fn inside a named subsegment.
func Capture(ctx context.Context, name string, fn func(context.Context) error) error {
	if !Enabled() {
		return fn(ctx)
	}
	return xray.Capture(ctx, name, fn)
}
