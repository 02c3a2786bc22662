package reauth

import (
	"testing"

	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/pathseg/pathsegtest"
)

// TestPathConstructors: the attempt record's KV path refuses a user name
// that pathseg refuses, and vaultUser (the entry) agrees with it.
func TestPathConstructors(t *testing.T) {
	a := &attempts{}
	pathsegtest.Refuses(t, "attempts.path", pathseg.StaffName, a.path)
	for _, v := range pathsegtest.Bad(pathseg.StaffName) {
		if u, ok := vaultUser(v); ok && pathseg.Check(pathseg.StaffName, u) != nil {
			t.Errorf("vaultUser(%q) = %q, accepted", v, u)
		}
	}
}
