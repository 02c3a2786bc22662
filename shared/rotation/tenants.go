package rotation

import (
	"context"
	"errors"
	"strings"
	"sync"

	"smtp-vault/shared/vault"
)

// DefaultConcurrency is how many metadata reads the sweep and the overview
// keep in flight.
const DefaultConcurrency = 16

// Statuses lists every tenant from KV metadata and reads each credential's
// custom_metadata, concurrency reads at a time. Nothing is decrypted and
// no secret data is read. A tenant whose metadata cannot be read is
// returned with Err set; a folder without an admin record is left out.
func (e *Engine) Statuses(ctx context.Context, concurrency int) ([]Status, error) {
	keys, err := e.cfg.Vault.List(ctx, "")
	if err != nil {
		return nil, Upstream("list tenants", err)
	}
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		id, folder := strings.CutSuffix(k, "/")
		if folder && ValidateTenantID(id) == nil {
			ids = append(ids, id)
		}
	}
	if concurrency <= 0 {
		concurrency = DefaultConcurrency
	}
	out := make([]Status, len(ids))
	found := make([]bool, len(ids))
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(concurrency, len(ids)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				md, err := e.cfg.Vault.ReadMetadata(ctx, AdminPath(ids[i]))
				switch {
				case err == nil:
					out[i], found[i] = statusFrom(ids[i], md.CustomMetadata), true
				case errors.Is(err, vault.ErrNotFound):
				default:
					out[i], found[i] = Status{TenantID: ids[i], Err: Upstream("read the credential metadata", err)}, true
				}
			}
		}()
	}
	for i := range ids {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, Upstream("list tenants", err)
	}
	res := out[:0]
	for i := range out {
		if found[i] {
			res = append(res, out[i])
		}
	}
	return res, nil
}
