// Command retrieve is the retrieve function: it shows a tenant's credential
// to platform staff.
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("retrieve")
}
