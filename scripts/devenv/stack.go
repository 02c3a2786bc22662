package devenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"

	"smtp-vault/scripts/devenv/devissuer"
	"smtp-vault/scripts/localgw"
	"smtp-vault/shared/api"
	"smtp-vault/shared/app"
	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/notify"
)

// JWT audience of the local issuer; template.yaml's JwtAudience default.
const Audience = "smtp-vault"

// DemoTenant is a tenant seeded by the stack. Its MailU API token is a
// local secret kept in the stack's folder only.
type DemoTenant struct {
	TenantID   string `json:"tenant_id"`
	Domain     string `json:"domain"`
	MailUToken string `json:"mailu_api_token"`
	// Filled in at start.
	MailU MailUInstance `json:"-"`
}

// DemoUser is a demo admin of the local issuer and, with the same name,
// a Vault userpass user with login MFA, to re-authenticate as. Password and
// TOTPSecret are local secrets kept in the stack's folder only (mode 0600).
type DemoUser struct {
	Name       string      `json:"name"`
	Roles      []auth.Role `json:"roles"`
	Password   string      `json:"password,omitempty"`
	TOTPSecret string      `json:"totp_secret,omitempty"`
}

type demoState struct {
	Tenants []DemoTenant `json:"tenants"`
	Users   []DemoUser   `json:"users"`
}

// StackOptions configure a local stack.
type StackOptions struct {
	Dir       string    // state folder: .local for make run, a temp dir in tests
	VaultAddr string    // host:port; "" picks a free loopback port
	S3Addr    string    // host:port of the S3 server; "" picks a free loopback port
	APIAddr   string    // host:port of the gateway; "" picks a free port
	MailU     MailUHost // where tenants' MailU stand-ins run
	Tenants   int       // demo tenants to seed (default 3)
	AuditOut  io.Writer // audit stream (default os.Stdout)
	LogOut    io.Writer // function logs (default os.Stderr)
	Now       func() time.Time
	Sinks     []audit.Sink // extra audit sinks (tests inject faults here)
	// Notifier receives what SNS would in AWS (rotation notices, alerts);
	// default: JSON lines appended to <Dir>/notifications.jsonl.
	Notifier notify.Notifier
	// ReauthTTL shortens the re-auth tokens' lifetime (tests of the
	// console's countdown); 0 keeps REAUTH_TTL or its default.
	ReauthTTL time.Duration
	// HostedSignIn signs the console in as in AWS, with the authorization
	// code flow and PKCE, against the local issuer's stand-in of the
	// identity provider (signin.go) instead of its sign-in form.
	HostedSignIn bool
	// RestoreTargets are the Vault addresses the backup function may
	// restore to (BACKUP_RESTORE_TARGETS in AWS; `make run` reads the
	// same variable). Empty: it restores nowhere.
	RestoreTargets []string
}

// Stack is everything `make run` runs: Vault, MailU stand-ins, the
// functions wired as in Lambda, and the local gateway in front of them.
type Stack struct {
	Dir    string
	Vault  *Vault
	S3     *S3 // the audit bucket's server
	MailU  MailUHost
	Issuer *devissuer.DevIssuer
	// Apps are the functions as the gateway runs them, by name, each
	// logged in to Vault with its own policy.
	Apps map[string]*app.App
	// App holds every function's policy: tests call the domain through
	// it. The gateway never serves it.
	App     *app.App
	Gateway *localgw.Gateway
	APIURL  string
	Tenants []DemoTenant
	Users   []DemoUser
	// ConsoleOrigin is the only origin CORS allows.
	ConsoleOrigin string
	// NotificationsFile is the local SNS sink, when the stack opened it.
	NotificationsFile string
	// RotateQueue stands in for RotateQueue: the rotate function consumes
	// it through SQS events, as in AWS (queue.go).
	RotateQueue *LocalQueue[credential.Job]
	// ResetQueue stands in for ResetQueue: the emergency-reset function
	// consumes it as SQS batches.
	ResetQueue *LocalQueue[credential.ResetJob]

	// Verifier checks bearer tokens against the dev issuer's keys, for the
	// gateway and the functions alike.
	Verifier *auth.Verifier
	// SeedProblems are the demo tenants' seeding failures at start; the
	// stack serves anyway and retries them in the background.
	SeedProblems []error
	// Backup is the backup function's configuration: the local backups
	// bucket and the key file in Dir.
	Backup app.BackupConfig

	server  *http.Server
	closers []io.Closer
}

