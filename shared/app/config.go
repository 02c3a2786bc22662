package app

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"smtp-vault/shared/console"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/reauth"
)

// Config is every setting of the functions, read once from the
// environment. The defaults are those of the local stack (make run).
type Config struct {
	VaultAddr        string        // VAULT_ADDR
	VaultAuthMethod  string        // VAULT_AUTH_METHOD: token, approle or aws
	VaultToken       string        // VAULT_TOKEN (auth method token only)
	VaultAuthMount   string        // VAULT_AUTH_MOUNT
	VaultRoleID      string        // VAULT_ROLE_ID (approle)
	VaultSecretID    string        // VAULT_SECRET_ID (approle)
	VaultAWSRole     string        // VAULT_AWS_ROLE (aws)
	VaultAWSServerID string        // VAULT_AWS_SERVER_ID (aws, optional)
	KVMount          string        // VAULT_KV_MOUNT
	TransitMount     string        // VAULT_TRANSIT_MOUNT
	TransitKey       string        // VAULT_TRANSIT_KEY
	VaultTimeout     time.Duration // VAULT_TIMEOUT
	SMTPTimeout      time.Duration // SMTP_TIMEOUT: one SMTP AUTH check
	MailUTimeout     time.Duration // MAILU_TIMEOUT: one MailU API call
	// MailURootCAs are the certificate authorities trusted for the
	// tenants' MailU (SMTP and admin API) besides the system's: PEM from
	// MAILU_CA_FILE (a path) or MAILU_CA_PEM (the PEM itself). nil when
	// neither is set. Locally it is the CA that signs the Dovecot front's
	// certificate; in AWS a platform with a private CA sets it.
	MailURootCAs *x509.CertPool
	// VaultRootCAs are the certificate authorities trusted for Vault
	// besides the system's, read from Vault's own variables: VAULT_CACERT
	// (a path) or VAULT_CACERT_BYTES (the PEM itself). nil when neither
	// is set. VAULT_CAPATH is refused and VAULT_SKIP_VERIFY never read: no
	// certificate check is skipped.
	VaultRootCAs *x509.CertPool
	RolesClaim   string // ROLES_CLAIM: the JWT claim holding roles
	// Each function verifies the bearer token itself (beside API
	// Gateway's authorizer): JWT_ISSUER and JWT_AUDIENCE as the authorizer
	// has them, JWKS_URL (default <issuer>/.well-known/jwks.json), and
	// HTTP_API_ID, when set, the only API whose events are served.
	JWTIssuer   string
	JWTAudience string
	JWKSURL     string
	HTTPAPIID   string
	AWSRegion   string // AWS_REGION
	LogLevel    string // LOG_LEVEL: debug, info, warn, error

	// Re-authentication. Empty means the default, applied where the
	// setting is used (reauth.New, the local stack).
	ReauthTTL     time.Duration // REAUTH_TTL: re-auth token lifetime; 15m, at most 15m
	UserpassMount string        // VAULT_USERPASS_MOUNT: the staff's userpass mount; userpass
	AccessMount   string        // VAULT_ACCESS_MOUNT: KV v2 mount of the failed-attempt records; smtp-access
	ReauthKey     string        // VAULT_REAUTH_KEY: Transit key that signs re-auth tokens; reauth-signing
	ConsoleOrigin string        // CONSOLE_ORIGIN: the only origin CORS allows; the local gateway's own
	// The console's sign-in (docs/architecture.md, "Console"):
	// CONSOLE_SIGN_IN_MODE hosted (default; the identity provider's hosted
	// login: authorization code with PKCE, authorization endpoint
	// CONSOLE_SIGN_IN_URL, token endpoint CONSOLE_CODE_EXCHANGE_URL, public client
	// CONSOLE_CLIENT_ID) or local (the local stack's issuer).
	ConsoleSignInMode string
	ConsoleSignInURL  string
	ConsoleTokenURL   string
	ConsoleClientID   string

	// NotifyTopicARN (NOTIFY_TOPIC_ARN) is the SNS topic of rotation
	// notices and security alerts; empty: JSON lines on stderr (locally
	// the stack passes its own sink).
	NotifyTopicARN string

	// The audit bucket (S3 with Object Lock). S3Endpoint and the keys are
	// for S3-compatible servers (the local stack); in AWS they are empty
	// and the function's role signs the requests.
	AuditBucket         string        // AUDIT_BUCKET; required by the functions
	AuditRetentionYears int           // AUDIT_RETENTION_YEARS: COMPLIANCE retention of each record; 7
	S3Endpoint          string        // S3_ENDPOINT: e.g. http://127.0.0.1:7070 (path-style)
	S3Region            string        // S3_REGION: the bucket's region; AWS_REGION
	S3AccessKey         string        // S3_ACCESS_KEY
	S3SecretKey         string        // S3_SECRET_KEY
	S3Timeout           time.Duration // S3_TIMEOUT: one S3 request; 10s
	// The alert rules' counters: in the S3 bucket AlertStateBucket
	// (ALERT_STATE_BUCKET, no Object Lock, same endpoint and keys as the
	// audit bucket) when set, as template.yaml and the local stack do;
	// otherwise in the KV v2 mount AlertsMount (VAULT_ALERTS_MOUNT,
	// default smtp-alerts).
	AlertStateBucket string
	AlertsMount      string
	// Rotation. RotateQueueURL (ROTATE_QUEUE_URL) is RotateQueue, where
	// the sweep sends the jobs beyond RotateInline (ROTATE_INLINE_MAX,
	// default 25); empty: the sweep does every job itself (locally the
	// stack passes an in-process queue). RotationCooldown
	// (ROTATION_COOLDOWN, default 10m) is the least time between two
	// rotations of one tenant.
	RotateQueueURL string
	// ResetQueueURL (RESET_QUEUE_URL) is ResetQueue, where a compromise
	// response sends its tenants; empty: the request resets them itself.
	ResetQueueURL    string
	RotateInline     int
	RotationCooldown time.Duration
	// EndpointAllowedHosts (ENDPOINT_ALLOWED_HOSTS, comma-separated) are
	// hosts outside a tenant's domain that its endpoints may move to;
	// empty: only hosts under the tenant's domain.
	EndpointAllowedHosts []string
	// The status index (shared/credential/index.go): its KV v2 mount
	// IndexMount (VAULT_INDEX_MOUNT, default smtp-index). It sizes itself;
	// LegacyIndexShards (INDEX_SHARDS, deprecated, default 16) is only the
	// shard count of an index written by an earlier version, which the
	// first change after the upgrade migrates.
	// The overview answers from a read of it up to IndexCacheTTL old
	// (INDEX_CACHE_TTL, default 2s; "off" disables it).
	IndexMount        string
	LegacyIndexShards int
	IndexCacheTTL     time.Duration
	AuditChain        AuditChainConfig // the audit chains' MAC key and anchors (auditkey.go)
}

