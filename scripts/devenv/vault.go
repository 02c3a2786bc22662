package devenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/scripts/vaultsetup"
)

// Names of what the setup creates (scripts/vaultsetup); the functions'
// defaults match them.
const (
	KVMount           = vaultsetup.KVMount
	TransitMount      = vaultsetup.TransitMount
	TransitKey        = vaultsetup.TransitKey
	AccessMount       = vaultsetup.AccessMount
	AlertsMount       = vaultsetup.AlertsMount
	ReauthKey         = vaultsetup.ReauthKey
	AuditMACKey       = vaultsetup.AuditMACKey
	AuditAnchorsMount = vaultsetup.AuditAnchorsMount
	UserpassMount     = vaultsetup.UserpassMount
	TOTPMethodName    = vaultsetup.TOTPMethod
	MFAEnforcement    = vaultsetup.MFAEnforcement
	OperatorPolicy    = policies.Operator
	RekeyPolicy       = policies.Rekey
	// AllFunctionsRole is a local AppRole holding every function's
	// policy: the stack's direct handle on the domain for tests
	// (Stack.App). No function runs with it.
	AllFunctionsRole = "smtp-vault-local-all-functions"
)

// AppRoleLogin is what a function logs in to the local Vault with.
type AppRoleLogin struct {
	RoleID, SecretID string
}

// Vault is a running local Vault server with persistent raft storage.
type Vault struct {
	Addr string // http://127.0.0.1:port
	Dir  string

	proc    *process
	root    *vaultapi.Client
	unseal  string
	listen  string
	logFile *os.File
	// RoleID and SecretID log in as AllFunctionsRole (tests only).
	RoleID   string
	SecretID string
	// Functions holds each function's own AppRole login, by function
	// name: the stack logs every function in with its own policy.
	Functions map[string]AppRoleLogin
	// STS is the stand-in the aws auth method checks logins with.
	STS *STS
	// OperatorToken is a token with the operator policy, for inspection.
	OperatorToken string
	// TOTPMethodID is the login MFA method staff complete logins with.
	TOTPMethodID string
	// Setup is what vault-setup's code found and did at the last start.
	Setup *vaultsetup.Report
}

type initState struct {
	UnsealKey string `json:"unseal_key_b64"`
	RootToken string `json:"root_token"`
}

