package api_test

import (
	"os"
	"strings"
	"testing"

	"smtp-vault/shared/api"
	"smtp-vault/shared/auth"
)

// TestRoutesAreWellFormed: every route is either public (the console's
// pages, outside /api/, which the JWT authorizer does not cover) or allows
// at least one role; re-auth is asked only where there is a caller.
func TestRoutesAreWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, r := range api.Routes {
		if seen[r.Key()] {
			t.Errorf("%s twice", r.Key())
		}
		seen[r.Key()] = true
		underAPI := strings.HasPrefix(r.Path, "/api/")
		switch {
		case r.Public && (underAPI || r.Roles != 0 || r.Reauth):
			t.Errorf("%s: a public route must be outside /api/, without roles or re-auth", r.Key())
		case !r.Public && (!underAPI || r.Roles == 0):
			t.Errorf("%s: a route under the authorizer must be under /api/ and allow a role", r.Key())
		}
	}
}

// TestAccessTableInDocs keeps docs/api.md's access table and api.Routes
// in step.
func TestAccessTableInDocs(t *testing.T) {
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[api.Route]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		cols := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cols) != 5 {
			continue
		}
		for i := range cols {
			cols[i] = strings.TrimSpace(cols[i])
		}
		if cols[0] != "GET" && cols[0] != "POST" {
			continue
		}
		r := api.Route{
			Method:   cols[0],
			Path:     strings.Trim(cols[1], "`"),
			Function: strings.Fields(cols[2])[0],
			Reauth:   cols[4] == "yes",
			Public:   cols[3] == "public",
		}
		if !r.Public {
			var roles []auth.Role
			for _, name := range strings.Split(cols[3], ",") {
				roles = append(roles, auth.Role(strings.TrimSpace(name)))
			}
			r.Roles = auth.NewRoleSet(roles...)
		}
		documented[r] = true
	}
	for _, r := range api.Routes {
		if !documented[r] {
			t.Errorf("docs/api.md does not list %s -> %s for [%v], re-auth %v, public %v", r.Key(), r.Function, r.Roles, r.Reauth, r.Public)
		}
		delete(documented, r)
	}
	for r := range documented {
		t.Errorf("docs/api.md lists %s -> %s for [%v], re-auth %v, which api.Routes does not have", r.Key(), r.Function, r.Roles, r.Reauth)
	}
}
