package rotation

import (
	"context"
	"errors"
	"fmt"

	"smtp-vault/shared/vault"
)

// MailUTokenField is the sealed field of the MailU connection record.
const MailUTokenField = "api_token"

// MailUPath is the KV path of a tenant's MailU admin API connection: its
// URL and its token, sealed like a password (the token is a secret and
// never lives in a function's environment).
func MailUPath(tenantID string) string { return tenantID + "/mailu" }

// mailuAdmin returns a client for the tenant's MailU admin API, from the
// connection stored in Vault.
func (e *Engine) mailuAdmin(ctx context.Context, tenantID string) (MailU, error) {
	conn, err := e.cfg.Vault.Read(ctx, MailUPath(tenantID))
	if errors.Is(err, vault.ErrNotFound) {
		return nil, fmt.Errorf("%w: no MailU connection stored for tenant %s", ErrNotFound, tenantID)
	}
	if err != nil {
		return nil, Upstream("read the MailU connection", err)
	}
	token, err := e.Open(ctx, tenantID, MailUTokenField, conn.Data[MailUTokenField], conn.Data["data_key"])
	if err != nil {
		return nil, err
	}
	return e.cfg.DialMailU(conn.Data["api_url"], token), nil
}
