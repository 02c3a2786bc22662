// Command emergency-reset resets a compromised credential: one tenant
// through its HTTP route, or many as a compromise response (started over
// HTTP or invoked directly, fanned out over ResetQueue, followed through
// GET .../incidents/{incident_id}/compromise-response); see
// api.Deps.EmergencyResetFunction and docs/api.md.
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("emergency-reset")
}
