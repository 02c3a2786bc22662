// Command rotate-sweep finds credentials due for rotation every day at 02:00 UTC. Its issue has not landed yet: it answers 501 Not
// Implemented (an error for non-HTTP invocations) and fakes nothing.
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"smtp-vault/shared/api"
)

func main() {
	lambda.Start(api.NotImplemented("rotate-sweep"))
}
