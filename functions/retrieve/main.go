// Command retrieve is the retrieve function: it shows a tenant's credential
// to platform staff.
package main

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"smtp-vault/shared/app"
)

func main() {
	a, err := app.FromEnvironment(context.Background())
	if err != nil {
		slog.Error("retrieve: start", "error", err)
		os.Exit(1)
	}
	lambda.Start(a.API.Retrieve())
}
