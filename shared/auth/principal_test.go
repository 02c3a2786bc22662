package auth

import (
	"errors"
	"slices"
	"testing"
)

func TestPrincipalFromClaims(t *testing.T) {
	both := []Role{RoleSupport, RolePlatformAdmin}
	tests := []struct {
		name       string
		claims     map[string]string
		rolesClaim string
		want       []Role
		wantErr    error
	}{
		{"API Gateway array", map[string]string{"sub": "a", "roles": "[support-team platform-admin]"}, "", both, nil},
		{"JSON array", map[string]string{"sub": "a", "roles": `["support-team","platform-admin"]`}, "", both, nil},
		{"JSON array with spaces", map[string]string{"sub": "a", "roles": `[ "support-team" , "platform-admin" ]`}, "", both, nil},
		{"single", map[string]string{"sub": "a", "roles": "platform-admin"}, "", []Role{RolePlatformAdmin}, nil},
		{"space separated", map[string]string{"sub": "a", "roles": "support-team  platform-admin"}, "", both, nil},
		{"comma separated", map[string]string{"sub": "a", "roles": "support-team,platform-admin"}, "", both, nil},
		{"comma and space", map[string]string{"sub": "a", "roles": "support-team, platform-admin"}, "", both, nil},
		{"bracketed with commas", map[string]string{"sub": "a", "roles": "[support-team, platform-admin]"}, "", both, nil},
		{"one-element API Gateway array", map[string]string{"sub": "a", "roles": "[support-team]"}, "", []Role{RoleSupport}, nil},
		{"unknown roles dropped", map[string]string{"sub": "a", "roles": "[admin support-team root Platform-Admin]"}, "", []Role{RoleSupport}, nil},
		{"duplicates collapse", map[string]string{"sub": "a", "roles": "support-team support-team"}, "", []Role{RoleSupport}, nil},
		{"custom claim", map[string]string{"sub": "a", "cognito:groups": "[platform-admin]", "roles": "support-team"}, "cognito:groups", []Role{RolePlatformAdmin}, nil},
		{"no roles claim", map[string]string{"sub": "a"}, "", nil, nil},
		{"empty array", map[string]string{"sub": "a", "roles": "[]"}, "", nil, nil},
		{"missing sub", map[string]string{"roles": "platform-admin"}, "", nil, ErrUnauthenticated},
		{"blank sub", map[string]string{"sub": "  ", "roles": "platform-admin"}, "", nil, ErrUnauthenticated},
		{"nil claims", nil, "", nil, ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := PrincipalFromClaims(tt.claims, tt.rolesClaim)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if p.Subject != "a" || !slices.Equal(p.Roles, tt.want) {
				t.Errorf("got %+v, want roles %v", p, tt.want)
			}
		})
	}
}

func TestRequire(t *testing.T) {
	support := Principal{Subject: "s", Roles: []Role{RoleSupport}}
	admin := Principal{Subject: "a", Roles: []Role{RolePlatformAdmin}}
	nobody := Principal{Subject: "n"}
	tests := []struct {
		name    string
		p       Principal
		allowed []Role
		ok      bool
	}{
		{"support may retrieve", support, []Role{RoleSupport, RolePlatformAdmin}, true},
		{"admin may retrieve", admin, []Role{RoleSupport, RolePlatformAdmin}, true},
		{"support may not store", support, []Role{RolePlatformAdmin}, false},
		{"admin may store", admin, []Role{RolePlatformAdmin}, true},
		{"no roles", nobody, []Role{RoleSupport}, false},
		{"nothing allowed", admin, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Require(tt.p, tt.allowed...)
			if tt.ok && err != nil {
				t.Fatalf("Require: %v", err)
			}
			if !tt.ok && !errors.Is(err, ErrForbidden) {
				t.Fatalf("Require = %v, want ErrForbidden", err)
			}
		})
	}
	if !admin.Has(RolePlatformAdmin) || admin.Has(RoleSupport) {
		t.Error("Has")
	}
}