// StartStack starts and seeds a stack. On error everything it started is
// stopped again.
func StartStack(ctx context.Context, o StackOptions) (s *Stack, err error) {
	if o.Tenants == 0 {
		o.Tenants = 3
	}
	if o.VaultAddr == "" {
		if o.VaultAddr, err = FreeAddr(); err != nil {
			return nil, err
		}
	}
	if o.APIAddr == "" {
		o.APIAddr = "127.0.0.1:0"
	}
	// The API's port is held from the start: starting the servers and
	// seeding make many connections, and one of them could otherwise take
	// a port picked free now before the gateway listens on it.
	ln, err := net.Listen("tcp", o.APIAddr)
	if err != nil {
		return nil, fmt.Errorf("devenv: listen on %s: %w", o.APIAddr, err)
	}
	s = &Stack{Dir: o.Dir, MailU: o.MailU, APIURL: "http://" + ln.Addr().String()}
	defer func() {
		if err != nil {
			ln.Close()
			s.Close()
		}
	}()
	if s.Vault, err = StartVault(ctx, filepath.Join(o.Dir, "vault"), o.VaultAddr); err != nil {
		return s, err
	}
	if o.S3Addr == "" {
		if o.S3Addr, err = FreeAddr(); err != nil {
			return s, err
		}
	}
	if s.S3, err = StartS3(ctx, filepath.Join(o.Dir, "s3"), o.S3Addr); err != nil {
		return s, err
	}
	demoPath := filepath.Join(o.Dir, "demo.json")
	st, err := loadDemo(demoPath, o.Tenants)
	if err != nil {
		return s, err
	}
	if s.Issuer, err = devissuer.LoadOrCreateDevIssuer(filepath.Join(o.Dir, "jwt-issuer.jwk"), s.APIURL, Audience); err != nil {
		return s, err
	}
	s.Issuer.SetClock(o.Now)
	cfg, err := app.FromEnv()
	if err != nil {
		return s, err
	}
	if cfg.MailURootCAs == nil {
		// The tenants' SMTP is the Dovecot front: the functions check its
		// certificate against its CA, as MAILU_CA_FILE makes them do.
		pem, err := os.ReadFile(o.MailU.CAFile())
		if err != nil {
			return s, fmt.Errorf("devenv: the SMTP front's CA: %w", err)
		}
		if cfg.MailURootCAs, err = app.MailURootCAs(pem); err != nil {
			return s, err
		}
	}
	cfg.AuditBucket, cfg.S3Endpoint, cfg.S3Region = AuditBucket, s.S3.Endpoint, S3Region
	cfg.AlertStateBucket = AlertStateBucket
	// The MailU stand-ins listen on loopback, outside every demo domain.
	cfg.EndpointAllowedHosts = []string{"127.0.0.1", "localhost"}
	cfg.S3AccessKey, cfg.S3SecretKey = s.S3.AccessKey, s.S3.SecretKey
	if o.ReauthTTL > 0 {
		cfg.ReauthTTL = o.ReauthTTL
	}
	// The console signs admins in at the local issuer (signin.go): with
	// its form, or, as in AWS, with the code flow and PKCE.
	cfg.ConsoleSignInMode, cfg.ConsoleSignInURL = console.SignInLocal, SignInPath
	if o.HostedSignIn {
		cfg.ConsoleSignInMode, cfg.ConsoleSignInURL, cfg.ConsoleTokenURL, cfg.ConsoleClientID = console.SignInHosted, OAuthAuthorizePath, OAuthTokenPath, OAuthClientID
	}
	if o.Notifier == nil {
		s.NotificationsFile = filepath.Join(o.Dir, "notifications.jsonl")
		lines, f, err := notify.OpenFile(s.NotificationsFile, o.Now)
		if err != nil {
			return s, err
		}
		s.closers = append(s.closers, f)
		o.Notifier = lines
	}
	s.RotateQueue = NewLocalQueue(slog.New(slog.NewJSONHandler(logOut(o.LogOut), nil)), describeJob)
	s.ResetQueue = NewLocalQueue(slog.New(slog.NewJSONHandler(logOut(o.LogOut), nil)), describeResetJob)
	// The gateway (as API Gateway's authorizer) and the functions (each
	// on its own) verify bearer tokens against the dev issuer's keys.
	jwks := s.Issuer.JWKS()
	s.Verifier = auth.NewVerifier(auth.VerifierConfig{Issuer: s.APIURL, Audience: Audience, JWKS: &jwks, RolesClaim: cfg.RolesClaim, Now: o.Now})
	if err := s.wireApps(ctx, cfg, app.Options{AuditOut: o.AuditOut, LogOut: o.LogOut, Now: o.Now, Sinks: o.Sinks, Notifier: o.Notifier, RotateQueue: s.RotateQueue, ResetQueue: s.ResetQueue, Verifier: s.Verifier}); err != nil {
		return s, err
	}
	if err := s.ensureAdmins(ctx, &st, demoPath); err != nil {
		return s, err
	}
	s.Users = st.Users
	s.Backup = BackupConfig(o.Dir, o.Now)
	s.Backup.RestoreTargets = o.RestoreTargets
	s.Apps["console"].UseBackups(&s.Backup)
	handlers := s.handlers()
	handlers["backup"] = s.Apps["backup"].BackupFunction(&s.Backup)
	s.Gateway = localgw.New(api.Routes, handlers, s.Verifier, s.App.Log)
	s.ConsoleOrigin = cfg.ConsoleOrigin
	if s.ConsoleOrigin == "" {
		s.ConsoleOrigin = s.APIURL
	}
	s.Gateway.SetCORS(localgw.ConsoleCORS(s.ConsoleOrigin))
	s.Gateway.Handle("/.well-known/jwks.json", s.Issuer.JWKSHandler())
	s.Gateway.Handle(SignInPath, s.signInHandler())
	oauth := s.oauthHandlers()
	s.Gateway.Handle(OAuthAuthorizePath, oauth.authorize())
	s.Gateway.Handle(OAuthTokenPath, oauth.token())
	s.startQueues()

	// One unhealthy tenant never stops the stack: a seed that fails (a
	// crashed run's lock still held, MailU down) is a warning, retried in
	// the background until it succeeds, and the API comes up for the rest.
	seedLog := slog.New(slog.NewJSONHandler(logOut(o.LogOut), nil))
	var retry []DemoTenant
	for _, t := range st.Tenants {
		if t.MailU, err = o.MailU.AddInstance(ctx, t.Domain, t.MailUToken); err != nil {
			return s, err
		}
		if err := s.seed(ctx, t); err != nil {
			s.SeedProblems = append(s.SeedProblems, err)
			seedLog.Warn("demo tenant not ready; retrying in the background (if it persists, `make clean` starts afresh)", "tenant_id", t.TenantID, "error", err)
			retry = append(retry, t)
		}
		s.Tenants = append(s.Tenants, t)
	}
	if len(retry) > 0 {
		s.retrySeeds(retry, seedLog)
	}
	// A state folder from before the status index (or after a crash) has
	// tenants the index lacks: repair it now rather than at the next
	// sweep, as an operator does after deploying (docs/runbook.md).
	rep, err := s.App.API.Credentials.RebuildIndex(ctx)
	for err == nil && !rep.Done { // a big state folder takes more than one call
		rep, err = s.App.API.Credentials.RebuildIndex(ctx)
	}
	if err != nil {
		seedLog.Warn("status index not rebuilt; the next sweep repairs it", "error", err)
	} else if rep.Added+rep.Fixed+rep.Removed > 0 {
		seedLog.Info("status index repaired", "added", rep.Added, "fixed", rep.Fixed, "removed", rep.Removed)
	}

	s.server = &http.Server{Handler: s.Gateway, ReadHeaderTimeout: 10 * time.Second}
	go s.server.Serve(ln)
	return s, nil
}

