// Command audit is the audit function: the query route of a tenant's
// audit trail (GET .../smtp-credentials/audit) and the verify invocation
// that walks a chain ({"action":"verify","tenant_id":"..."}).
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("audit")
}
