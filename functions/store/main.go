// Command store is the store function: it generates a tenant's MailU admin
// password, sets it in MailU, proves it over SMTP AUTH and keeps it
// encrypted in Vault. Invoked by the provisioning flow or the API.
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("store")
}
