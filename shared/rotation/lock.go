package rotation

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"smtp-vault/shared/vault"
)

// LockPath is the KV path of a tenant's change lock.
func LockPath(tenantID string) string { return tenantID + "/lock" }

// Lock takes the tenant's change lock, a KV record written with
// check-and-set, so two changes of one tenant never run at once. A holder
// that crashed is overtaken once its expiry has passed. The returned
// function releases the lock; it never fails the caller.
func (e *Engine) Lock(ctx context.Context, tenantID, purpose string) (func(), error) {
	path := LockPath(tenantID)
	cas := 0
	cur, err := e.cfg.Vault.Read(ctx, path)
	switch {
	case err == nil:
		cas = cur.Version
		// A released lock is free whatever the clocks say: instances'
		// clocks differ a little, and a release stamps its own time.
		if exp, perr := time.Parse(time.RFC3339Nano, cur.Data["expires_at"]); perr == nil && cur.Data["released"] != "true" && e.Now().Before(exp) {
			return nil, fmt.Errorf("%w: another change of this tenant (%s) is in progress", ErrConflict, cur.Data["purpose"])
		}
	case errors.Is(err, vault.ErrNotFound):
	default:
		return nil, Upstream("read the tenant lock", err)
	}
	owner := uuid.NewString()
	v, err := e.cfg.Vault.WriteCAS(ctx, path, map[string]string{
		"owner":      owner,
		"purpose":    purpose,
		"expires_at": e.Now().Add(e.cfg.LockTTL).Format(time.RFC3339Nano),
	}, cas)
	if errors.Is(err, vault.ErrCASConflict) {
		return nil, fmt.Errorf("%w: another change of this tenant is in progress", ErrConflict)
	}
	if err != nil {
		return nil, Upstream("take the tenant lock", err)
	}
	return func() {
		// Release even when the request's context is done, or the next
		// change waits for the expiry.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		released := map[string]string{
			"owner":      owner,
			"purpose":    purpose,
			"expires_at": e.Now().Format(time.RFC3339Nano),
			"released":   "true",
		}
		// A lock left behind refuses every change of the tenant as a
		// conflict until it expires, so a failed release is retried. A
		// check-and-set conflict means the lock is no longer ours (or an
		// earlier attempt landed): nothing left to do.
		var err error
		for attempt := 1; ; attempt++ {
			if _, err = e.cfg.Vault.WriteCAS(rctx, path, released, v); err == nil || errors.Is(err, vault.ErrCASConflict) {
				return
			}
			if attempt == releaseAttempts || rctx.Err() != nil {
				break
			}
			select {
			case <-rctx.Done():
			case <-time.After(time.Duration(attempt) * 100 * time.Millisecond):
			}
		}
		e.log.WarnContext(ctx, "release tenant lock; it blocks changes until it expires", "tenant_id", tenantID, "error", err)
	}, nil
}

// releaseAttempts bounds the tries to release a tenant lock.
const releaseAttempts = 3
