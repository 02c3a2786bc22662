package app

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

// Main is the whole main of a function that needs the wiring: it builds
// the App from the environment and starts the Lambda runtime with the
// function's handler from Handlers. A configuration error ends the process
// before the runtime starts, so Lambda reports an init error.
func Main(function string) {
	a, err := FromEnvironment(context.Background())
	if err != nil {
		slog.Error(function+": start", "error", err)
		os.Exit(1)
	}
	h, ok := a.Handlers()[function]
	if !ok {
		slog.Error(function+": start", "error", "no such function in app.Handlers")
		os.Exit(1)
	}
	lambda.Start(h)
}
