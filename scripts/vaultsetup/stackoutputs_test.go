package vaultsetup

import (
	"encoding/json"
	"strings"
	"testing"

	"smtp-vault/infra/vault/policies"
)

func TestStackOutputKey(t *testing.T) {
	for fn, want := range map[string]string{
		"store":           "StoreFunctionRoleArn",
		"rotate-sweep":    "RotateSweepFunctionRoleArn",
		"emergency-reset": "EmergencyResetFunctionRoleArn",
	} {
		if got := StackOutputKey(fn); got != want {
			t.Errorf("StackOutputKey(%q) = %q, want %q", fn, got, want)
		}
	}
}

func TestRoleARNsFromStackOutputs(t *testing.T) {
	arn := func(fn string) string { return "arn:aws:iam::123456789012:role/stack-" + StackOutputKey(fn) }
	var list []map[string]string
	plain := map[string]string{"ApiUrl": "https://x"}
	for _, fn := range policies.Functions {
		list = append(list, map[string]string{"OutputKey": StackOutputKey(fn), "OutputValue": arn(fn), "Description": "d"})
		plain[StackOutputKey(fn)] = arn(fn)
	}
	asJSON := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	for _, tc := range []struct {
		name, in, wantErr string
	}{
		{"sam list stack-outputs", asJSON(list), ""},
		{"describe-stacks", asJSON(map[string]any{"Stacks": []any{map[string]any{"Outputs": list}}}), ""},
		{"plain object", asJSON(plain), ""},
		{"one missing", asJSON(list[1:]), StackOutputKey(policies.Functions[0])},
		{"not a role", strings.Replace(asJSON(list), ":role/", ":user/", 1), "not an IAM role ARN"},
		{"not JSON", "StoreFunctionRoleArn=x", "not JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RoleARNsFromStackOutputs([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err %v, want one naming %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, fn := range policies.Functions {
				if got[fn] != arn(fn) {
					t.Errorf("%s: %q, want %q", fn, got[fn], arn(fn))
				}
			}
		})
	}
}
