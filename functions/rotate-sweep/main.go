// Command rotate-sweep is the daily 02:00 UTC rotation sweep (EventBridge):
// it reads every tenant's KV metadata without decrypting anything, sends
// the day-173 notices, and rotates or resumes the tenants that need it,
// fanning out to RotateQueue beyond its own budget.
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("rotate-sweep")
}
