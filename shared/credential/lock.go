package credential

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"smtp-vault/shared/vault"
)

// lock takes the tenant's change lock, a KV record written with
// check-and-set, so two changes of one tenant never run at once. A holder
// that crashed is overtaken once its expiry has passed. The returned
// function releases the lock; it never fails the caller.
func (s *Service) lock(ctx context.Context, tenantID, purpose string) (func(), error) {
	release, _, err := s.lockOrTakeOver(ctx, tenantID, purpose, 0)
	return release, err
}

// lockOrTakeOver is lock that also overtakes a holder that took the lock
// more than takeOverAfter ago (0: never) and has not released it: the
// emergency reset does not wait out a crashed run's full lock TTL. It
// also says since when no other change of the tenant has run: when the
// previous holder released the lock (the zero time if the tenant never
// had one), or now when it was overtaken (it may still be running).
func (s *Service) lockOrTakeOver(ctx context.Context, tenantID, purpose string, takeOverAfter time.Duration) (release func(), quietSince time.Time, err error) {
	path := LockPath(tenantID)
	cas := 0
	cur, err := s.cfg.Vault.Read(ctx, path)
	switch {
	case err == nil:
		cas = cur.Version
		// A released lock is free whatever the clocks say: instances'
		// clocks differ a little, and a release stamps its own time.
		exp, perr := time.Parse(time.RFC3339Nano, cur.Data["expires_at"])
		held := perr == nil && cur.Data["released"] != "true" && s.Now().Before(exp)
		if held && takeOverAfter > 0 && s.Now().After(exp.Add(-s.cfg.LockTTL).Add(takeOverAfter)) {
			s.log.WarnContext(ctx, "taking over the tenant lock of a stale change", "tenant_id", tenantID, "purpose", purpose, "held_by", cur.Data["purpose"])
			held = false
		}
		if held {
			return nil, time.Time{}, fmt.Errorf("%w: another change of this tenant (%s) is in progress", ErrConflict, cur.Data["purpose"])
		}
		quietSince = s.Now()
		if cur.Data["released"] == "true" && perr == nil {
			quietSince = exp // a release stamps its time as the expiry
		}
	case errors.Is(err, vault.ErrNotFound):
	default:
		return nil, time.Time{}, upstream("read the tenant lock", err)
	}
	owner := uuid.NewString()
	v, err := s.cfg.Vault.WriteCAS(ctx, path, map[string]string{
		"owner":      owner,
		"purpose":    purpose,
		"expires_at": s.Now().Add(s.cfg.LockTTL).Format(time.RFC3339Nano),
	}, cas)
	if errors.Is(err, vault.ErrCASConflict) {
		return nil, time.Time{}, fmt.Errorf("%w: another change of this tenant is in progress", ErrConflict)
	}
	if err != nil {
		return nil, time.Time{}, upstream("take the tenant lock", err)
	}
	return func() {
		// Release even when the request's context is done, or the next
		// change waits for the expiry.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		released := map[string]string{
			"owner":      owner,
			"purpose":    purpose,
			"expires_at": s.Now().Format(time.RFC3339Nano),
			"released":   "true",
		}
		// A lock left behind refuses every change of the tenant as a
		// conflict until it expires, so a failed release is retried. A
		// check-and-set conflict means the lock is no longer ours (or an
		// earlier attempt landed): nothing left to do.
		var err error
		for attempt := 1; ; attempt++ {
			if _, err = s.cfg.Vault.WriteCAS(rctx, path, released, v); err == nil || errors.Is(err, vault.ErrCASConflict) {
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
		s.log.WarnContext(ctx, "release tenant lock; it blocks changes until it expires", "tenant_id", tenantID, "error", err)
	}, quietSince, nil
}

// releaseAttempts bounds the tries to release a tenant lock.
const releaseAttempts = 3
