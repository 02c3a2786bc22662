package credential

import (
	"context"
	"errors"
	"fmt"

	"smtp-vault/shared/mailu"
	"smtp-vault/shared/rotation"
	"smtp-vault/shared/vault"
)

const mailuTokenField = rotation.MailUTokenField

// mailuConn is how to reach one tenant's MailU admin API. The token is a
// secret: it lives sealed in Vault at smtp/<tenant>/mailu, never in a
// function's environment.
type mailuConn struct {
	apiURL string
	token  string
}

// saveMailUConn records the MailU API connection given in the input (when
// it brings a token or a new URL) and returns the connection to use.
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
		return mailuConn{}, rotation.Upstream("read the MailU connection", err)
	}
	if in.MailUAPIToken == "" {
		token, err := s.eng.Open(ctx, in.TenantID, mailuTokenField, cur.Data[mailuTokenField], cur.Data["data_key"])
		if err != nil {
			return mailuConn{}, err
		}
		if cur.Data["api_url"] != in.MailUAPIURL {
			data := cloneMap(cur.Data)
			data["api_url"] = in.MailUAPIURL
			if _, err := s.cfg.Vault.WriteCAS(ctx, path, data, version); err != nil {
				return mailuConn{}, rotation.Upstream("write the MailU connection", err)
			}
		}
		return mailuConn{apiURL: in.MailUAPIURL, token: token}, nil
	}
	sealed, wrapped, err := s.eng.Seal(ctx, in.TenantID, mailuTokenField, in.MailUAPIToken)
	if err != nil {
		return mailuConn{}, err
	}
	if _, err := s.cfg.Vault.WriteCAS(ctx, path, map[string]string{
		"api_url":       in.MailUAPIURL,
		mailuTokenField: sealed,
		"data_key":      wrapped,
		"updated_at":    rotation.FormatTime(s.now()),
	}, version); err != nil {
		return mailuConn{}, rotation.Upstream("write the MailU connection", err)
	}
	return mailuConn{apiURL: in.MailUAPIURL, token: in.MailUAPIToken}, nil
}

func isAuthFailed(err error) bool { return errors.Is(err, mailu.ErrAuthFailed) }

func cloneMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
