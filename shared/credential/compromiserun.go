package credential

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/vault"
)

// ErrUnfinished: a chunk job stopped before its invocation's deadline
// with tenants left, and could not queue its own continuation; deliver
// it again.
var ErrUnfinished = errors.New("compromise response chunk not finished")

// ChunkReserve is the time left before the invocation's deadline at
// which a chunk worker starts no further reset: one reset (a lock take
// over, MailU and SMTP calls, each bounded by its timeout) ends within
// it.
const ChunkReserve = 20 * time.Second

// RunResetJob runs one job of the emergency-reset worker (a queue message
// or a direct invocation). The job must name a run that the
// authenticated route recorded in Vault, and a chunk of it: the tenants
// and the actor come from those records, never from the job, so a forged
// job can at most repeat work the run asked for. A chunk job resets its
// chunk's tenants that have no outcome yet, Config.Concurrency at a time,
// recording each outcome as it comes; near the invocation's deadline it
// stops, queues its own continuation and returns. The last chunk to
// finish finishes the response. It returns the outcomes it recorded
// (none for a planning job), for an operator's progress.
func (s *Service) RunResetJob(ctx context.Context, j ResetJob) ([]TenantOutcome, error) {
	if err := j.Validate(); err != nil {
		return nil, err
	}
	r, err := s.readRun(ctx, j.IncidentID, j.ResponseID)
	if err != nil {
		return nil, err
	}
	if j.Plan {
		return nil, s.plan(ctx, r)
	}
	// A planning job writes the chunk count before the chunks, and the
	// chunks before their jobs: a chunk job may run while the run is
	// still planning.
	if r.Chunks == 0 || j.Chunk >= r.Chunks {
		return nil, fmt.Errorf("%w: compromise response %s has no chunk %d", ErrInvalidInput, j.ResponseID, j.Chunk)
	}
	return s.runChunk(ctx, r, j)
}

func (s *Service) runChunk(ctx context.Context, r *run, j ResetJob) ([]TenantOutcome, error) {
	tenants, err := s.readChunk(ctx, r, j.Chunk)
	if err != nil {
		return nil, err
	}
	have, version, err := s.readResults(ctx, r, j.Chunk)
	if err != nil {
		return nil, err
	}
	var todo []string
	for _, t := range tenants {
		if _, ok := have[t]; !ok {
			todo = append(todo, t)
		}
	}
	w := &resultsWriter{s: s, r: r, chunk: j.Chunk, outcomes: have, version: version}
	// The chunk's status index writes go in batches (indexbatch.go). A
	// response limited to one host leaves each reset its own: most of
	// its chunk's tenants are elsewhere and not reset.
	var batch *indexBatch
	if r.MailUHost == "" && len(todo) > 0 {
		if batch, err = s.markChunkPending(ctx, todo); err != nil {
			return nil, err
		}
	}
	deadline, bounded := ctx.Deadline()
	var cut atomic.Bool
	outs := make([]TenantOutcome, len(todo))
	s.forEach(len(todo), func(i int) {
		if cut.Load() || ctx.Err() != nil || (bounded && time.Until(deadline) < ChunkReserve) {
			cut.Store(true)
			return
		}
		outs[i] = s.resetOne(ctx, r, todo[i], batch)
		w.add(ctx, outs[i])
	})
	batch.finish(ctx)
	outs = slices.DeleteFunc(outs, func(o TenantOutcome) bool { return o.Outcome == "" })
	if err := w.flush(ctx); err != nil {
		return outs, err
	}
	if cut.Load() {
		if s.cfg.ResetQueue != nil {
			if _, err := s.cfg.ResetQueue.Send(context.WithoutCancel(ctx), []ResetJob{j}); err == nil {
				s.log.InfoContext(ctx, "compromise response: chunk continued in a new job", "incident_id", r.IncidentID, "chunk", j.Chunk)
				return outs, nil
			}
		}
		return outs, fmt.Errorf("%w: chunk %d of %s", ErrUnfinished, j.Chunk, r.ResponseID)
	}
	if _, err := s.cfg.Vault.WriteCAS(ctx, donePath(r.IncidentID, r.ResponseID, j.Chunk), map[string]string{"at": FormatTime(s.Now())}, 0); err != nil && !errors.Is(err, vault.ErrCASConflict) {
		return outs, upstream("record a finished chunk", err)
	}
	s.finishIfDone(ctx, r)
	return outs, nil
}

