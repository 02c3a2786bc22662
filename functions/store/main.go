// Command store is the store function: it generates a tenant's MailU admin
// password, sets it in MailU, proves it over SMTP AUTH and keeps it
// encrypted in Vault. Invoked by the provisioning flow or the API.
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
		slog.Error("store: start", "error", err)
		os.Exit(1)
	}
	lambda.Start(a.API.StoreFunction())
}
