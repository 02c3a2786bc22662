// Command backup is the backup function: every night (EventBridge, 02:00
// UTC) it takes an encrypted raft snapshot of Vault into the backups
// bucket and applies retention; invoked with {"restore": {...}} it
// restores a backup into a fresh Vault and checks every credential, with
// {"verify": {...}} it checks every credential of its own Vault.
package main

import "smtp-vault/shared/app"

func main() {
	app.Main("backup")
}
