// Command vault-setup brings a Vault to the state the smtp-vault functions
// need: the smtp KV v2 mount (check-and-set required, history kept), the
// Transit keys, one policy and one role per function (Vault's aws auth
// method, bound to each function's IAM role), userpass with TOTP login MFA
// for staff, and an audit device. It is idempotent: it prints what it
// created, what was already right, and what differs; it changes what
// differs only with -force, and otherwise exits 3.
//
//	VAULT_ADDR=https://vault.example.com:8200 VAULT_TOKEN=... \
//	  go run ./scripts/vault-setup -stack-outputs outputs.json -server-id vault.example.com
//
// The token needs to manage mounts, policies and auth methods (a root or
// sudo token of the operators). make run sets up the local Vault with the
// same code (scripts/vaultsetup).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/scripts/vaultsetup"
)

// Exit codes beyond 0.
const (
	exitError = 1
	exitUsage = 2
	exitDrift = 3
)

// roleARNs is the repeatable -role-arn function=arn flag.
type roleARNs map[string]string

func (r roleARNs) String() string {
	var parts []string
	for k, v := range r {
		parts = append(parts, k+"="+v)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (r roleARNs) Set(s string) error {
	fn, arn, ok := strings.Cut(s, "=")
	if !ok || fn == "" || arn == "" {
		return fmt.Errorf("want function=arn, got %q", s)
	}
	r[fn] = arn
	return nil
}

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vault-setup", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg vaultsetup.Config
	aws := vaultsetup.AWS{}
	arns := roleARNs{}
	addr := fs.String("addr", os.Getenv("VAULT_ADDR"), "Vault's address (default $VAULT_ADDR); the token is read from $VAULT_TOKEN, never from a flag")
	outputs := fs.String("stack-outputs", "", "JSON file of the stack's outputs, as 'sam list stack-outputs --stack-name <name> --output json' prints them; gives each function's IAM role ARN (<Function>RoleArn outputs)")
	fs.Var(arns, "role-arn", "function=arn: a function's IAM role ARN (repeatable; overrides -stack-outputs), e.g. store=arn:aws:iam::123456789012:role/smtp-vault-StoreFunctionRole-ABC")
	fs.StringVar(&aws.ServerID, "server-id", "", "iam_server_id_header_value: the VaultAwsServerId the stack was deployed with (required for the aws auth method)")
	region := fs.String("sts-region", os.Getenv("AWS_REGION"), "region the functions run in and sign their logins for; Vault's sts_region (default $AWS_REGION)")
	fs.StringVar(&aws.STSEndpoint, "sts-endpoint", "", "where Vault sends the signed GetCallerIdentity (default https://sts.<sts-region>.amazonaws.com, the regional endpoint the functions sign for)")
	fs.StringVar(&aws.Mount, "aws-mount", "aws", "mount path of the aws auth method (VaultAwsAuthMount)")
	fs.BoolVar(&aws.ResolveUniqueIDs, "resolve-unique-ids", true, "bind each Vault role to its IAM role's unique id (needs iam:GetRole for Vault; a re-created IAM role of the same name does not inherit access)")
	fs.BoolVar(&cfg.AppRole, "approle", false, "also give each function an AppRole role (local runs and tests; production uses the aws auth method)")
	fs.StringVar(&cfg.AuditFile, "audit-file", "", "enable a file audit device writing here when Vault has no audit device (on the Vault server's disk)")
	fs.IntVar(&cfg.KVMaxVersions, "kv-max-versions", 100, "versions of each credential KV keeps at least (never lowered)")
	fs.BoolVar(&cfg.Force, "force", false, "change what exists and differs (policies, roles, settings); without it such drift is only reported (exit 3)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: vault-setup [flags]\n\nBrings the Vault at $VAULT_ADDR (token $VAULT_TOKEN) to the state the smtp-vault functions need.\nPrints each item as created, ok, updated or DRIFT.\nMounts and keys have the names the policies and template.yaml's defaults use:\n  KV v2 mounts  %s\n  Transit       %s with the keys %s\n  userpass      %s, with the TOTP login MFA method %s\nExit 0: done; 1: error; 2: usage; 3: drift left alone (re-run with -force).\n\nFunctions: %s\n\n",
			strings.Join([]string{vaultsetup.KVMount, vaultsetup.AccessMount, vaultsetup.AlertsMount, vaultsetup.AuditAnchorsMount, vaultsetup.IndexMount}, ", "),
			vaultsetup.TransitMount, strings.Join([]string{vaultsetup.TransitKey, vaultsetup.ReauthKey, vaultsetup.AuditMACKey}, ", "),
			vaultsetup.UserpassMount, vaultsetup.TOTPMethod, strings.Join(policies.Functions, ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "vault-setup: unexpected arguments %v\n", fs.Args())
		return exitUsage
	}
	if *addr == "" || os.Getenv("VAULT_TOKEN") == "" {
		fmt.Fprintln(stderr, "vault-setup: set VAULT_ADDR (or -addr) and VAULT_TOKEN")
		return exitUsage
	}
	if *outputs != "" || len(arns) > 0 {
		aws.RoleARNs = map[string]string{}
		if *outputs != "" {
			raw, err := os.ReadFile(*outputs)
			if err != nil {
				fmt.Fprintln(stderr, "vault-setup:", err)
				return exitUsage
			}
			if aws.RoleARNs, err = vaultsetup.RoleARNsFromStackOutputs(raw); err != nil {
				fmt.Fprintln(stderr, "vault-setup:", err)
				return exitUsage
			}
		}
		for fn, arn := range arns {
			aws.RoleARNs[fn] = arn
		}
		if *region == "" {
			fmt.Fprintln(stderr, "vault-setup: -sts-region (or AWS_REGION) is needed for the aws auth method")
			return exitUsage
		}
		aws.STSRegion = *region
		if aws.STSEndpoint == "" {
			aws.STSEndpoint = "https://sts." + *region + ".amazonaws.com"
		}
		cfg.AWS = &aws
	}
	if cfg.AWS == nil && !cfg.AppRole {
		fmt.Fprintln(stderr, "vault-setup: the functions need roles to log in with: pass -stack-outputs or -role-arn (production), or -approle (local)")
		return exitUsage
	}

	vc := vaultapi.DefaultConfig()
	vc.Address = *addr
	vc.Timeout = 30 * time.Second
	c, err := vaultapi.NewClient(vc)
	if err != nil {
		fmt.Fprintln(stderr, "vault-setup:", err)
		return exitError
	}
	c.SetToken(os.Getenv("VAULT_TOKEN"))
	rep, err := vaultsetup.Apply(ctx, c, cfg)
	if rep != nil {
		rep.WriteTo(stdout)
	}
	switch {
	case errors.Is(err, vaultsetup.ErrDrift):
		fmt.Fprintln(stderr, "vault-setup:", err)
		return exitDrift
	case err != nil:
		fmt.Fprintln(stderr, "vault-setup:", err)
		return exitError
	}
	return 0
}