// FromEnv reads the configuration; a malformed value is an error.
func FromEnv() (Config, error) {
	c := Config{
		VaultAddr:        env("VAULT_ADDR", "http://127.0.0.1:8200"),
		VaultAuthMethod:  env("VAULT_AUTH_METHOD", "approle"),
		VaultToken:       os.Getenv("VAULT_TOKEN"),
		VaultAuthMount:   os.Getenv("VAULT_AUTH_MOUNT"),
		VaultRoleID:      os.Getenv("VAULT_ROLE_ID"),
		VaultSecretID:    os.Getenv("VAULT_SECRET_ID"),
		VaultAWSRole:     os.Getenv("VAULT_AWS_ROLE"),
		VaultAWSServerID: os.Getenv("VAULT_AWS_SERVER_ID"),
		KVMount:          env("VAULT_KV_MOUNT", "smtp"),
		TransitMount:     env("VAULT_TRANSIT_MOUNT", "transit"),
		TransitKey:       env("VAULT_TRANSIT_KEY", "smtp-credentials"),
		RolesClaim:       env("ROLES_CLAIM", "roles"),
		AWSRegion:        env("AWS_REGION", "eu-central-1"),
		LogLevel:         env("LOG_LEVEL", "info"),
	}
	var err error
	if c.VaultTimeout, err = duration("VAULT_TIMEOUT", 5*time.Second); err != nil {
		return Config{}, err
	}
	if c.SMTPTimeout, err = duration("SMTP_TIMEOUT", 10*time.Second); err != nil {
		return Config{}, err
	}
	if c.MailUTimeout, err = duration("MAILU_TIMEOUT", 10*time.Second); err != nil {
		return Config{}, err
	}
	if c.MailURootCAs, err = mailuRootCAs(); err != nil {
		return Config{}, err
	}
	if c.VaultRootCAs, err = vaultRootCAs(); err != nil {
		return Config{}, err
	}
	if c.ReauthTTL, err = duration("REAUTH_TTL", 0); err != nil {
		return Config{}, err
	}
	if c.ReauthTTL > reauth.MaxTTL {
		return Config{}, fmt.Errorf("config: REAUTH_TTL=%v is longer than the %v a re-auth token may live", c.ReauthTTL, reauth.MaxTTL)
	}
	c.JWTIssuer, c.JWTAudience, c.HTTPAPIID = os.Getenv("JWT_ISSUER"), os.Getenv("JWT_AUDIENCE"), os.Getenv("HTTP_API_ID")
	if c.JWKSURL = os.Getenv("JWKS_URL"); c.JWKSURL == "" && c.JWTIssuer != "" {
		c.JWKSURL = strings.TrimSuffix(c.JWTIssuer, "/") + "/.well-known/jwks.json"
	}
	c.UserpassMount = os.Getenv("VAULT_USERPASS_MOUNT")
	c.AccessMount = os.Getenv("VAULT_ACCESS_MOUNT")
	c.ReauthKey = os.Getenv("VAULT_REAUTH_KEY")
	c.ConsoleOrigin = os.Getenv("CONSOLE_ORIGIN")
	c.ConsoleSignInMode = env("CONSOLE_SIGN_IN_MODE", console.SignInHosted)
	c.ConsoleSignInURL = os.Getenv("CONSOLE_SIGN_IN_URL")
	c.ConsoleTokenURL = os.Getenv("CONSOLE_CODE_EXCHANGE_URL")
	c.ConsoleClientID = os.Getenv("CONSOLE_CLIENT_ID")
	c.NotifyTopicARN = os.Getenv("NOTIFY_TOPIC_ARN")
	if err := c.auditFromEnv(); err != nil {
		return Config{}, err
	}
	c.RotateQueueURL = os.Getenv("ROTATE_QUEUE_URL")
	c.ResetQueueURL = os.Getenv("RESET_QUEUE_URL")
	if c.RotationCooldown, err = duration("ROTATION_COOLDOWN", credential.DefaultCooldown); err != nil {
		return Config{}, err
	}
	for _, h := range strings.Split(os.Getenv("ENDPOINT_ALLOWED_HOSTS"), ",") {
		if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
			c.EndpointAllowedHosts = append(c.EndpointAllowedHosts, h)
		}
	}
	c.IndexMount = env("VAULT_INDEX_MOUNT", credential.DefaultIndexMount)
	c.LegacyIndexShards = credential.DefaultLegacyIndexShards
	if v := os.Getenv("INDEX_SHARDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 65536 {
			return Config{}, fmt.Errorf("config: INDEX_SHARDS=%q is not a whole number from 1 to 65536", v)
		}
		c.LegacyIndexShards = n
	}
	c.IndexCacheTTL = credential.DefaultIndexCacheTTL
	if v := os.Getenv("INDEX_CACHE_TTL"); v == "off" {
		c.IndexCacheTTL = 0
	} else if c.IndexCacheTTL, err = duration("INDEX_CACHE_TTL", credential.DefaultIndexCacheTTL); err != nil {
		return Config{}, err
	}
	c.RotateInline = 25
	if v := os.Getenv("ROTATE_INLINE_MAX"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return Config{}, fmt.Errorf("config: ROTATE_INLINE_MAX=%q is not a whole number from 0", v)
		}
		c.RotateInline = n
	}
	return c, nil
}