// ensureAdmins makes every demo user able to re-authenticate in Vault
// with the staff command's code (audited, as it is), generating a password
// the first time, and keeps what Vault holds in the state file so that
// restarts keep it.
func (s *Stack) ensureAdmins(ctx context.Context, st *demoState, path string) error {
	staff := s.Vault.Staff(s.App.Audit)
	changed := false
	for i := range st.Users {
		u := &st.Users[i]
		if u.Password == "" {
			u.Password = rand.Text()
			changed = true
		}
		if len(u.Roles) == 0 {
			return fmt.Errorf("devenv: demo admin %s has no role", u.Name)
		}
		secret, err := staff.Ensure(ctx, u.Name, u.Roles[0], u.Password, u.TOTPSecret)
		if err != nil {
			return fmt.Errorf("devenv: demo admin %s: %w", u.Name, err)
		}
		if secret != u.TOTPSecret {
			u.TOTPSecret = secret
			changed = true
		}
	}
	if changed {
		return writeJSON(path, st)
	}
	return nil
}

// User returns the demo user called name.
func (s *Stack) User(name string) (DemoUser, bool) {
	for _, u := range s.Users {
		if u.Name == name {
			return u, true
		}
	}
	return DemoUser{}, false
}

// StoreEvent is the provisioning event that seeds a demo tenant.
func (s *Stack) StoreEvent(t DemoTenant) credential.StoreInput {
	return credential.StoreInput{
		TenantID:      t.TenantID,
		Domain:        t.Domain,
		WebmailURL:    "https://mail." + t.Domain,
		MailUAPIURL:   t.MailU.APIURL,
		SMTPAddr:      t.MailU.SMTPAddr,
		MailUAPIToken: t.MailUToken,
	}
}

