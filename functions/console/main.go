// Command console serves the admin console: its pages, stylesheet and
// script (shared/console), the overview API (GET
// /api/v1/platform-admin/smtp-credentials), Vault's health and the
// console's viewing events (api.Deps.ConsoleFunction).
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("console")
}
