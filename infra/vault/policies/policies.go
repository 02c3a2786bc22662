// Package policies holds the Vault policies of smtp-vault, one HCL file
// per identity, embedded so that scripts/vault-setup writes exactly these
// wherever it runs.
package policies

import (
	"embed"
	"fmt"
)

//go:embed *.hcl
var files embed.FS

// Functions are the Lambda functions, each with its own Vault policy
// (smtp-vault-<function>) and its own role in Vault's auth methods.
var Functions = []string{
	"store", "retrieve", "reauth", "rotate", "rotate-sweep",
	"emergency-reset", "audit", "backup", "recover", "console",
}

// Names of the policies that are not a function's.
const (
	Operator   = "smtp-vault-operator"    // inspect, rotate the master key; never decrypt
	Rekey      = "smtp-vault-rekey"       // scripts/rekey
	StaffAdmin = "smtp-vault-staff-admin" // scripts/staff
)

// ForFunction is the name of a function's policy.
func ForFunction(function string) string { return "smtp-vault-" + function }

// All names every policy: the functions', then the operators'.
func All() []string {
	out := make([]string, 0, len(Functions)+3)
	for _, f := range Functions {
		out = append(out, ForFunction(f))
	}
	return append(out, Operator, Rekey, StaffAdmin)
}

// Text returns the HCL of the named policy.
func Text(name string) (string, error) {
	b, err := files.ReadFile(name + ".hcl")
	if err != nil {
		return "", fmt.Errorf("policies: no policy %q: %w", name, err)
	}
	return string(b), nil
}
