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

// PrincipalFromClaims builds the principal from verified claims as API
// Gateway passes them to a Lambda (requestContext.authorizer.jwt.claims).
// The subject ("sub") is required. The roles claim (DefaultRolesClaim when
// rolesClaim is empty) may be API Gateway's rendering of an array ("[a b]"),
// a JSON array ("[\"a\",\"b\"]"), or one or more roles separated by spaces
// or commas; roles this service does not know are dropped. A missing roles
// claim yields a principal with no roles, which Require then refuses.
func PrincipalFromClaims(claims map[string]string, rolesClaim string) (Principal, error) {
	sub := strings.TrimSpace(claims["sub"])
	if sub == "" {
		return Principal{}, fmt.Errorf("%w: token has no subject", ErrUnauthenticated)
	}
	if rolesClaim == "" {
		rolesClaim = DefaultRolesClaim
	}
	p := Principal{Subject: sub}
	for _, name := range splitRoles(claims[rolesClaim]) {
		r := Role(name)
		if slices.Contains(knownRoles, r) && !p.Has(r) {
			p.Roles = append(p.Roles, r)
		}
	}
	return p, nil
}

// splitRoles reads the formats a roles claim arrives in.
func splitRoles(v string) []string {
	v = strings.TrimSpace(v)
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		var list []string
		if json.Unmarshal([]byte(v), &list) == nil {
			return list
		}
		// API Gateway renders a JSON array as "[a b]".
		v = v[1 : len(v)-1]
	}
	return strings.FieldsFunc(v, func(c rune) bool {
		return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r'
	})
}