// StartVault starts (or restarts) a Vault server keeping its data under
// dir, listening on addr (host:port on loopback), initialises it the first
// time, unseals it and applies Configure. The unseal key and root token of
// this local server stay in dir/init.json (mode 0600).
func StartVault(ctx context.Context, dir, addr string) (*Vault, error) {
	bin, err := VaultBinary()
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o700); err != nil {
		return nil, err
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("devenv: vault address %q: %w", addr, err)
	}
	clusterAddr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	tmpl, err := template.ParseFiles(filepath.Join(root, "infra", "vault", "local-server.hcl.tmpl"))
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "server.hcl")
	f, err := os.OpenFile(cfgPath, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	err = tmpl.Execute(f, map[string]string{"DataDir": filepath.Join(dir, "data"), "Addr": net.JoinHostPort(host, port), "ClusterAddr": clusterAddr})
	f.Close()
	if err != nil {
		return nil, err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, "server.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	v := &Vault{Addr: "http://" + net.JoinHostPort(host, port), Dir: dir, listen: addr, logFile: logFile}
	if v.STS, err = StartSTS(); err != nil {
		logFile.Close()
		return nil, err
	}
	if err := v.start(bin, cfgPath); err != nil {
		v.STS.Close()
		logFile.Close()
		return nil, err
	}
	if err := v.bootstrap(ctx); err != nil {
		v.Stop()
		return nil, fmt.Errorf("devenv: vault at %s: %w\n%s", v.Addr, err, logTail(logFile.Name(), 20))
	}
	return v, nil
}

func (v *Vault) start(bin, cfgPath string) error {
	p, err := startProcess(v.logFile, bin, append(os.Environ(), "VAULT_LOG_FORMAT=json"), "server", "-config="+cfgPath)
	if err != nil {
		return err
	}
	v.proc = p
	return nil
}

func (v *Vault) bootstrap(ctx context.Context) error {
	cfg := vaultapi.DefaultConfig()
	cfg.Address = v.Addr
	cfg.MaxRetries = 0
	c, err := vaultapi.NewClient(cfg)
	if err != nil {
		return err
	}
	c.ClearToken()
	v.root = c
	if err := v.waitListening(ctx); err != nil {
		return err
	}
	statePath := filepath.Join(v.Dir, "init.json")
	var st initState
	init, err := c.Sys().InitStatusWithContext(ctx)
	if err != nil {
		return fmt.Errorf("init status: %w", err)
	}
	if !init {
		resp, err := c.Sys().InitWithContext(ctx, &vaultapi.InitRequest{SecretShares: 1, SecretThreshold: 1})
		if err != nil {
			return fmt.Errorf("init: %w", err)
		}
		st = initState{UnsealKey: resp.KeysB64[0], RootToken: resp.RootToken}
		if err := writeJSON(statePath, st); err != nil {
			return err
		}
	} else {
		b, err := os.ReadFile(statePath)
		if err != nil {
			return fmt.Errorf("vault is initialised but its unseal key is missing: %w", err)
		}
		if err := json.Unmarshal(b, &st); err != nil {
			return fmt.Errorf("read %s: %w", statePath, err)
		}
	}
	v.unseal = st.UnsealKey
	c.SetToken(st.RootToken)
	if err := v.Unseal(ctx); err != nil {
		return err
	}
	return v.configure(ctx)
}

func (v *Vault) waitListening(ctx context.Context) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-v.proc.done:
			return errors.New("vault exited during start")
		default:
		}
		conn, err := net.DialTimeout("tcp", v.listen, 200*time.Millisecond)
		if err == nil {
			conn.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault did not listen on %s within 60s", v.listen)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Unseal unseals the server with the stored key and waits until it is the
// active node.
func (v *Vault) Unseal(ctx context.Context) error {
	if _, err := v.root.Sys().UnsealWithContext(ctx, v.unseal); err != nil {
		return fmt.Errorf("unseal: %w", err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		h, err := v.root.Sys().HealthWithContext(ctx)
		if err == nil && h.Initialized && !h.Sealed && !h.Standby {
			// Raft may report active before it accepts writes; probe one.
			if _, err := v.root.Sys().ListMountsWithContext(ctx); err == nil {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vault did not become active within 60s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Seal seals the server (tests use it to show that a sealed Vault loses
// nothing).
func (v *Vault) Seal(ctx context.Context) error {
	return v.root.Sys().SealWithContext(ctx)
}

// UnsealKey is the local server's unseal key (tests unseal a Vault
// restored from this one's backup with it).
func (v *Vault) UnsealKey() string { return v.unseal }

// Root returns a client holding the local root token (setup and tests
// only).
func (v *Vault) Root() *vaultapi.Client { return v.root }

// Stop stops the server and waits for it to exit.
func (v *Vault) Stop() error {
	v.proc.stop(15 * time.Second)
	v.STS.Close()
	v.logFile.Close()
	return nil
}

// configure brings the server to the state the functions need with the
// operator command's own code (scripts/vaultsetup), so every make run and
// make test exercises it, then issues the local logins.
func (v *Vault) configure(ctx context.Context) error {
	rep, err := vaultsetup.Apply(ctx, v.root, v.SetupConfig())
	if err != nil {
		return err
	}
	v.Setup, v.TOTPMethodID = rep, rep.TOTPMethodID
	return v.configureAuth(ctx)
}

// SetupConfig is the state of the local Vault: production's, plus an
// AppRole per function and the aws auth method checking logins with the
// local STS stand-in. Force: this Vault is the stack's own, so what an
// older checkout set up differently is brought in line.
func (v *Vault) SetupConfig() vaultsetup.Config {
	arns := map[string]string{}
	for _, fn := range policies.Functions {
		arns[fn] = LocalRoleARN(fn)
	}
	return vaultsetup.Config{
		AppRole: true,
		AWS: &vaultsetup.AWS{
			RoleARNs:    arns,
			STSEndpoint: v.STS.URL,
			STSRegion:   STSRegion,
			ServerID:    IAMServerID,
			// The stand-in has no IAM API to resolve unique ids with.
			ResolveUniqueIDs: false,
		},
		AuditFile: filepath.Join(v.Dir, "vault-audit.log"),
		Force:     true,
	}
}

// Staff manages the local Vault's staff with the root token, auditing to
// rec.
func (v *Vault) Staff(rec vaultsetup.Recorder) *vaultsetup.Staff {
	return &vaultsetup.Staff{Vault: v.root, TOTPMethodID: v.TOTPMethodID, Audit: rec, By: "make-run"}
}

type authState struct {
	SecretIDs     map[string]string `json:"secret_ids"` // by AppRole role name
	OperatorToken string            `json:"operator_token"`
}

// configureAuth issues (once, kept in dir/auth.json) a secret id for
// every function's AppRole and for AllFunctionsRole, and the operator's
// token.
func (v *Vault) configureAuth(ctx context.Context) error {
	c := v.root
	var all []string
	for _, fn := range policies.Functions {
		all = append(all, policies.ForFunction(fn))
	}
	// Like the functions' own roles, its tokens carry no default policy:
	// the tests see the grants the functions have, and Vault does not
	// build the templated default policy into every request's ACL.
	if _, err := c.Logical().WriteWithContext(ctx, "auth/approle/role/"+AllFunctionsRole, map[string]any{
		"token_policies":          all,
		"token_no_default_policy": true,
		"token_ttl":               "1h",
		"token_max_ttl":           "4h",
		"secret_id_ttl":           "0",
	}); err != nil {
		return fmt.Errorf("write approle role %s: %w", AllFunctionsRole, err)
	}
	statePath := filepath.Join(v.Dir, "auth.json")
	var st authState
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	if st.SecretIDs == nil {
		st.SecretIDs = map[string]string{}
	}
	login := func(role string) (AppRoleLogin, error) {
		s, err := c.Logical().ReadWithContext(ctx, "auth/approle/role/"+role+"/role-id")
		if err != nil || s == nil {
			return AppRoleLogin{}, fmt.Errorf("read role id of %s: %w", role, err)
		}
		id, _ := s.Data["role_id"].(string)
		if st.SecretIDs[role] == "" || !v.secretIDValid(ctx, role, st.SecretIDs[role]) {
			s, err := c.Logical().WriteWithContext(ctx, "auth/approle/role/"+role+"/secret-id", nil)
			if err != nil || s == nil {
				return AppRoleLogin{}, fmt.Errorf("create secret id of %s: %w", role, err)
			}
			st.SecretIDs[role], _ = s.Data["secret_id"].(string)
		}
		return AppRoleLogin{RoleID: id, SecretID: st.SecretIDs[role]}, nil
	}
	v.Functions = map[string]AppRoleLogin{}
	for _, fn := range policies.Functions {
		l, err := login(vaultsetup.RoleName(fn))
		if err != nil {
			return err
		}
		v.Functions[fn] = l
	}
	l, err := login(AllFunctionsRole)
	if err != nil {
		return err
	}
	v.RoleID, v.SecretID = l.RoleID, l.SecretID
	if st.OperatorToken == "" || !v.tokenValid(ctx, st.OperatorToken) {
		t, err := c.Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{
			Policies:    []string{OperatorPolicy},
			DisplayName: "local-operator",
			Period:      "768h",
			NoParent:    true,
		})
		if err != nil {
			return fmt.Errorf("create operator token: %w", err)
		}
		st.OperatorToken = t.Auth.ClientToken
	}
	v.OperatorToken = st.OperatorToken
	return writeJSON(statePath, st)
}

func (v *Vault) secretIDValid(ctx context.Context, role, id string) bool {
	s, err := v.root.Logical().WriteWithContext(ctx, "auth/approle/role/"+role+"/secret-id/lookup", map[string]any{"secret_id": id})
	return err == nil && s != nil
}

func (v *Vault) tokenValid(ctx context.Context, token string) bool {
	s, err := v.root.Auth().Token().LookupWithContext(ctx, token)
	return err == nil && s != nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// logTail returns the end of a log file, for error messages.
func logTail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
