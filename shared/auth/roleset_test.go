package auth

import (
	"slices"
	"testing"
)

func TestRoleSet(t *testing.T) {
	both := NewRoleSet(RolePlatformAdmin, RoleSupport)
	admins := NewRoleSet(RolePlatformAdmin)
	if !slices.Equal(both.Roles(), []Role{RoleSupport, RolePlatformAdmin}) || both.String() != "support-team, platform-admin" {
		t.Fatalf("both: %v %q", both.Roles(), both)
	}
	if admins.Has(RoleSupport) || !admins.Has(RolePlatformAdmin) {
		t.Fatal("admins set")
	}
	if NewRoleSet("root", "Platform-Admin") != 0 || NewRoleSet().String() != "" {
		t.Fatal("unknown roles must grant nothing")
	}
	if NewRoleSet(RoleSupport, RoleSupport) != NewRoleSet(RoleSupport) {
		t.Fatal("sets are not comparable values")
	}
	support := Principal{Subject: "s", Roles: []Role{RoleSupport}}
	if admins.Allows(support) || !both.Allows(support) || both.Allows(Principal{Subject: "n"}) {
		t.Fatal("Allows")
	}
}
