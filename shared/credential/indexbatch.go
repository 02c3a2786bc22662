package credential

import (
	"context"
	"sync"
	"time"
)

// A chunk job of a compromise response writes the status index for its
// tenants in batches instead of twice per reset. Each index write rewrites
// a whole leaf (up to IndexLeafBytes) and usually its leaf of the set
// needing attention; at 10,000 tenants a reset's two changes rarely share
// a leaf write with another's (docs/measurements.md counts the requests).
// The batch keeps the index's rule:
//
//   - before the chunk resets anything, its tenants are marked pending in
//     one write per leaf (markChunkPending, failing closed), so a crash
//     anywhere leaves them pending for the sweep, as a reset's own
//     indexPending would;
//   - a reset whose tenant was marked skips its own pending write, unless
//     another change of the tenant may have written the entry since (its
//     lock was released, or taken, after the mark: marks);
//   - each reset's closing entry (indexRecord) is kept and written with
//     others, every indexBatchFlush resets and when the chunk stops. A
//     crash before that leaves the entries pending, which the sweep
//     repairs from the records, as for a crash of any change;
//   - when the chunk stops, a marked tenant whose reset never recorded a
//     pending password (already reset, refused before it, or not reached
//     before the deadline) gets its entry back as it was.
//
// The mark does not show the incident: a reset's closing entry does, and
// one that fails shows it at once (EmergencyReset).
type indexBatch struct {
	s *Service
	// at is when the marking write started; marked are the tenants it
	// marked pending (those with an entry). Read-only once built.
	at     time.Time
	stamp  string // at, as the marked entries' Updated
	marked map[string]bool

	before map[string]IndexEntry // the marked entries as they were

	mu      sync.Mutex
	started map[string]bool              // marked tenants whose reset recorded a pending password
	later   map[string]func(*IndexEntry) // closing entries not yet written
}

// indexBatchFlush is how many closing entries a batch holds before it
// writes them.
const indexBatchFlush = 64

// indexMarkSkew is how much clocks of two instances may differ: a lock
// released this close to the mark may hide a write after it.
const indexMarkSkew = 30 * time.Second

// markChunkPending marks tenants pending in the status index, one write
// per leaf, and returns the batch the chunk's resets write through.
// Tenants without an entry are left alone (their reset writes its own),
// and so is a tenant already pending: its mark is another change's.
// It fails closed: without the mark nothing is reset.
func (s *Service) markChunkPending(ctx context.Context, tenants []string) (*indexBatch, error) {
	b := &indexBatch{s: s, at: s.Now(), started: map[string]bool{}, later: map[string]func(*IndexEntry){}}
	b.stamp = FormatTime(b.at)
	var mu sync.Mutex
	marked, before := map[string]bool{}, map[string]IndexEntry{}
	err := s.changeEntries(ctx, tenants, func(id string, e *IndexEntry, exists bool) entryOp {
		if !exists || e.State == StatePending {
			return opKeep
		}
		mu.Lock()
		marked[id], before[id] = true, *e
		mu.Unlock()
		e.State, e.Updated = StatePending, b.stamp
		return opPut
	}, false)
	if err != nil {
		return nil, err
	}
	b.marked, b.before = marked, before
	return b, nil
}

// marks reports whether tenantID's pending mark still stands for a
// change that took its lock with the previous holder gone since
// quietSince (see lockOrTakeOver): no other change can have rewritten the
// entry after the mark.
func (b *indexBatch) marks(tenantID string, quietSince time.Time) bool {
	if b == nil || !b.marked[tenantID] {
		return false
	}
	return quietSince.Before(b.at.Add(-indexMarkSkew))
}

// start notes that tenantID's reset is about to record a pending
// password: its mark must stay until its closing entry is written.
func (b *indexBatch) start(tenantID string) {
	b.mu.Lock()
	b.started[tenantID] = true
	b.mu.Unlock()
}

// keep holds tenantID's closing entry change for the next flush, and
// flushes when indexBatchFlush are held. The change is written only if
// the entry still carries the batch's pending mark: a change of the
// tenant that wrote it meanwhile is newer.
func (b *indexBatch) keep(ctx context.Context, tenantID string, change func(*IndexEntry)) {
	b.mu.Lock()
	b.started[tenantID] = true
	b.later[tenantID] = change
	full := len(b.later) >= indexBatchFlush
	b.mu.Unlock()
	if full {
		b.flush(ctx, false)
	}
}

// finish writes what the batch still holds when its chunk stops: the
// kept closing entries, and the entries of marked tenants whose reset
// never started, as they were before the mark.
func (b *indexBatch) finish(ctx context.Context) {
	if b != nil {
		b.flush(ctx, true)
	}
}

// flush writes the kept closing entries (and with unmark, puts back the
// entries of marked tenants whose reset never started), best effort like
// indexRecord.
func (b *indexBatch) flush(ctx context.Context, unmark bool) {
	b.mu.Lock()
	later := b.later
	b.later = map[string]func(*IndexEntry){}
	if unmark {
		for id := range b.marked {
			if !b.started[id] {
				old := b.before[id]
				later[id] = func(e *IndexEntry) { e.State, e.Updated = old.State, old.Updated }
			}
		}
	}
	b.mu.Unlock()
	if len(later) == 0 {
		return
	}
	ids := make([]string, 0, len(later))
	for id := range later {
		ids = append(ids, id)
	}
	err := b.s.changeEntries(context.WithoutCancel(ctx), ids, func(id string, e *IndexEntry, exists bool) entryOp {
		if !exists || e.State != StatePending || e.Updated != b.stamp {
			return opKeep
		}
		later[id](e)
		return opPut
	}, true)
	if err != nil {
		b.s.log.WarnContext(ctx, "update the status index after a chunk's resets; the sweep repairs it", "tenants", len(ids), "error", err)
	}
}
