package vaultsetup

import (
	"testing"

	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/pathseg/pathsegtest"
)

// TestPathConstructors: every Vault path or name built from a staff name
// refuses what pathseg refuses; CheckName, the entry, lower-cases first.
func TestPathConstructors(t *testing.T) {
	s := &Staff{}
	pathsegtest.Refuses(t, "Staff.userPath", pathseg.StaffName, s.userPath)
	pathsegtest.Refuses(t, "entityName", pathseg.StaffName, entityName)
	for _, v := range pathsegtest.Bad(pathseg.StaffName) {
		if n, err := CheckName(v); err == nil && pathseg.Check(pathseg.StaffName, n) != nil {
			t.Errorf("CheckName(%q) = %q", v, n)
		}
	}
}
