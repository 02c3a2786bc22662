package vaultsetup

import (
	"context"
	"fmt"
	"strings"

	"smtp-vault/infra/vault/policies"
)

// awsAuth configures Vault's aws auth method: where Vault checks a
// function's signed sts:GetCallerIdentity, the server id header every
// login must sign, and one iam role per function bound to that function's
// IAM role only, so no function can log in as another.
func (s *setup) awsAuth(ctx context.Context) error {
	a := s.cfg.AWS
	if a == nil {
		return nil
	}
	if a.ServerID == "" {
		return fmt.Errorf("vaultsetup: the aws auth method needs a server id (iam_server_id_header_value): without it a signed login made for another Vault could be replayed here")
	}
	if err := s.authMethod(ctx, a.Mount, "aws", "smtp-vault functions (IAM roles of the Lambdas)"); err != nil {
		return err
	}
	path := "auth/" + a.Mount + "/config/client"
	cur, err := s.c.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return fmt.Errorf("vaultsetup: read %s: %w", path, err)
	}
	want := map[string]any{
		"sts_endpoint":               a.STSEndpoint,
		"sts_region":                 a.STSRegion,
		"iam_server_id_header_value": a.ServerID,
	}
	var diff []string
	have := dataOf(cur)
	for k, v := range want {
		if fmt.Sprint(have[k]) != fmt.Sprint(v) {
			diff = append(diff, fmt.Sprintf("%s %q, want %q", k, fmt.Sprint(have[k]), v))
		}
	}
	if err := s.reconcile("aws client config "+path, cur != nil, strings.Join(diff, "; "), func() error {
		_, err := s.c.Logical().WriteWithContext(ctx, path, want)
		return err
	}); err != nil {
		return err
	}
	for _, fn := range policies.Functions {
		policy, arn := policies.ForFunction(fn), a.RoleARNs[fn]
		want := map[string]any{
			"auth_type":               "iam",
			"bound_iam_principal_arn": []string{arn},
			"resolve_aws_unique_ids":  a.ResolveUniqueIDs,
			"token_policies":          []string{policy},
			"token_no_default_policy": functionTokenNoDefaultPolicy,
			"token_ttl":               functionTokenTTL,
			"token_max_ttl":           functionTokenMaxTTL,
		}
		if err := s.role(ctx, a.Mount, RoleName(fn), want, func(have map[string]any) []string {
			d := tokenDiff(have, policy)
			if have["auth_type"] != "iam" {
				d = append(d, fmt.Sprintf("auth_type %v, want iam", have["auth_type"]))
			}
			if b := stringsOf(have["bound_iam_principal_arn"]); !sameSet(b, []string{arn}) {
				d = append(d, fmt.Sprintf("bound_iam_principal_arn %v, want [%s]", b, arn))
			}
			if have["resolve_aws_unique_ids"] != a.ResolveUniqueIDs {
				d = append(d, fmt.Sprintf("resolve_aws_unique_ids %v, want %v", have["resolve_aws_unique_ids"], a.ResolveUniqueIDs))
			}
			return d
		}); err != nil {
			return err
		}
	}
	return nil
}
