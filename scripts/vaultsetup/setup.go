// Package vaultsetup brings a Vault to the state smtp-vault's functions
// need (mounts, Transit keys, one policy and one role per function, staff
// login with TOTP, an audit device) and manages the staff who
// re-authenticate against it. It creates what is missing, leaves what is
// right, and changes what differs only when told to (Config.Force): the
// operator command scripts/vault-setup and the local stack
// (scripts/devenv) run the same code.
package vaultsetup

import (
	"context"
	"errors"
	"fmt"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/infra/vault/policies"
)

// Names of what Apply sets up. The policies in infra/vault/policies name
// them, and they are the functions' defaults (shared/app) and
// template.yaml's parameter defaults.
const (
	KVMount           = "smtp"               // KV v2: tenants' credentials
	AccessMount       = "smtp-access"        // KV v2: failed re-authentications
	AlertsMount       = "smtp-alerts"        // KV v2: the alert rules' state
	TransitMount      = "transit"            // master keys
	TransitKey        = "smtp-credentials"   // derived key wrapping the data keys
	ReauthKey         = "reauth-signing"     // ed25519 key signing re-auth tokens
	AuditMACKey       = "audit-mac"          // derived key whose data keys MAC the audit records
	AuditAnchorsMount = "smtp-audit-anchors" // KV v2: each audit chain's anchored head
	IndexMount        = "smtp-index"         // KV v2: the status index (shared/credential/index.go)
	UserpassMount     = "userpass"           // the staff's passwords
	TOTPMethod        = "smtp-vault-totp"    // the staff's login MFA method
	MFAEnforcement    = "smtp-vault-reauth"  // its enforcement on userpass logins
)

// Config is the state to bring Vault to.
type Config struct {
	KVMaxVersions int // history depth kept per credential, at least; 100

	// AppRole gives each function an AppRole role smtp-vault-<function>
	// (the local stack logs the functions in with them).
	AppRole bool
	// AWS gives each function an aws auth role smtp-vault-<function>
	// bound to its IAM role (production).
	AWS *AWS
	// AuditFile is where a file audit device writes when Vault has no
	// audit device at all; empty: report that none is enabled.
	AuditFile string
	// Force changes what exists and differs from this state. Without it
	// such drift is reported and left alone.
	Force bool
}

// AWS configures Vault's aws auth method for the functions' IAM roles.
type AWS struct {
	Mount string // aws
	// RoleARNs maps each function to the ARN of its IAM role
	// (template.yaml's <Function>RoleArn outputs).
	RoleARNs map[string]string
	// STSEndpoint, STSRegion: where Vault sends the signed
	// sts:GetCallerIdentity, the regional endpoint of the region the
	// functions sign for (https://sts.<region>.amazonaws.com).
	STSEndpoint string
	STSRegion   string
	// ServerID is the X-Vault-AWS-IAM-Server-ID value every login must
	// carry, signed (VaultAwsServerId in template.yaml), so that a signed
	// request made for another Vault cannot be replayed here.
	ServerID string
	// ResolveUniqueIDs binds each role to the IAM role's unique id, so a
	// role deleted and re-created under the same name does not inherit
	// access. It needs iam:GetRole for Vault; Vault refuses to turn it
	// off on an existing role.
	ResolveUniqueIDs bool
}

func (c *Config) defaults() {
	if c.KVMaxVersions == 0 {
		c.KVMaxVersions = 100
	}
	if c.AWS != nil && c.AWS.Mount == "" {
		c.AWS.Mount = "aws"
	}
}

// RoleName is the name of a function's role in every auth method.
func RoleName(function string) string { return "smtp-vault-" + function }

// ErrDrift is returned (wrapped) by Apply when something exists and
// differs from the wanted state and Force was not set.
var ErrDrift = errors.New("vaultsetup: drift left alone (re-run with -force to change it)")

// Apply brings the Vault that c talks to (with a token allowed to manage
// mounts, policies and auth methods) to cfg. The report lists every item
// checked and what was done. An item that can never be fixed in place (a
// mount of another type, a Transit key of another type) is an error; drift
// left alone is ErrDrift, with the full report.
func Apply(ctx context.Context, c *vaultapi.Client, cfg Config) (*Report, error) {
	cfg.defaults()
	if cfg.AWS != nil {
		for _, fn := range policies.Functions {
			if cfg.AWS.RoleARNs[fn] == "" {
				return nil, fmt.Errorf("vaultsetup: no IAM role ARN for function %s", fn)
			}
		}
		for fn := range cfg.AWS.RoleARNs {
			if !isFunction(fn) {
				return nil, fmt.Errorf("vaultsetup: IAM role ARN for unknown function %q", fn)
			}
		}
	}
	s := &setup{c: c, cfg: cfg, r: &Report{}}
	steps := []func(context.Context) error{
		s.mounts,
		s.transitKeys,
		s.policies,
		s.appRoles,
		s.awsAuth,
		s.legacy,
		s.loginMFA,
		s.auditDevice,
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return s.r, err
		}
	}
	if s.r.Drifted() {
		return s.r, ErrDrift
	}
	return s.r, nil
}

func isFunction(name string) bool {
	for _, f := range policies.Functions {
		if f == name {
			return true
		}
	}
	return false
}

type setup struct {
	c   *vaultapi.Client
	cfg Config
	r   *Report
}

// reconcile records one item: it writes it when missing, leaves it when
// diff is empty, and rewrites it on drift only with Force.
func (s *setup) reconcile(what string, exists bool, diff string, write func() error) error {
	switch {
	case !exists:
		if err := write(); err != nil {
			return fmt.Errorf("vaultsetup: create %s: %w", what, err)
		}
		s.r.add(Created, what, "")
	case diff == "":
		s.r.add(Unchanged, what, "")
	case s.cfg.Force:
		if err := write(); err != nil {
			return fmt.Errorf("vaultsetup: update %s: %w", what, err)
		}
		s.r.add(Updated, what, diff)
	default:
		s.r.add(Drift, what, diff)
	}
	return nil
}
