package vaultsetup

import (
	"encoding/json"
	"fmt"
	"strings"

	"smtp-vault/infra/vault/policies"
)

// StackOutputKey is the template.yaml output that holds a function's IAM
// role ARN: <LogicalId>RoleArn, the logical id being the function's name
// in CamelCase plus "Function" (rotate-sweep: RotateSweepFunctionRoleArn).
func StackOutputKey(function string) string {
	var b strings.Builder
	for _, part := range strings.Split(function, "-") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String() + "FunctionRoleArn"
}

type stackOutput struct {
	OutputKey   string
	OutputValue string
}

// RoleARNsFromStackOutputs reads the functions' IAM role ARNs from the
// stack's outputs, as `sam list stack-outputs --output json` or `aws
// cloudformation describe-stacks` print them, or as a plain JSON object
// of output name to value.
func RoleARNsFromStackOutputs(raw []byte) (map[string]string, error) {
	values := map[string]string{}
	var list []stackOutput
	var described struct {
		Stacks []struct{ Outputs []stackOutput }
	}
	var plain map[string]any
	switch {
	case json.Unmarshal(raw, &list) == nil:
	case json.Unmarshal(raw, &described) == nil && len(described.Stacks) > 0:
		list = described.Stacks[0].Outputs
	case json.Unmarshal(raw, &plain) == nil:
		for k, v := range plain {
			if s, ok := v.(string); ok {
				values[k] = s
			}
		}
	default:
		return nil, fmt.Errorf("vaultsetup: stack outputs are not JSON outputs of a stack")
	}
	for _, o := range list {
		values[o.OutputKey] = o.OutputValue
	}
	out := map[string]string{}
	var missing []string
	for _, fn := range policies.Functions {
		arn := values[StackOutputKey(fn)]
		if arn == "" {
			missing = append(missing, StackOutputKey(fn))
			continue
		}
		if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":role/") {
			return nil, fmt.Errorf("vaultsetup: output %s = %q is not an IAM role ARN", StackOutputKey(fn), arn)
		}
		out[fn] = arn
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("vaultsetup: stack outputs lack %s (deploy the current template.yaml)", strings.Join(missing, ", "))
	}
	return out, nil
}
