package auth

import (
	"slices"
	"strings"
)

// RoleSet is a set of the roles this service knows. It is a plain value,
// comparable with ==, so that a route table can be compared and used as a
// map key.
type RoleSet uint8

// NewRoleSet returns the set of roles rs. Roles this service does not know
// are left out, so that a typo grants nothing.
func NewRoleSet(rs ...Role) RoleSet {
	var s RoleSet
	for _, r := range rs {
		if i := slices.Index(knownRoles, r); i >= 0 {
			s |= 1 << i
		}
	}
	return s
}

// Has reports whether r is in the set.
func (s RoleSet) Has(r Role) bool {
	i := slices.Index(knownRoles, r)
	return i >= 0 && s&(1<<i) != 0
}

// Roles lists the set, in the order the service declares its roles.
func (s RoleSet) Roles() []Role {
	var out []Role
	for _, r := range knownRoles {
		if s.Has(r) {
			out = append(out, r)
		}
	}
	return out
}

// String is the roles separated by ", " ("" for the empty set).
func (s RoleSet) String() string {
	names := make([]string, 0, len(knownRoles))
	for _, r := range s.Roles() {
		names = append(names, string(r))
	}
	return strings.Join(names, ", ")
}

// Allows reports whether p holds at least one role of the set.
func (s RoleSet) Allows(p Principal) bool {
	for _, r := range p.Roles {
		if s.Has(r) {
			return true
		}
	}
	return false
}
