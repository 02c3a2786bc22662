// Command console serves the admin console. The overview API (GET
// /api/v1/platform-admin/smtp-credentials) is served; the console's HTML
// pages are not built yet: a request passes the access checks of its
// route (see api.Routes) and then gets 501 Not Implemented.
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("console")
}
