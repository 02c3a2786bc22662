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
)

// Names of what Configure sets up; the functions' defaults match them.
const (
	KVMount         = "smtp"
	TransitMount    = "transit"
	TransitKey      = "smtp-credentials"
	FunctionsPolicy = "smtp-vault-functions"
	OperatorPolicy  = "smtp-vault-operator"
	RekeyPolicy     = "smtp-vault-rekey"
	BackupPolicy    = "smtp-vault-backup"
	AppRoleName     = "smtp-vault-functions"

	// Re-authentication of staff (the functions' defaults match these).
	AccessMount    = "smtp-access"       // KV v2: failed re-auth attempts per user
	AlertsMount    = "smtp-alerts"       // KV v2: state of the alert rules
	ReauthKey      = "reauth-signing"    // Transit ed25519 key that signs re-auth tokens
	UserpassMount  = "userpass"          // the staff's passwords
	TOTPMethodName = "smtp-vault-totp"   // login MFA method
	MFAEnforcement = "smtp-vault-reauth" // login MFA enforcement on userpass
)

// Vault is a running local Vault server with persistent raft storage.
type Vault struct {
	Addr string // http://127.0.0.1:port
	Dir  string

	proc     *process
	root     *vaultapi.Client
	unseal   string
	listen   string
	logFile  *os.File
	RoleID   string
	SecretID string
	// OperatorToken is a token with the operator policy, for inspection.
	OperatorToken string
	// TOTPMethodID is the login MFA method staff complete logins with.
	TOTPMethodID string
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
	if err := v.start(bin, cfgPath); err != nil {
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
	v.logFile.Close()
	return nil
}

// configure applies the project's Vault setup; every step is idempotent.
func (v *Vault) configure(ctx context.Context) error {
	c := v.root
	mounts, err := c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return fmt.Errorf("list mounts: %w", err)
	}
	if _, ok := mounts[KVMount+"/"]; !ok {
		if err := c.Sys().MountWithContext(ctx, KVMount, &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}, Description: "tenants' SMTP admin credentials"}); err != nil {
			return fmt.Errorf("mount kv: %w", err)
		}
	}
	// Every write must name the version it replaces; keep a long history.
	if _, err := c.Logical().WriteWithContext(ctx, KVMount+"/config", map[string]any{"cas_required": true, "max_versions": 100}); err != nil {
		return fmt.Errorf("configure kv: %w", err)
	}
	if _, ok := mounts[TransitMount+"/"]; !ok {
		if err := c.Sys().MountWithContext(ctx, TransitMount, &vaultapi.MountInput{Type: "transit"}); err != nil {
			return fmt.Errorf("mount transit: %w", err)
		}
	}
	if s, err := c.Logical().ReadWithContext(ctx, TransitMount+"/keys/"+TransitKey); err != nil || s == nil {
		if _, err := c.Logical().WriteWithContext(ctx, TransitMount+"/keys/"+TransitKey, map[string]any{"type": "aes256-gcm96", "derived": true}); err != nil {
			return fmt.Errorf("create transit key: %w", err)
		}
	}
	// The records of failed re-authentications: a mount of their own, as
	// the top level of smtp/ is tenant ids only. Every write is
	// check-and-set; a short history is enough.
	if _, ok := mounts[AccessMount+"/"]; !ok {
		if err := c.Sys().MountWithContext(ctx, AccessMount, &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}, Description: "failed re-authentication attempts of staff"}); err != nil {
			return fmt.Errorf("mount %s: %w", AccessMount, err)
		}
	}
	if _, err := c.Logical().WriteWithContext(ctx, AccessMount+"/config", map[string]any{"cas_required": true, "max_versions": 10}); err != nil {
		return fmt.Errorf("configure %s: %w", AccessMount, err)
	}
	// The alert rules' counters and burst flags, written with
	// check-and-set by every function instance.
	if _, ok := mounts[AlertsMount+"/"]; !ok {
		if err := c.Sys().MountWithContext(ctx, AlertsMount, &vaultapi.MountInput{Type: "kv", Options: map[string]string{"version": "2"}, Description: "state of the security alert rules"}); err != nil {
			return fmt.Errorf("mount %s: %w", AlertsMount, err)
		}
	}
	if _, err := c.Logical().WriteWithContext(ctx, AlertsMount+"/config", map[string]any{"cas_required": true, "max_versions": 5}); err != nil {
		return fmt.Errorf("configure %s: %w", AlertsMount, err)
	}
	if s, err := c.Logical().ReadWithContext(ctx, TransitMount+"/keys/"+ReauthKey); err != nil || s == nil {
		if _, err := c.Logical().WriteWithContext(ctx, TransitMount+"/keys/"+ReauthKey, map[string]any{"type": "ed25519"}); err != nil {
			return fmt.Errorf("create transit key %s: %w", ReauthKey, err)
		}
	}
	root, err := RepoRoot()
	if err != nil {
		return err
	}
	for _, name := range []string{FunctionsPolicy, OperatorPolicy, RekeyPolicy, BackupPolicy} {
		b, err := os.ReadFile(filepath.Join(root, "infra", "vault", "policies", name+".hcl"))
		if err != nil {
			return err
		}
		if err := c.Sys().PutPolicyWithContext(ctx, name, string(b)); err != nil {
			return fmt.Errorf("write policy %s: %w", name, err)
		}
	}
	audits, err := c.Sys().ListAuditWithContext(ctx)
	if err != nil {
		return fmt.Errorf("list audit devices: %w", err)
	}
	if _, ok := audits["file/"]; !ok {
		if err := c.Sys().EnableAuditWithOptionsWithContext(ctx, "file", &vaultapi.EnableAuditOptions{Type: "file", Options: map[string]string{"file_path": filepath.Join(v.Dir, "vault-audit.log")}}); err != nil {
			return fmt.Errorf("enable audit device: %w", err)
		}
	}
	return v.configureAuth(ctx)
}

