// Command vault is the HashiCorp Vault server used for local runs and tests.
// It is built from the published github.com/hashicorp/vault module in this
// separate tool module so that the project's own go.mod stays free of
// Vault's server dependencies. Production uses the operator's Vault cluster.
package main

import (
	"os"

	"github.com/hashicorp/vault/command"
)

func main() {
	os.Exit(command.Run(os.Args[1:]))
}