// resetOne resets one tenant of the run; it never fails: a tenant that
// cannot be reset is recorded as failed, untouched, for the next run of
// the response. A conflict with a running change of the tenant is retried
// a few times first.
func (s *Service) resetOne(ctx context.Context, r *run, tenantID string, batch *indexBatch) TenantOutcome {
	out := TenantOutcome{TenantID: tenantID}
	if r.MailUHost != "" {
		on, err := s.onHost(ctx, tenantID, r.MailUHost)
		switch {
		case errors.Is(err, ErrNotFound), err == nil && !on:
			out.Outcome = outcomeOffHost
			return out
		case err != nil:
			out.Outcome, out.Code = OutcomeFailed, errorClass(err)
			return out
		}
	}
	var (
		res ResetResult
		err error
	)
	for attempt := 1; ; attempt++ {
		res, err = s.EmergencyReset(ctx, ResetRequest{
			TenantID: tenantID, IncidentID: r.IncidentID, Reason: r.Reason,
			Actor: Actor{UserID: r.RequestedBy}, fromResponse: r.ResponseID, index: batch,
		})
		if !errors.Is(err, ErrConflict) || attempt == resetAttempts || ctx.Err() != nil {
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
		}
	}
	switch {
	case err == nil && res.AlreadyReset && res.ResetBy != r.ResponseID:
		out.Outcome = OutcomeAlreadyReset
	case err == nil:
		// Reset now, or by this run in a delivery cut off before it
		// recorded the outcome.
		out.Outcome = OutcomeReset
	case errors.Is(err, ErrNotFound):
		out.Outcome, out.Code = OutcomeSkipped, "not_found"
	default:
		out.Outcome, out.Code = OutcomeFailed, errorClass(err)
		s.log.WarnContext(ctx, "compromise response: reset failed", "tenant_id", tenantID, "incident_id", r.IncidentID, "error", err)
	}
	return out
}

// resetAttempts bounds the tries of one tenant's reset against conflicts.
const resetAttempts = 4

// onHost says whether the tenant's SMTP address or MailU API is on host,
// from the records' plain fields (nothing is decrypted).
func (s *Service) onHost(ctx context.Context, tenantID, host string) (bool, error) {
	rec, err := s.readRecord(ctx, tenantID)
	if err != nil {
		return false, err
	}
	if strings.EqualFold(hostOf(rec.SMTPAddr), host) {
		return true, nil
	}
	apiURL, err := s.storedMailUURL(ctx, tenantID)
	if err != nil {
		return false, err
	}
	return strings.EqualFold(urlHost(apiURL), host), nil
}

// readResults returns the recorded outcomes of chunk n and the version of
// its results record (0: none yet).
func (s *Service) readResults(ctx context.Context, r *run, n int) (map[string]TenantOutcome, int, error) {
	sec, err := s.cfg.Vault.Read(ctx, resultPath(r.IncidentID, r.ResponseID, n))
	if errors.Is(err, vault.ErrNotFound) {
		return map[string]TenantOutcome{}, 0, nil
	}
	if err != nil {
		return nil, 0, upstream("read the compromise response's results", err)
	}
	out := make(map[string]TenantOutcome, len(sec.Data))
	for t, v := range sec.Data {
		if ValidateTenantID(t) != nil {
			continue
		}
		f := strings.SplitN(v, " ", 3)
		o := TenantOutcome{TenantID: t, Outcome: f[0]}
		if len(f) == 3 {
			o.At, _ = time.Parse(time.RFC3339, f[1])
			o.Code = f[2]
		}
		out[t] = o
	}
	return out, sec.Version, nil
}

// resultsWriter records a chunk's outcomes as they come: one
// check-and-set write at a time, at most one every resultsEvery (the last
// when the chunk stops), each carrying every outcome so far. An outcome
// not yet written when the job dies is found again by the next delivery:
// its reset answers that this response already did it. A
// conflict (a second delivery of the chunk working beside this one) is
// merged: an outcome already recorded is kept.
type resultsWriter struct {
	s       *Service
	r       *run
	chunk   int
	writing sync.Mutex // one write at a time

	mu       sync.Mutex
	outcomes map[string]TenantOutcome
	version  int
	dirty    bool
	written  time.Time // when the last write was made
}

