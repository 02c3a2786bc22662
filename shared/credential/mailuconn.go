package credential

import (
	"context"
	"errors"
	"fmt"

	"smtp-vault/shared/vault"
)

// The record at MailUPath: the MailU admin API's URL and its token, sealed
// like a password under its own data key.
const (
	mailuURLField   = "api_url"
	mailuTokenField = "api_token"
	mailuKeyField   = "data_key"
)

// mailuConn is how to reach one tenant's MailU admin API. The token is a
// secret: it lives sealed in Vault at smtp/<tenant>/mailu, never in a
// function's environment.
type mailuConn struct {
	apiURL string
	token  string
}

// saveMailUConn records the MailU API token given in the input and
// returns the connection to use. Without a token it uses the stored one,
// and only for the URL it was stored for.
func (s *Service) saveMailUConn(ctx context.Context, in StoreInput) (mailuConn, error) {
	path := MailUPath(in.TenantID)
	cur, err := s.cfg.Vault.Read(ctx, path)
	version := 0
	switch {
	case err == nil:
		version = cur.Version
	case errors.Is(err, vault.ErrNotFound):
		if in.MailUAPIToken == "" {
			return mailuConn{}, fmt.Errorf("%w: mailu_api_token is required the first time a tenant is stored", ErrInvalidInput)
		}
	default:
		return mailuConn{}, upstream("read the MailU connection", err)
	}
	if in.MailUAPIToken == "" {
		// The stored token is only ever sent to the URL it was stored for.
		if cur.Data[mailuURLField] != in.MailUAPIURL {
			return mailuConn{}, fmt.Errorf("%w: %w; the stored token is only ever sent to %s", ErrInvalidInput, ErrTokenRequired, urlHost(cur.Data[mailuURLField]))
		}
		token, err := s.open(ctx, in.TenantID, mailuTokenField, cur.Data[mailuTokenField], cur.Data[mailuKeyField])
		if err != nil {
			return mailuConn{}, err
		}
		return mailuConn{apiURL: in.MailUAPIURL, token: token}, nil
	}
	sealed, wrapped, err := s.seal(ctx, in.TenantID, mailuTokenField, in.MailUAPIToken)
	if err != nil {
		return mailuConn{}, err
	}
	if _, err := s.cfg.Vault.WriteCAS(ctx, path, map[string]string{
		mailuURLField:   in.MailUAPIURL,
		mailuTokenField: sealed,
		mailuKeyField:   wrapped,
		"updated_at":    FormatTime(s.Now()),
	}, version); err != nil {
		return mailuConn{}, upstream("write the MailU connection", err)
	}
	return mailuConn{apiURL: in.MailUAPIURL, token: in.MailUAPIToken}, nil
}

// storedMailUURL is the MailU API URL stored for a tenant, "" when none;
// nothing is decrypted.
func (s *Service) storedMailUURL(ctx context.Context, tenantID string) (string, error) {
	cur, err := s.cfg.Vault.Read(ctx, MailUPath(tenantID))
	switch {
	case err == nil:
		return cur.Data[mailuURLField], nil
	case errors.Is(err, vault.ErrNotFound):
		return "", nil
	default:
		return "", upstream("read the MailU connection", err)
	}
}

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// mailuAdmin returns a client for the tenant's MailU admin API, from the
// connection stored in Vault.
func (s *Service) mailuAdmin(ctx context.Context, tenantID string) (MailU, error) {
	conn, err := s.cfg.Vault.Read(ctx, MailUPath(tenantID))
	if errors.Is(err, vault.ErrNotFound) {
		return nil, fmt.Errorf("%w: no MailU connection stored for tenant %s", ErrNotFound, tenantID)
	}
	if err != nil {
		return nil, upstream("read the MailU connection", err)
	}
	token, err := s.open(ctx, tenantID, mailuTokenField, conn.Data[mailuTokenField], conn.Data[mailuKeyField])
	if err != nil {
		return nil, err
	}
	return s.cfg.DialMailU(conn.Data[mailuURLField], token), nil
}
