package app

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
)

// Main is the whole main of a function that needs the wiring: it builds
// the App from the environment and starts the Lambda runtime with the
// handler that pick chooses. A configuration error ends the process before
// the runtime starts, so Lambda reports an init error.
func Main(function string, pick func(*App) any) {
	a, err := FromEnvironment(context.Background())
	if err != nil {
		slog.Error(function+": start", "error", err)
		os.Exit(1)
	}
	lambda.Start(pick(a))
}