// retrySeeds stores the given tenants again every SeedRetryInterval until
// each succeeds or the stack closes; a crashed run's tenant lock lapses
// after the lock TTL, after which the store finishes or undoes its change.
func (s *Stack) retrySeeds(tenants []DemoTenant, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	s.closers = append(s.closers, closerFunc(func() error { cancel(); return nil }))
	go func() {
		for len(tenants) > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(SeedRetryInterval):
			}
			left := tenants[:0]
			for _, t := range tenants {
				if err := s.seed(ctx, t); err != nil {
					left = append(left, t)
					continue
				}
				log.Info("demo tenant ready", "tenant_id", t.TenantID)
			}
			tenants = left
		}
	}()
}

// SeedRetryInterval is how often a demo tenant that could not be seeded
// at start is tried again.
var SeedRetryInterval = 20 * time.Second

// seed runs the store function for a demo tenant through the same Lambda
// handler path as the provisioning flow. Store is idempotent, so this runs
// at every start and repairs a tenant whose MailU lost its admin.
func (s *Stack) seed(ctx context.Context, t DemoTenant) error {
	ev, err := json.Marshal(api.StoreEvent{StoreInput: s.StoreEvent(t), RequestedBy: "make-run"})
	if err != nil {
		return err
	}
	if _, err := s.Gateway.Invoke(ctx, "store", ev); err != nil {
		return fmt.Errorf("devenv: seed tenant %s: %w", t.TenantID, err)
	}
	return nil
}

// Token returns a bearer token for a demo user.
func (s *Stack) Token(user string) (string, error) {
	for _, u := range s.Users {
		if u.Name == user {
			return s.Issuer.Sign(u.Name, u.Roles, time.Hour)
		}
	}
	return "", fmt.Errorf("no demo user %q (have: %s)", user, userNames(s.Users))
}

