package templatecheck

import (
	"regexp"
	"slices"
	"testing"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/scripts/vaultsetup"
)

// TestOneVaultIdentityPerFunction: every function logs in as its own
// Vault role (VAULT_AWS_ROLE), which scripts/vault-setup creates with the
// function's own policy and binds to the IAM role the template outputs
// for it; the server id every login signs is a required parameter.
func TestOneVaultIdentityPerFunction(t *testing.T) {
	tpl := loadTemplate(t)
	names := sortedKeys(tpl.functions)
	if !slices.Equal(names, slices.Sorted(slices.Values(policies.Functions))) {
		t.Fatalf("template functions %v, policies.Functions %v: one Vault identity per function", names, policies.Functions)
	}
	if v := get(tpl.root, "Globals", "Function", "Environment", "Variables", "VAULT_AWS_ROLE"); v != nil {
		t.Errorf("Globals set VAULT_AWS_ROLE (%s): one role for every function", describe(v))
	}
	outputs := get(tpl.root, "Outputs")
	for _, name := range names {
		fn := tpl.functions[name]
		if got := literal(get(fn.node, "Properties", "Environment", "Variables", "VAULT_AWS_ROLE")); got != vaultsetup.RoleName(name) {
			t.Errorf("%s: VAULT_AWS_ROLE = %q, want %q", fn.logicalID, got, vaultsetup.RoleName(name))
		}
		if _, err := policies.Text(policies.ForFunction(name)); err != nil {
			t.Errorf("%s: %v", fn.logicalID, err)
		}
		out := get(outputs, fn.logicalID+"RoleArn", "Value")
		if res, att := getAtt(out); res != fn.logicalID+"Role" || att != "Arn" {
			t.Errorf("Outputs.%sRoleArn = %s, want !GetAtt %sRole.Arn (vault-setup -stack-outputs reads it)", fn.logicalID, describe(out), fn.logicalID)
		}
		if vaultsetup.StackOutputKey(name) != fn.logicalID+"RoleArn" {
			t.Errorf("vault-setup reads %s's role from output %s, the template names it %sRoleArn", name, vaultsetup.StackOutputKey(name), fn.logicalID)
		}
	}
	p := get(tpl.root, "Parameters", "VaultAwsServerId")
	if get(p, "Default") != nil || literal(get(p, "MinLength")) != "1" {
		t.Errorf("VaultAwsServerId must be required (no Default, MinLength 1): logins without a server id can be replayed")
	}
}

// TestVaultCAReachesEveryFunction: the VaultCaCertPem parameter reaches
// every function as VAULT_CACERT_BYTES (Globals), which shared/app reads
// into the Vault client's roots; its pattern takes empty or PEM only.
func TestVaultCAReachesEveryFunction(t *testing.T) {
	tpl := loadTemplate(t)
	v := get(tpl.root, "Globals", "Function", "Environment", "Variables", "VAULT_CACERT_BYTES")
	if got := refTarget(v); got != "VaultCaCertPem" {
		t.Fatalf("Globals VAULT_CACERT_BYTES = %s, want !Ref VaultCaCertPem", describe(v))
	}
	for _, name := range sortedKeys(tpl.functions) {
		fn := tpl.functions[name]
		if get(fn.node, "Properties", "Environment", "Variables", "VAULT_CACERT_BYTES") != nil {
			t.Errorf("%s overrides VAULT_CACERT_BYTES", fn.logicalID)
		}
	}
	p := get(tpl.root, "Parameters", "VaultCaCertPem")
	if literal(get(p, "Default")) != "" {
		t.Errorf("VaultCaCertPem's default must be empty (the system's roots only)")
	}
	pattern, err := regexp.Compile(literal(get(p, "AllowedPattern")))
	if err != nil {
		t.Fatal(err)
	}
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	for in, want := range map[string]bool{"": true, pem: true, "hello": false, "https://ca.example/ca.pem": false} {
		if pattern.MatchString(in) != want {
			t.Errorf("VaultCaCertPem pattern on %q: %v, want %v", in, !want, want)
		}
	}
}

// TestFixedVaultNamesAreEnforced: the mount and key parameters that
// scripts/vault-setup and the policies hard-code take that one value only,
// so a deploy with another fails at once instead of deploying functions
// whose every Vault request is refused.
func TestFixedVaultNamesAreEnforced(t *testing.T) {
	tpl := loadTemplate(t)
	for param, want := range map[string]string{
		"VaultKvMount":       vaultsetup.KVMount,
		"VaultTransitMount":  vaultsetup.TransitMount,
		"VaultTransitKey":    vaultsetup.TransitKey,
		"VaultReauthKey":     vaultsetup.ReauthKey,
		"VaultUserpassMount": vaultsetup.UserpassMount,
		"VaultAccessMount":   vaultsetup.AccessMount,
	} {
		p := get(tpl.root, "Parameters", param)
		if p == nil {
			t.Errorf("no parameter %s", param)
			continue
		}
		if got := literal(get(p, "Default")); got != want {
			t.Errorf("%s default %q, vault-setup uses %q", param, got, want)
		}
		if got := literals(get(p, "AllowedValues")); !slices.Equal(got, []string{want}) {
			t.Errorf("%s AllowedValues %q, want only %q", param, got, want)
		}
	}
}
