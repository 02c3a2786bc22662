package app_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"smtp-vault/shared/api"
	"smtp-vault/shared/app"
	"smtp-vault/shared/notify"
)

var configVars = []string{
	"VAULT_ADDR", "VAULT_AUTH_METHOD", "VAULT_TOKEN", "VAULT_AUTH_MOUNT",
	"VAULT_ROLE_ID", "VAULT_SECRET_ID", "VAULT_AWS_ROLE", "VAULT_AWS_SERVER_ID",
	"VAULT_KV_MOUNT", "VAULT_TRANSIT_MOUNT", "VAULT_TRANSIT_KEY",
	"VAULT_TIMEOUT", "SMTP_TIMEOUT", "MAILU_TIMEOUT", "MAILU_CA_FILE", "MAILU_CA_PEM",
	"VAULT_CACERT", "VAULT_CACERT_BYTES", "VAULT_CAPATH", "VAULT_SKIP_VERIFY",
	"ROLES_CLAIM", "AWS_REGION", "LOG_LEVEL", "NOTIFY_TOPIC_ARN",
	"REAUTH_TTL", "VAULT_USERPASS_MOUNT", "VAULT_ACCESS_MOUNT", "VAULT_REAUTH_KEY", "CONSOLE_ORIGIN",
	"CONSOLE_SIGN_IN_MODE", "CONSOLE_SIGN_IN_URL", "CONSOLE_CODE_EXCHANGE_URL", "CONSOLE_CLIENT_ID",
	"AUDIT_BUCKET", "AUDIT_RETENTION_YEARS", "S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY", "S3_SECRET_KEY",
	"S3_TIMEOUT", "VAULT_ALERTS_MOUNT", "ALERT_STATE_BUCKET",
	"ROTATE_QUEUE_URL", "RESET_QUEUE_URL", "ROTATE_INLINE_MAX", "ROTATION_COOLDOWN",
	"JWT_ISSUER", "JWT_AUDIENCE", "JWKS_URL", "HTTP_API_ID", "ENDPOINT_ALLOWED_HOSTS",
	"VAULT_AUDIT_MAC_KEY", "VAULT_AUDIT_ANCHORS_MOUNT", "VAULT_INDEX_MOUNT", "INDEX_SHARDS", "INDEX_CACHE_TTL",
}

// clearEnv blanks every variable FromEnv reads, so the developer's shell
// cannot change what a test sees. t.Setenv restores them afterwards.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range configVars {
		t.Setenv(k, "")
	}
}

