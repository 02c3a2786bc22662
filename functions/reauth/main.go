// Command reauth is the re-authentication function: staff prove password
// and TOTP code again (checked by Vault) and get a short-lived re-auth
// token that the credential routes require.
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("reauth")
}