// mailuRootCAs reads MAILU_CA_FILE or MAILU_CA_PEM (not both) into a
// pool with the system's roots and the given ones.
func mailuRootCAs() (*x509.CertPool, error) {
	return rootCAsFromEnv("MAILU_CA_FILE", "MAILU_CA_PEM")
}

// vaultRootCAs reads VAULT_CACERT or VAULT_CACERT_BYTES (not both), the
// names Vault's own CLI reads, into a pool with the system's roots and the
// given ones. The functions give Vault's client a transport of their own,
// so vault/api's reading of these never applies: without this a Vault
// behind a private CA was refused whatever VAULT_CACERT said.
func vaultRootCAs() (*x509.CertPool, error) {
	if os.Getenv("VAULT_CAPATH") != "" {
		return nil, fmt.Errorf("config: VAULT_CAPATH (a folder of CA files) is not read: give the CA as VAULT_CACERT (a file) or VAULT_CACERT_BYTES (PEM)")
	}
	return rootCAsFromEnv("VAULT_CACERT", "VAULT_CACERT_BYTES")
}

// rootCAsFromEnv reads PEM from the file named by fileKey or from pemKey
// itself (not both): nil when neither is set.
func rootCAsFromEnv(fileKey, pemKey string) (*x509.CertPool, error) {
	file, inline := os.Getenv(fileKey), os.Getenv(pemKey)
	var pem []byte
	switch {
	case file != "" && inline != "":
		return nil, fmt.Errorf("config: set %s or %s, not both", fileKey, pemKey)
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("config: %s: %w", fileKey, err)
		}
		pem = b
	case inline != "":
		pem = []byte(inline)
	default:
		return nil, nil
	}
	pool, err := rootsWith(pem)
	if err != nil {
		return nil, fmt.Errorf("config: %s/%s holds no PEM certificate", fileKey, pemKey)
	}
	return pool, nil
}

