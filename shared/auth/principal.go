package auth

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// Role is a role a principal may hold, as named in the token's roles claim.
type Role string

const (
	RoleSupport       Role = "support-team"
	RolePlatformAdmin Role = "platform-admin"
)

// knownRoles are the roles this service understands; any other value in the
// roles claim is ignored so that a typo or a foreign role grants nothing.
var knownRoles = []Role{RoleSupport, RolePlatformAdmin}

// DefaultRolesClaim is the claim that holds roles when none is configured.
const DefaultRolesClaim = "roles"

// Principal is a verified caller.
type Principal struct {
	Subject string
	Roles   []Role
}

// Has reports whether the principal holds r.
func (p Principal) Has(r Role) bool { return slices.Contains(p.Roles, r) }

// Require returns nil if p holds at least one of the allowed roles, and an
// error wrapping ErrForbidden otherwise (including when allowed is empty).
func Require(p Principal, allowed ...Role) error {
	for _, r := range allowed {
		if p.Has(r) {
			return nil
		}
	}
	return fmt.Errorf("%w: requires one of the roles %v", ErrForbidden, allowed)
}

// principalFromPayload builds the principal from a verified token's JSON
// payload: "sub" is required, and the roles are the known ones listed in
// the roles claim when, and only when, it is a JSON array of strings.
func principalFromPayload(payload []byte, rolesClaim string) (Principal, error) {
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(payload, &claims); err != nil {
		return Principal{}, fmt.Errorf("%w: malformed claims", ErrUnauthenticated)
	}
	var sub string
	if json.Unmarshal(claims["sub"], &sub) != nil || strings.TrimSpace(sub) == "" {
		return Principal{}, fmt.Errorf("%w: token has no subject", ErrUnauthenticated)
	}
	if rolesClaim == "" {
		rolesClaim = DefaultRolesClaim
	}
	p := Principal{Subject: strings.TrimSpace(sub)}
	var names []string
	if json.Unmarshal(claims[rolesClaim], &names) != nil {
		return p, nil // absent, a string, or not an array of strings: no roles
	}
	for _, name := range names {
		r := Role(name)
		if slices.Contains(knownRoles, r) && !p.Has(r) {
			p.Roles = append(p.Roles, r)
		}
	}
	return p, nil
}