// resultsEvery spaces a chunk's results writes: each rewrites the whole
// chunk's outcomes.
const resultsEvery = time.Second

func (w *resultsWriter) add(ctx context.Context, o TenantOutcome) {
	o.At = w.s.Now()
	w.mu.Lock()
	w.outcomes[o.TenantID] = o
	w.dirty = true
	recent := time.Since(w.written) < resultsEvery
	w.mu.Unlock()
	if recent {
		return // the next write, or the chunk's last, carries it
	}
	if err := w.flush(ctx); err != nil {
		w.s.log.ErrorContext(ctx, "compromise response: record outcomes", "incident_id", w.r.IncidentID, "chunk", w.chunk, "error", err)
	}
}

// flush writes the outcomes if any is unwritten; its caller's outcome is
// in the write it waited for or in its own.
func (w *resultsWriter) flush(ctx context.Context) error {
	w.writing.Lock()
	defer w.writing.Unlock()
	path := resultPath(w.r.IncidentID, w.r.ResponseID, w.chunk)
	for range 5 {
		w.mu.Lock()
		if !w.dirty {
			w.mu.Unlock()
			return nil
		}
		data := make(map[string]string, len(w.outcomes))
		for t, o := range w.outcomes {
			data[t] = o.Outcome + " " + FormatTime(o.At) + " " + o.Code
		}
		version := w.version
		w.dirty = false
		w.mu.Unlock()
		v, err := w.s.cfg.Vault.WriteCAS(context.WithoutCancel(ctx), path, data, version)
		if err == nil {
			w.mu.Lock()
			w.version, w.written = v, time.Now()
			w.mu.Unlock()
			return nil
		}
		w.mu.Lock()
		w.dirty = true
		w.mu.Unlock()
		if !errors.Is(err, vault.ErrCASConflict) {
			return upstream("record the compromise response's results", err)
		}
		theirs, v, err := w.s.readResults(context.WithoutCancel(ctx), w.r, w.chunk)
		if err != nil {
			return err
		}
		w.mu.Lock()
		for t, o := range theirs {
			w.outcomes[t] = o
		}
		w.version = v
		w.mu.Unlock()
	}
	return fmt.Errorf("%w: the results of chunk %d kept changing", ErrConflict, w.chunk)
}

// finishIfDone audits the end of the run (once: the run record's
// check-and-set picks one writer) when every chunk is done.
func (s *Service) finishIfDone(ctx context.Context, r *run) {
	keys, err := s.cfg.Vault.List(ctx, doneFolder(r.IncidentID, r.ResponseID))
	if err != nil || len(keys) < r.Chunks {
		return
	}
	cur, err := s.readRun(ctx, r.IncidentID, r.ResponseID)
	if err != nil || cur.State == StateFinished {
		return
	}
	chunks, err := s.readChunks(ctx, cur)
	if err != nil {
		return
	}
	var st CompromiseStatus
	for _, c := range chunks {
		for _, o := range c {
			if o.Outcome == outcomePending {
				return
			}
			st.tally(o.Outcome)
		}
	}
	cur.State, cur.FinishedAt = StateFinished, s.Now()
	if err := s.writeRun(ctx, cur); err != nil {
		return // another worker finished it
	}
	if err := s.cfg.Audit.Record(ctx, audit.Event{
		Event: audit.CompromiseResponse, UserID: cur.RequestedBy, Severity: audit.Critical,
		Details: map[string]any{"incident_id": cur.IncidentID, "response_id": cur.ResponseID, "phase": "finished", "tenants": st.Total,
			"reset": st.Reset, "already_reset": st.AlreadyReset, "failed": st.Failed, "skipped": st.Skipped},
	}); err != nil {
		s.log.ErrorContext(ctx, "compromise response: the end was not audited", "incident_id", cur.IncidentID, "error", err)
	}
	s.notifyResponse(ctx, cur.IncidentID, fmt.Sprintf("The compromise response for incident %s finished: %d reset, %d already reset, %d failed, %d skipped.", cur.IncidentID, st.Reset, st.AlreadyReset, st.Failed, st.Skipped))
}
