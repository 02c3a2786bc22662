// Command emergency-reset resets a compromised credential. Its issue has not
// landed yet: an HTTP request passes the access checks of its route
// (bearer token, role, re-auth; see api.Routes) and then gets 501 Not
// Implemented; other invocations get an error. It fakes nothing.
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("emergency-reset")
}
