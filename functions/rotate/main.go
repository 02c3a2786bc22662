// Command rotate rotates one tenant's credential: the manual and bulk
// rotation routes of the HTTP API, and the worker of RotateQueue (SQS
// batches with partial failures reported).
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("rotate")
}
