// Package vault is the project's thin adapter over HashiCorp Vault: KV v2
// reads and check-and-set writes, Transit data keys and signatures, an
// admin's userpass login with login MFA, and server health. It
// mirrors Vault's paths one to one, returns plain data and typed errors, and
// holds no business rules.
package vault

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// Auth methods the functions can log in with.
const (
	AuthToken   = "token"   // a token given directly (local inspection, tests)
	AuthAppRole = "approle" // role_id + secret_id (local runs)
	AuthAWS     = "aws"     // AWS IAM auth with the Lambda's role (production)
)

// Config says where Vault is and how to log in.
type Config struct {
	Address      string
	AuthMethod   string // AuthToken, AuthAppRole or AuthAWS
	Token        string // AuthToken
	AuthMount    string // mount path of the auth method; defaults to the method name
	RoleID       string // AuthAppRole
	SecretID     string // AuthAppRole
	AWSRole      string // AuthAWS: the Vault role bound to the Lambda's IAM role
	AWSServerID  string // AuthAWS: optional X-Vault-AWS-IAM-Server-ID header value
	KVMount      string // defaults to "smtp"
	TransitMount string // defaults to "transit"
	Timeout      time.Duration
	// HTTPClient, when set, carries requests (for tracing); its Timeout is
	// overridden by Timeout.
	HTTPClient *http.Client
	// AWSLogin signs the sts:GetCallerIdentity request for AuthAWS. It is
	// set by the wiring that owns AWS credentials, so this package does not
	// load AWS configuration itself.
	AWSLogin func(ctx context.Context, serverID string) (map[string]any, error)
}

// Client talks to one Vault server.
type Client struct {
	api *vaultapi.Client
	// anon carries requests made on someone else's behalf (an admin's
	// login, MFA validation): it never sends the functions' own token.
	anon    *vaultapi.Client
	cfg     Config
	loginMu sync.Mutex
}

// New returns a client for cfg. It does not contact Vault; the first call
// that needs a token logs in.
func New(cfg Config) (*Client, error) {
	if cfg.KVMount == "" {
		cfg.KVMount = "smtp"
	}
	if cfg.TransitMount == "" {
		cfg.TransitMount = "transit"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.AuthMethod == "" {
		cfg.AuthMethod = AuthToken
	}
	if cfg.AuthMount == "" {
		cfg.AuthMount = cfg.AuthMethod
	}
	ac := vaultapi.DefaultConfig()
	if ac.Error != nil {
		return nil, fmt.Errorf("vault: default config: %w", ac.Error)
	}
	ac.Address = cfg.Address
	if cfg.HTTPClient != nil {
		ac.HttpClient = cfg.HTTPClient
	}
	ac.Timeout = cfg.Timeout
	// One retry at most: a sealed or failing Vault should turn into a 503
	// for the caller quickly, not after the client's default back-off.
	ac.MaxRetries = 1
	api, err := vaultapi.NewClient(ac)
	if err != nil {
		return nil, fmt.Errorf("vault: new client: %w", err)
	}
	api.ClearToken()
	anon, err := api.Clone()
	if err != nil {
		return nil, fmt.Errorf("vault: new client: %w", err)
	}
	anon.ClearToken() // Clone reads VAULT_TOKEN from the environment
	switch cfg.AuthMethod {
	case AuthToken:
		if cfg.Token == "" {
			return nil, fmt.Errorf("vault: auth method token needs a token")
		}
		api.SetToken(cfg.Token)
	case AuthAppRole:
		if cfg.RoleID == "" || cfg.SecretID == "" {
			return nil, fmt.Errorf("vault: auth method approle needs role_id and secret_id")
		}
	case AuthAWS:
		if cfg.AWSRole == "" || cfg.AWSLogin == nil {
			return nil, fmt.Errorf("vault: auth method aws needs a role and a signer")
		}
	default:
		return nil, fmt.Errorf("vault: unknown auth method %q", cfg.AuthMethod)
	}
	return &Client{api: api, anon: anon, cfg: cfg}, nil
}

// KVMount is the KV v2 mount this client reads and writes.
func (c *Client) KVMount() string { return c.cfg.KVMount }

// ensureToken logs in when the client holds no token yet.
func (c *Client) ensureToken(ctx context.Context) error {
	c.loginMu.Lock()
	defer c.loginMu.Unlock()
	if c.api.Token() != "" {
		return nil
	}
	return c.loginLocked(ctx)
}

func (c *Client) loginLocked(ctx context.Context) error {
	var body map[string]any
	switch c.cfg.AuthMethod {
	case AuthToken:
		return nil
	case AuthAppRole:
		body = map[string]any{"role_id": c.cfg.RoleID, "secret_id": c.cfg.SecretID}
	case AuthAWS:
		b, err := c.cfg.AWSLogin(ctx, c.cfg.AWSServerID)
		if err != nil {
			return fmt.Errorf("vault: sign aws login: %w: %w", ErrUnavailable, err)
		}
		b["role"] = c.cfg.AWSRole
		body = b
	}
	s, err := c.api.Logical().WriteWithContext(ctx, "auth/"+c.cfg.AuthMount+"/login", body)
	if err != nil {
		return classify("login with "+c.cfg.AuthMethod, err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return fmt.Errorf("vault: login with %s: %w: no token in response", c.cfg.AuthMethod, ErrForbidden)
	}
	c.api.SetToken(s.Auth.ClientToken)
	return nil
}

// call runs fn with a valid token. When Vault answers "permission denied"
// to a token obtained by login (it may have expired), the client logs in
// once more and retries fn once.
func (c *Client) call(ctx context.Context, op string, fn func() error) error {
	if err := c.ensureToken(ctx); err != nil {
		return err
	}
	err := classify(op, fn())
	if err == nil || c.cfg.AuthMethod == AuthToken || !errors.Is(err, ErrForbidden) {
		return err
	}
	c.loginMu.Lock()
	c.api.ClearToken()
	lerr := c.loginLocked(ctx)
	c.loginMu.Unlock()
	if lerr != nil {
		return lerr
	}
	return classify(op, fn())
}
