// Command console serves the admin console. Its issue has not landed yet: it answers 501 Not
// Implemented (an error for non-HTTP invocations) and fakes nothing.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"smtp-vault/shared/api"
)

func main() {
	lambda.Start(api.NotImplemented("console"))
}
