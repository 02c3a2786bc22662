package auth

import (
	"errors"
	"slices"
	"testing"
)

// TestPrincipalFromPayload: roles come only from a JSON array of strings
// in the token; every string form, however list-like, grants nothing.
func TestPrincipalFromPayload(t *testing.T) {
	both := []Role{RoleSupport, RolePlatformAdmin}
	tests := []struct {
		name       string
		payload    string
		rolesClaim string
		want       []Role
		wantErr    error
	}{
		{"JSON array", `{"sub":"a","roles":["support-team","platform-admin"]}`, "", both, nil},
		{"unknown roles dropped", `{"sub":"a","roles":["admin","support-team","root","Platform-Admin"]}`, "", []Role{RoleSupport}, nil},
		{"duplicates collapse", `{"sub":"a","roles":["support-team","support-team"]}`, "", []Role{RoleSupport}, nil},
		{"custom claim", `{"sub":"a","cognito:groups":["platform-admin"],"roles":["support-team"]}`, "cognito:groups", []Role{RolePlatformAdmin}, nil},
		{"API Gateway rendering", `{"sub":"a","roles":"[support-team platform-admin]"}`, "", nil, nil},
		{"single string", `{"sub":"a","roles":"platform-admin"}`, "", nil, nil},
		{"space separated", `{"sub":"a","roles":"x platform-admin"}`, "", nil, nil},
		{"comma separated", `{"sub":"a","roles":"support-team,platform-admin"}`, "", nil, nil},
		{"array of non-strings", `{"sub":"a","roles":[1,true]}`, "", nil, nil},
		{"no roles claim", `{"sub":"a"}`, "", nil, nil},
		{"empty array", `{"sub":"a","roles":[]}`, "", nil, nil},
		{"missing sub", `{"roles":["platform-admin"]}`, "", nil, ErrUnauthenticated},
		{"blank sub", `{"sub":"  ","roles":["platform-admin"]}`, "", nil, ErrUnauthenticated},
		{"numeric sub", `{"sub":7,"roles":["platform-admin"]}`, "", nil, ErrUnauthenticated},
		{"not an object", `[]`, "", nil, ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := principalFromPayload([]byte(tt.payload), tt.rolesClaim)
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