// UserWithRole returns the first demo user holding role.
func (s *Stack) UserWithRole(role auth.Role) string {
	for _, u := range s.Users {
		for _, r := range u.Roles {
			if r == role {
				return u.Name
			}
		}
	}
	return ""
}

// DevEnv is the KEY=value contract that scripts drive the local stack by.
func (s *Stack) DevEnv() map[string]string {
	var ids, smtp, smtps, apis, domains []string
	caFile := ""
	for _, t := range s.Tenants {
		ids = append(ids, t.TenantID)
		smtp = append(smtp, t.MailU.SMTPAddr)
		smtps = append(smtps, t.MailU.SMTPSAddr)
		apis = append(apis, t.MailU.APIURL)
		domains = append(domains, t.Domain)
		caFile = t.MailU.CAFile
	}
	admin, _ := s.User(s.UserWithRole(auth.RolePlatformAdmin))
	support, _ := s.User(s.UserWithRole(auth.RoleSupport))
	return map[string]string{
		"API_URL":         s.APIURL,
		"CONSOLE_URL":     s.ConsoleURL(),
		"JWKS_URL":        s.APIURL + "/.well-known/jwks.json",
		"VAULT_ADDR":      s.Vault.Addr,
		"VAULT_TOKEN":     s.Vault.OperatorToken,
		"DEMO_TENANT_IDS": strings.Join(ids, ","),
		// The tenants' SMTP: Dovecot's STARTTLS listener (MailU's 587) and
		// its implicit-TLS one (465), with the CA its certificate is from.
		"DEMO_SMTP_ADDRS":  strings.Join(smtp, ","),
		"DEMO_SMTPS_ADDRS": strings.Join(smtps, ","),
		"SMTP_CA_FILE":     caFile,
		// The same file under the name the functions' configuration
		// reads (shared/app), so a function run from a shell that sourced
		// this file trusts the local MailU as the stack's functions do.
		"MAILU_CA_FILE": caFile,
		"DEMO_DOMAINS":  strings.Join(domains, ","),
		// Each demo tenant's MailU admin API; its token is in demo.json.
		"DEMO_MAILU_API_URLS": strings.Join(apis, ","),
		"ADMIN_USER":          admin.Name,
		"SUPPORT_USER":        support.Name,
		// To re-authenticate as them: the password, and the TOTP secret
		// that `go run ./scripts/totp <secret>` turns into the current code.
		"ADMIN_PASSWORD":      admin.Password,
		"ADMIN_TOTP_SECRET":   admin.TOTPSecret,
		"SUPPORT_PASSWORD":    support.Password,
		"SUPPORT_TOTP_SECRET": support.TOTPSecret,
		// What SNS would receive in AWS: rotation notices and alerts.
		"NOTIFICATIONS_FILE": s.NotificationsFile,
		// The audit bucket, for any S3 client (path-style).
		"S3_ENDPOINT":   s.S3.Endpoint,
		"S3_REGION":     S3Region,
		"S3_ACCESS_KEY": s.S3.AccessKey,
		"S3_SECRET_KEY": s.S3.SecretKey,
		"AUDIT_BUCKET":  AuditBucket,
		// The backups: the bucket, and the key file that stands in for KMS.
		"BACKUP_BUCKET":   BackupBucket,
		"BACKUP_KEY_FILE": s.Backup.KeyFile,
	}
}

// WriteDevEnv writes DevEnv to path (mode 0600: it holds a Vault token and
// the demo admins' passwords and TOTP secrets).
func (s *Stack) WriteDevEnv(path string) error {
	return WriteEnvFile(path, "Written by make run; read by scripts. Local values only.\nsource it: every key is exported.", s.DevEnv())
}

