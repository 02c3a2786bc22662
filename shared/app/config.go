package app

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
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
	RolesClaim       string        // ROLES_CLAIM: the JWT claim holding roles
	AWSRegion        string        // AWS_REGION
	LogLevel         string        // LOG_LEVEL: debug, info, warn, error
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
	return c, nil
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

// FromEnvironment reads the environment and wires an App for Lambda.
func FromEnvironment(ctx context.Context) (*App, error) {
	cfg, err := FromEnv()
	if err != nil {
		return nil, err
	}
	return New(ctx, cfg, Options{})
}