type authState struct {
	SecretID      string `json:"secret_id"`
	OperatorToken string `json:"operator_token"`
}

func (v *Vault) configureAuth(ctx context.Context) error {
	c := v.root
	auths, err := c.Sys().ListAuthWithContext(ctx)
	if err != nil {
		return fmt.Errorf("list auth methods: %w", err)
	}
	if _, ok := auths["approle/"]; !ok {
		if err := c.Sys().EnableAuthWithOptionsWithContext(ctx, "approle", &vaultapi.EnableAuthOptions{Type: "approle"}); err != nil {
			return fmt.Errorf("enable approle: %w", err)
		}
	}
	if _, err := c.Logical().WriteWithContext(ctx, "auth/approle/role/"+AppRoleName, map[string]any{
		// Locally one AppRole serves every function, the backup function
		// included; in AWS only the backup function's Vault role has the
		// backup policy (docs/runbook.md).
		"token_policies": []string{FunctionsPolicy, BackupPolicy},
		"token_ttl":      "1h",
		"token_max_ttl":  "4h",
		"secret_id_ttl":  "0",
	}); err != nil {
		return fmt.Errorf("write approle role: %w", err)
	}
	s, err := c.Logical().ReadWithContext(ctx, "auth/approle/role/"+AppRoleName+"/role-id")
	if err != nil || s == nil {
		return fmt.Errorf("read role id: %w", err)
	}
	v.RoleID, _ = s.Data["role_id"].(string)

	statePath := filepath.Join(v.Dir, "auth.json")
	var st authState
	if b, err := os.ReadFile(statePath); err == nil {
		_ = json.Unmarshal(b, &st)
	}
	if st.SecretID == "" || !v.secretIDValid(ctx, st.SecretID) {
		s, err := c.Logical().WriteWithContext(ctx, "auth/approle/role/"+AppRoleName+"/secret-id", nil)
		if err != nil || s == nil {
			return fmt.Errorf("create secret id: %w", err)
		}
		st.SecretID, _ = s.Data["secret_id"].(string)
	}
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
	v.SecretID, v.OperatorToken = st.SecretID, st.OperatorToken
	if err := writeJSON(statePath, st); err != nil {
		return err
	}
	return v.configureLoginMFA(ctx)
}

func (v *Vault) secretIDValid(ctx context.Context, id string) bool {
	s, err := v.root.Logical().WriteWithContext(ctx, "auth/approle/role/"+AppRoleName+"/secret-id/lookup", map[string]any{"secret_id": id})
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
