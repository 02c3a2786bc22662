// Command recover re-creates a tenant's MailU admin on its new MailU after
// the VPS was lost (an on-demand invocation; docs/runbook.md).
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("recover")
}