// MailURootCAs is the system's roots plus the PEM certificates in pem:
// what MAILU_CA_FILE and MAILU_CA_PEM configure (the local stack passes
// its Dovecot front's CA the same way).
func MailURootCAs(pem []byte) (*x509.CertPool, error) {
	pool, err := rootsWith(pem)
	if err != nil {
		return nil, fmt.Errorf("config: MAILU_CA_FILE/MAILU_CA_PEM holds no PEM certificate")
	}
	return pool, nil
}

func rootsWith(pem []byte) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, errors.New("no PEM certificate")
	}
	return pool, nil
}

func env(key, def string) string {
	if v, ok := os.LookupEnv(key); ok && v != "" {
		return v
	}
	return def
}

func duration(key string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	if n, err := strconv.Atoi(v); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	return 0, fmt.Errorf("config: %s=%q is not a positive duration", key, v)
}

// FunctionLoginVars names the variables holding a function's own AppRole
// login where several functions' logins share one environment (the local
// stack's .local/functions.env): VAULT_ROLE_ID_<FUNCTION> and
// VAULT_SECRET_ID_<FUNCTION>, e.g. VAULT_ROLE_ID_ROTATE_SWEEP.
func FunctionLoginVars(function string) (roleID, secretID string) {
	suffix := strings.ToUpper(strings.ReplaceAll(function, "-", "_"))
	return "VAULT_ROLE_ID_" + suffix, "VAULT_SECRET_ID_" + suffix
}

// UseFunctionLogin makes function's own AppRole login (FunctionLoginVars)
// the one FromEnv reads, for an operator command that does that
// function's work, unless VAULT_ROLE_ID is set already: the operator's
// explicit choice, or a token or aws login, wins.
func UseFunctionLogin(function string) {
	roleVar, secretVar := FunctionLoginVars(function)
	if os.Getenv("VAULT_ROLE_ID") != "" || os.Getenv(roleVar) == "" {
		return
	}
	os.Setenv("VAULT_ROLE_ID", os.Getenv(roleVar))
	os.Setenv("VAULT_SECRET_ID", os.Getenv(secretVar))
}

// FromEnvironment reads the environment and wires an App for Lambda.
func FromEnvironment(ctx context.Context) (*App, error) {
	cfg, err := FromEnv()
	if err != nil {
		return nil, err
	}
	if cfg.AuditBucket == "" {
		return nil, fmt.Errorf("config: AUDIT_BUCKET is required: every audit record must reach the Object Lock bucket")
	}
	return New(ctx, cfg, Options{})
}
