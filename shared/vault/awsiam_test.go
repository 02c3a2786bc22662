package vault_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/vault"
)

// awsClient is a function's Vault client as app.New wires it in AWS:
// the aws auth method, signing with creds (vault.AWSIAMLogin).
func awsClient(t *testing.T, role string, creds aws.CredentialsProvider, serverID string) *vault.Client {
	t.Helper()
	c, err := vault.New(vault.Config{
		Address:     local.Addr,
		AuthMethod:  vault.AuthAWS,
		AWSRole:     role,
		AWSServerID: serverID,
		AWSLogin:    vault.AWSIAMLogin(creds, devenv.STSRegion),
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestAWSIAMLoginOneRolePerFunction runs the production login path
// against the real Vault's aws auth method, pointed at the local STS
// stand-in: each function logs in as its own Vault role and gets its own
// policy; with its credentials no other function's role lets it in.
func TestAWSIAMLoginOneRolePerFunction(t *testing.T) {
	ctx := context.Background()
	creds := map[string]aws.CredentialsProvider{}
	for _, fn := range policies.Functions {
		creds[fn] = local.STS.Credentials(devenv.LocalRoleARN(fn))
	}
	for _, fn := range policies.Functions {
		c := awsClient(t, "smtp-vault-"+fn, creds[fn], devenv.IAMServerID)
		got, err := c.TokenPolicies(ctx)
		if err != nil {
			t.Fatalf("%s logs in as itself: %v", fn, err)
		}
		if want := []string{policies.ForFunction(fn)}; !slices.Equal(got, want) {
			t.Errorf("%s's token has policies %v, want %v", fn, got, want)
		}
	}
	// Every function's credentials against every other function's role.
	for _, fn := range policies.Functions {
		for _, other := range policies.Functions {
			if other == fn {
				continue
			}
			c := awsClient(t, "smtp-vault-"+other, creds[fn], devenv.IAMServerID)
			if _, err := c.TokenPolicies(ctx); err == nil || !strings.Contains(err.Error(), "does not belong to the role") {
				t.Errorf("%s's credentials as smtp-vault-%s: %v, want a refusal", fn, other, err)
			}
		}
	}
}

// TestAWSIAMLoginRefusals: what Vault (and STS) refuse of a login signed
// with a function's own credentials, for its own role.
func TestAWSIAMLoginRefusals(t *testing.T) {
	ctx := context.Background()
	console := local.STS.Credentials(devenv.LocalRoleARN("console"))
	forged := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		c, err := console.Retrieve(ctx)
		c.SecretAccessKey = "not-the-secret-" + c.SecretAccessKey
		return c, err
	})
	unknownRole := local.STS.Credentials("arn:aws:iam::" + devenv.LocalAWSAccount + ":role/someone-else")
	for _, tc := range []struct {
		name, role, serverID string
		creds                aws.CredentialsProvider
		why                  string // in Vault's answer
	}{
		{"no server id header", "smtp-vault-console", "", console, "missing header"},
		{"another Vault's server id", "smtp-vault-console", "another-vault", console, `but got "another-vault"`},
		{"forged signature", "smtp-vault-console", devenv.IAMServerID, forged, "SignatureDoesNotMatch"},
		{"an IAM role bound to no Vault role", "smtp-vault-console", devenv.IAMServerID, unknownRole, "does not belong to the role"},
		{"a Vault role that does not exist", "smtp-vault-functions", devenv.IAMServerID, console, "not found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := awsClient(t, tc.role, tc.creds, tc.serverID).TokenPolicies(ctx)
			if !errors.Is(err, vault.ErrBadRequest) || !strings.Contains(err.Error(), tc.why) {
				t.Fatalf("login: %v, want a refusal saying %q", err, tc.why)
			}
		})
	}
}