// WriteFunctionsEnv records the functions' own configuration at path
// (.local/functions.env), with each function's AppRole login under
// app.FunctionLoginVars, so `gateway invoke` runs a function with its own
// Vault policy, as the stack does, and operator commands can log in as
// the function whose work they do. Plain KEY=value lines, for
// `set -a; source`.
func (s *Stack) WriteFunctionsEnv(path string) error {
	body := fmt.Sprintf("VAULT_ADDR=%s\nVAULT_AUTH_METHOD=approle\n", s.Vault.Addr)
	names := make([]string, 0, len(s.Vault.Functions))
	for fn := range s.Vault.Functions {
		names = append(names, fn)
	}
	sort.Strings(names)
	for _, fn := range names {
		l := s.Vault.Functions[fn]
		roleVar, secretVar := app.FunctionLoginVars(fn)
		body += fmt.Sprintf("%s=%s\n%s=%s\n", roleVar, l.RoleID, secretVar, l.SecretID)
	}
	body += fmt.Sprintf("AUDIT_BUCKET=%s\nS3_ENDPOINT=%s\nS3_REGION=%s\nS3_ACCESS_KEY=%s\nS3_SECRET_KEY=%s\n", AuditBucket, s.S3.Endpoint, S3Region, s.S3.AccessKey, s.S3.SecretKey)
	body += fmt.Sprintf("BACKUP_BUCKET=%s\nBACKUP_KEY_FILE=%s\n", s.Backup.Bucket, s.Backup.KeyFile)
	// As the stack runs them: alert counters in the bucket, endpoints on
	// the loopback stand-ins allowed.
	body += fmt.Sprintf("ALERT_STATE_BUCKET=%s\nENDPOINT_ALLOWED_HOSTS=%s\n", s.App.Config.AlertStateBucket, strings.Join(s.App.Config.EndpointAllowedHosts, ","))
	return os.WriteFile(path, []byte(body), 0o600)
}

// ConsoleURL is the console's overview page on the local gateway.
func (s *Stack) ConsoleURL() string { return s.APIURL + console.Prefix + "smtp-credentials" }

// Close stops the gateway, the MailU stand-ins and Vault.
func (s *Stack) Close() {
	if s.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = s.server.Shutdown(ctx)
		cancel()
	}
	// What the stack opened itself (the local queue's workers, the
	// notifications file) stops first, newest first, while the servers
	// they use are still up.
	for _, c := range slices.Backward(s.closers) {
		_ = c.Close()
	}
	if s.MailU != nil {
		_ = s.MailU.Close()
	}
	if s.Vault != nil {
		_ = s.Vault.Stop()
	}
	if s.S3 != nil {
		_ = s.S3.Close()
	}
}

// BackupConfig is the backup function's configuration in a stack kept in
// dir: the local backups bucket, and the key file beside (never inside)
// Vault's data directory.
func BackupConfig(dir string, now func() time.Time) app.BackupConfig {
	return app.BackupConfig{Bucket: BackupBucket, KeyFile: filepath.Join(dir, "backup.key"), Now: now, UnsealWait: 2 * time.Minute}
}

// loadDemo reads the demo tenants and users, creating them the first time
// so that they survive restarts.
func loadDemo(path string, tenants int) (demoState, error) {
	var st demoState
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &st); err != nil {
			return st, fmt.Errorf("devenv: read %s: %w", path, err)
		}
	case errors.Is(err, os.ErrNotExist):
	default:
		return st, err
	}
	changed := false
	for len(st.Tenants) < tenants {
		tok := make([]byte, 24)
		if _, err := rand.Read(tok); err != nil {
			return st, err
		}
		n := len(st.Tenants) + 1
		st.Tenants = append(st.Tenants, DemoTenant{
			TenantID:   uuid.NewString(),
			Domain:     fmt.Sprintf("tenant%d.example.test", n),
			MailUToken: hex.EncodeToString(tok),
		})
		changed = true
	}
	if len(st.Users) == 0 {
		st.Users = []DemoUser{
			{Name: "alice", Roles: []auth.Role{auth.RolePlatformAdmin}},
			{Name: "sam", Roles: []auth.Role{auth.RoleSupport}},
		}
		changed = true
	}
	if changed {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return st, err
		}
		return st, writeJSON(path, st)
	}
	return st, nil
}

func userNames(us []DemoUser) string {
	var names []string
	for _, u := range us {
		names = append(names, u.Name)
	}
	return strings.Join(names, ", ")
}