func TestFromEnvDefaults(t *testing.T) {
	clearEnv(t)
	c, err := app.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := app.Config{
		VaultAddr:         "http://127.0.0.1:8200",
		VaultAuthMethod:   "approle",
		KVMount:           "smtp",
		TransitMount:      "transit",
		TransitKey:        "smtp-credentials",
		VaultTimeout:      5 * time.Second,
		SMTPTimeout:       10 * time.Second,
		MailUTimeout:      10 * time.Second,
		RolesClaim:        "roles",
		AWSRegion:         "eu-central-1",
		LogLevel:          "info",
		ConsoleSignInMode: "hosted",
		// The audit trail: 7 years of COMPLIANCE lock, the bucket in the
		// functions' region, alert state in smtp-alerts.
		AuditRetentionYears: 7,
		S3Region:            "eu-central-1",
		S3Timeout:           10 * time.Second,
		AlertsMount:         "smtp-alerts",
		// Rotation: jobs beyond 25 go to the queue; 10 minutes between
		// two rotations of a tenant.
		RotateInline:      25,
		RotationCooldown:  10 * time.Minute,
		IndexMount:        "smtp-index",
		LegacyIndexShards: 16,
		IndexCacheTTL:     2 * time.Second,
		AuditChain:        app.AuditChainConfig{MACKey: "audit-mac", AnchorsMount: "smtp-audit-anchors"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("defaults:\n got %+v\nwant %+v", c, want)
	}
}

func TestFromEnvOverrides(t *testing.T) {
	clearEnv(t)
	env := map[string]string{
		"VAULT_ADDR":                "https://vault.internal:8200",
		"VAULT_AUTH_METHOD":         "aws",
		"VAULT_TOKEN":               "tok",
		"VAULT_AUTH_MOUNT":          "aws-lambda",
		"VAULT_ROLE_ID":             "role-id",
		"VAULT_SECRET_ID":           "secret-id",
		"VAULT_AWS_ROLE":            "smtp-vault-fn",
		"VAULT_AWS_SERVER_ID":       "vault.internal",
		"VAULT_KV_MOUNT":            "kv-smtp",
		"VAULT_TRANSIT_MOUNT":       "transit-2",
		"VAULT_TRANSIT_KEY":         "other-key",
		"VAULT_TIMEOUT":             "3s",
		"SMTP_TIMEOUT":              "4",
		"MAILU_TIMEOUT":             "1500ms",
		"ROLES_CLAIM":               "cognito:groups",
		"AWS_REGION":                "us-east-1",
		"LOG_LEVEL":                 "debug",
		"CONSOLE_SIGN_IN_MODE":      "local",
		"CONSOLE_SIGN_IN_URL":       "/local/sign-in",
		"CONSOLE_CODE_EXCHANGE_URL": "https://login.example.com/oauth2/token",
		"CONSOLE_CLIENT_ID":         "console-client",
		"AUDIT_BUCKET":              "audit-bucket",
		"AUDIT_RETENTION_YEARS":     "10",
		"S3_ENDPOINT":               "http://127.0.0.1:7070",
		"S3_REGION":                 "local-1",
		"S3_ACCESS_KEY":             "ak",
		"S3_SECRET_KEY":             "sk",
		"S3_TIMEOUT":                "2s",
		"VAULT_ALERTS_MOUNT":        "alerts-2",
		"ALERT_STATE_BUCKET":        "alert-state",
		"ROTATE_QUEUE_URL":          "https://sqs.us-east-1.amazonaws.com/123456789012/rotate",
		"ROTATE_INLINE_MAX":         "0",
		"ROTATION_COOLDOWN":         "1h",
		"VAULT_AUDIT_MAC_KEY":       "mac-2",
		"VAULT_AUDIT_ANCHORS_MOUNT": "anchors-2",
		"VAULT_INDEX_MOUNT":         "index-2",
		"INDEX_SHARDS":              "1024",
		"INDEX_CACHE_TTL":           "off",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	c, err := app.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	want := app.Config{
		VaultAddr:        "https://vault.internal:8200",
		VaultAuthMethod:  "aws",
		VaultToken:       "tok",
		VaultAuthMount:   "aws-lambda",
		VaultRoleID:      "role-id",
		VaultSecretID:    "secret-id",
		VaultAWSRole:     "smtp-vault-fn",
		VaultAWSServerID: "vault.internal",
		KVMount:          "kv-smtp",
		TransitMount:     "transit-2",
		TransitKey:       "other-key",
		VaultTimeout:     3 * time.Second,
		SMTPTimeout:      4 * time.Second,
		MailUTimeout:     1500 * time.Millisecond,
		RolesClaim:       "cognito:groups",
		AWSRegion:        "us-east-1",
		LogLevel:         "debug",

		ConsoleSignInMode: "local",
		ConsoleSignInURL:  "/local/sign-in",
		ConsoleTokenURL:   "https://login.example.com/oauth2/token",
		ConsoleClientID:   "console-client",

		AuditBucket:         "audit-bucket",
		AuditRetentionYears: 10,
		S3Endpoint:          "http://127.0.0.1:7070",
		S3Region:            "local-1",
		S3AccessKey:         "ak",
		S3SecretKey:         "sk",
		S3Timeout:           2 * time.Second,
		AlertsMount:         "alerts-2",
		AlertStateBucket:    "alert-state",
		RotateQueueURL:      "https://sqs.us-east-1.amazonaws.com/123456789012/rotate",
		RotateInline:        0,
		RotationCooldown:    time.Hour,
		IndexMount:          "index-2",
		LegacyIndexShards:   1024,
		AuditChain:          app.AuditChainConfig{MACKey: "mac-2", AnchorsMount: "anchors-2"},
	}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("overrides:\n got %+v\nwant %+v", c, want)
	}
}

func TestFromEnvDurations(t *testing.T) {
	vars := []struct {
		name string
		get  func(app.Config) time.Duration
	}{
		{"VAULT_TIMEOUT", func(c app.Config) time.Duration { return c.VaultTimeout }},
		{"SMTP_TIMEOUT", func(c app.Config) time.Duration { return c.SMTPTimeout }},
		{"MAILU_TIMEOUT", func(c app.Config) time.Duration { return c.MailUTimeout }},
	}
	cases := []struct {
		value string
		want  time.Duration // 0: rejected
	}{
		{"7s", 7 * time.Second},
		{"7", 7 * time.Second},
		{"250ms", 250 * time.Millisecond},
		{"1m30s", 90 * time.Second},
		{"-1", 0},
		{"-5s", 0},
		{"abc", 0},
		{"0", 0},
		{"0s", 0},
		{"7 s", 0},
		{"1.5", 0},
	}
	for _, v := range vars {
		for _, c := range cases {
			t.Run(v.name+"="+c.value, func(t *testing.T) {
				clearEnv(t)
				t.Setenv(v.name, c.value)
				cfg, err := app.FromEnv()
				if c.want == 0 {
					if err == nil {
						t.Fatalf("%s=%q accepted as %v", v.name, c.value, v.get(cfg))
					}
					if !strings.Contains(err.Error(), v.name) {
						t.Fatalf("error %q does not name %s", err, v.name)
					}
					return
				}
				if err != nil {
					t.Fatalf("%s=%q: %v", v.name, c.value, err)
				}
				if got := v.get(cfg); got != c.want {
					t.Fatalf("%s=%q gives %v, want %v", v.name, c.value, got, c.want)
				}
			})
		}
	}
}

func quiet() app.Options { return app.Options{AuditOut: io.Discard, LogOut: io.Discard} }

func TestNewChecksAuth(t *testing.T) {
	base := func() app.Config {
		clearEnv(t)
		c, err := app.FromEnv()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cases := []struct {
		name   string
		change func(*app.Config)
		ok     bool
	}{
		{"unknown method", func(c *app.Config) { c.VaultAuthMethod = "ldap" }, false},
		{"approle without anything", func(c *app.Config) {}, false},
		{"approle without secret id", func(c *app.Config) { c.VaultRoleID = "r" }, false},
		{"approle without role id", func(c *app.Config) { c.VaultSecretID = "s" }, false},
		{"approle complete", func(c *app.Config) { c.VaultRoleID, c.VaultSecretID = "r", "s" }, true},
		{"token without token", func(c *app.Config) { c.VaultAuthMethod = "token" }, false},
		{"token", func(c *app.Config) { c.VaultAuthMethod, c.VaultToken = "token", "t" }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base()
			c.change(&cfg)
			a, err := app.New(context.Background(), cfg, quiet())
			if c.ok {
				if err != nil || a == nil || a.Vault == nil || a.API.Credentials == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("New accepted auth method %q with role %q secret %q token %q", cfg.VaultAuthMethod, cfg.VaultRoleID, cfg.VaultSecretID, cfg.VaultToken)
			}
		})
	}
}

// TestHandlersMatchFunctionFolders keeps app.Handlers, functions/<name>/
// and the API routes in step: a function without a folder is never
// deployed, a folder without a handler would not run locally.
func TestHandlersMatchFunctionFolders(t *testing.T) {
	entries, err := os.ReadDir("../../functions")
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, e := range entries {
		if e.IsDir() {
			folders = append(folders, e.Name())
		}
	}
	if len(folders) == 0 {
		t.Fatal("no function folders found")
	}
	clearEnv(t)
	cfg, err := app.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.VaultAuthMethod, cfg.VaultToken = "token", "t"
	a, err := app.New(context.Background(), cfg, quiet())
	if err != nil {
		t.Fatal(err)
	}
	hs := a.Handlers()
	var names []string
	for name, h := range hs {
		if h == nil {
			t.Errorf("handler %s is nil", name)
		}
		names = append(names, name)
	}
	slices.Sort(names)
	slices.Sort(folders)
	if !slices.Equal(names, folders) {
		t.Fatalf("Handlers() has %v, functions/ has %v", names, folders)
	}
	for _, r := range api.Routes {
		if _, ok := hs[r.Function]; !ok {
			t.Errorf("route %s %s names function %q, which has no handler", r.Method, r.Path, r.Function)
		}
	}
}

// TestNotifierChoice: an injected notifier wins; with NOTIFY_TOPIC_ARN the
// functions publish to SNS; without it, JSON lines go to the log stream.
func TestNotifierChoice(t *testing.T) {
	clearEnv(t)
	cfg, err := app.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	cfg.VaultAuthMethod, cfg.VaultToken = "token", "t"
	ctx := context.Background()
	msg := notify.Message{Kind: notify.KindSecurityAlert, Subject: "test"}

	var logs strings.Builder
	a, err := app.New(ctx, cfg, app.Options{AuditOut: io.Discard, LogOut: &logs})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Notifier.Notify(ctx, msg); err != nil || !strings.Contains(logs.String(), `"kind":"security_alert"`) {
		t.Fatalf("default notifier: %v, log %q", err, logs.String())
	}

	mem := &notify.Memory{}
	a, err = app.New(ctx, cfg, app.Options{AuditOut: io.Discard, LogOut: io.Discard, Notifier: mem})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Notifier.Notify(ctx, msg); err != nil || len(mem.Messages()) != 1 {
		t.Fatalf("injected notifier: %v, %d messages", err, len(mem.Messages()))
	}

	t.Setenv("NOTIFY_TOPIC_ARN", "arn:aws:sns:eu-west-1:123456789012:smtp-vault")
	t.Setenv("AWS_REGION", "eu-west-1")
	if cfg, err = app.FromEnv(); err != nil {
		t.Fatal(err)
	}
	cfg.VaultAuthMethod, cfg.VaultToken = "token", "t"
	if a, err = app.New(ctx, cfg, quiet()); err != nil {
		t.Fatal(err)
	}
	if s, ok := a.Notifier.(notify.SNS); !ok || s.TopicARN != cfg.NotifyTopicARN {
		t.Fatalf("with NOTIFY_TOPIC_ARN the notifier is %T", a.Notifier)
	}
}

func TestAuditSettingsAreChecked(t *testing.T) {
	for _, c := range []struct{ key, value string }{
		{"AUDIT_RETENTION_YEARS", "0"},
		{"AUDIT_RETENTION_YEARS", "seven"},
		{"AUDIT_RETENTION_YEARS", "101"},
		{"S3_ACCESS_KEY", "only-half-of-a-key-pair"},
		{"S3_TIMEOUT", "-1s"},
	} {
		clearEnv(t)
		t.Setenv(c.key, c.value)
		if _, err := app.FromEnv(); err == nil {
			t.Errorf("%s=%q accepted", c.key, c.value)
		}
	}
	// A function without an audit bucket does not start: it could not
	// record anything, so it must not serve anything.
	clearEnv(t)
	t.Setenv("VAULT_AUTH_METHOD", "token")
	t.Setenv("VAULT_TOKEN", "t")
	if _, err := app.FromEnvironment(context.Background()); err == nil || !strings.Contains(err.Error(), "AUDIT_BUCKET") {
		t.Fatalf("FromEnvironment without AUDIT_BUCKET: %v", err)
	}
}

func TestFromEnvTokenCheckAndEndpointHosts(t *testing.T) {
	clearEnv(t)
	t.Setenv("JWT_ISSUER", "https://cognito-idp.eu-central-1.amazonaws.com/pool/")
	t.Setenv("JWT_AUDIENCE", "client")
	t.Setenv("HTTP_API_ID", "abc123")
	t.Setenv("ENDPOINT_ALLOWED_HOSTS", " Mail.Platform.example , ,relay.example")
	c, err := app.FromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if c.JWKSURL != "https://cognito-idp.eu-central-1.amazonaws.com/pool/.well-known/jwks.json" || c.HTTPAPIID != "abc123" || c.JWTAudience != "client" {
		t.Fatalf("token check settings: %+v", c)
	}
	if !reflect.DeepEqual(c.EndpointAllowedHosts, []string{"mail.platform.example", "relay.example"}) {
		t.Fatalf("allowed hosts %q", c.EndpointAllowedHosts)
	}
	t.Setenv("JWKS_URL", "https://idp.example/keys")
	if c, err = app.FromEnv(); err != nil || c.JWKSURL != "https://idp.example/keys" {
		t.Fatalf("JWKS_URL override: %q, %v", c.JWKSURL, err)
	}
}

func TestFromEnvRefusesABadShardCount(t *testing.T) {
	for _, v := range []string{"0", "-1", "x", "65537", "1.5"} {
		clearEnv(t)
		t.Setenv("INDEX_SHARDS", v)
		if _, err := app.FromEnv(); err == nil || !strings.Contains(err.Error(), "INDEX_SHARDS") {
			t.Errorf("INDEX_SHARDS=%q: %v, want an error naming it", v, err)
		}
	}
}

// TestFromEnvCAs: the CAs of the tenants' MailU (MAILU_CA_FILE or
// MAILU_CA_PEM) and of Vault (VAULT_CACERT or VAULT_CACERT_BYTES, Vault's
// own names) are read once, from a file or inline PEM, and trusted beside
// the system's roots; a value that holds no certificate is refused at
// start rather than at the first connection.
func TestFromEnvCAs(t *testing.T) {
	cert, caPEM := testCA(t)
	file := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(file, caPEM, 0o600); err != nil {
		t.Fatal(err)
	}

	clearEnv(t)
	c, err := app.FromEnv()
	if err != nil || c.MailURootCAs != nil || c.VaultRootCAs != nil {
		t.Fatalf("no CA configured: %v %v, %v", c.MailURootCAs, c.VaultRootCAs, err)
	}
	for _, v := range []struct {
		fileKey, pemKey string
		pool            func(app.Config) *x509.CertPool
		other           func(app.Config) *x509.CertPool
	}{
		{"MAILU_CA_FILE", "MAILU_CA_PEM", func(c app.Config) *x509.CertPool { return c.MailURootCAs }, func(c app.Config) *x509.CertPool { return c.VaultRootCAs }},
		{"VAULT_CACERT", "VAULT_CACERT_BYTES", func(c app.Config) *x509.CertPool { return c.VaultRootCAs }, func(c app.Config) *x509.CertPool { return c.MailURootCAs }},
	} {
		for name, set := range map[string]func(){
			"file": func() { t.Setenv(v.fileKey, file) },
			"pem":  func() { t.Setenv(v.pemKey, string(caPEM)) },
		} {
			t.Run(v.fileKey+"/"+name, func(t *testing.T) {
				clearEnv(t)
				set()
				c, err := app.FromEnv()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := cert.Verify(x509.VerifyOptions{Roots: v.pool(c), DNSName: "127.0.0.1"}); err != nil {
					t.Fatalf("the configured CA is not trusted: %v", err)
				}
				if v.other(c) != nil {
					t.Fatal("the CA was given to the other service too")
				}
			})
		}
		for name, set := range map[string]func(){
			"missing file": func() { t.Setenv(v.fileKey, file+".missing") },
			"not pem":      func() { t.Setenv(v.pemKey, "hello") },
			"file and pem": func() { t.Setenv(v.pemKey, string(caPEM)); t.Setenv(v.fileKey, file) },
		} {
			t.Run(v.fileKey+"/"+name, func(t *testing.T) {
				clearEnv(t)
				set()
				if _, err := app.FromEnv(); err == nil || !strings.Contains(err.Error(), v.fileKey) {
					t.Fatalf("accepted, or the error names another setting: %v", err)
				}
			})
		}
	}
	// A folder of CAs is not read: refused rather than ignored.
	clearEnv(t)
	t.Setenv("VAULT_CAPATH", filepath.Dir(file))
	if _, err := app.FromEnv(); err == nil || !strings.Contains(err.Error(), "VAULT_CAPATH") {
		t.Fatalf("VAULT_CAPATH: %v", err)
	}
}

func testCA(t *testing.T) (*x509.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "local test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA: true, BasicConstraintsValid: true, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
