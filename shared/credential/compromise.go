package credential

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/notify"
	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/vault"
)

// A compromise response resets many tenants in one incident. Its state is
// chunked in Vault, so no value grows with the tenant count:
//
//	incidents/<id>/response                  the incident's latest response id
//	incidents/<id>/runs/<rid>/run            who asked, why, the selector, the chunk count
//	incidents/<id>/runs/<rid>/chunks/<n>     up to about ChunkSize tenant ids
//	incidents/<id>/runs/<rid>/results/<n>    each of those tenants' outcome
//	incidents/<id>/runs/<rid>/done/<n>       chunk n has an outcome for every tenant
//
// The route writes the run record (and, for a list, the chunks) and
// answers at once; each chunk is a ResetJob for the emergency-reset worker
// (SQS in AWS, an in-process queue locally), and selecting "all" or a
// MailU host is a planning job there too. A job names only a run and a
// chunk: the tenants and the actor come from Vault, written by the
// authenticated route. A worker skips tenants whose outcome is recorded,
// so a chunk cut off by a timeout is finished by the next delivery, and a
// tenant is reset once per incident (EmergencyReset's own rule), so
// running the response again finishes what failed and resets nobody
// twice.

// MaxCompromiseTenants bounds one compromise response's tenant list.
const MaxCompromiseTenants = 100_000

// ChunkSize is the mean number of tenants of a chunk: one worker
// invocation's share, small enough that it finishes well within the
// function's timeout and its records stay a few kilobytes.
const ChunkSize = 200

// CompromiseRequest selects the tenants of a compromise response: a list,
// every tenant whose MailU is on one host, or all.
type CompromiseRequest struct {
	IncidentID string
	TenantIDs  []string
	MailUHost  string
	All        bool
	Reason     string
	Actor      Actor
}

// ResetJob is one step of a compromise response for the emergency-reset
// worker, the body of a reset queue message: plan the run (select its
// tenants into chunks), or reset the tenants of one chunk. It names only
// a run that the authenticated route recorded in Vault; it holds no
// tenant, actor or secret.
type ResetJob struct {
	IncidentID string `json:"incident_id"`
	ResponseID string `json:"response_id"`
	Chunk      int    `json:"chunk"`
	Plan       bool   `json:"plan,omitempty"`
}

// Validate refuses a job whose ids could not name a run, before anything
// reads Vault with them.
func (j ResetJob) Validate() error {
	for _, c := range []struct {
		kind pathseg.Kind
		v    string
	}{{pathseg.IncidentID, j.IncidentID}, {pathseg.ResponseID, j.ResponseID}} {
		if err := pathseg.Check(c.kind, c.v); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidInput, err)
		}
	}
	if j.Chunk < 0 || j.Chunk >= maxChunks || (j.Plan && j.Chunk != 0) {
		return fmt.Errorf("%w: chunk must be 0 to %d (0 for a plan)", ErrInvalidInput, maxChunks-1)
	}
	return nil
}

// maxChunks bounds a run's chunk count, and so a job's chunk number.
const maxChunks = 1 << 16

// Outcomes of one tenant in a compromise response.
const (
	OutcomeReset        = "reset"         // reset and verified over SMTP AUTH
	OutcomeAlreadyReset = "already_reset" // this incident reset it before
	OutcomeFailed       = "failed"        // untouched; Code says why
	OutcomeSkipped      = "skipped"       // no such credential
	outcomePending      = "pending"       // queued, no outcome yet
	// outcomeOffHost: a candidate of a mailu_host response whose MailU is
	// elsewhere; not part of the response, never listed.
	outcomeOffHost = "off_host"
)

// States of a compromise response.
const (
	StatePlanning = "planning" // its tenants are being selected
	StateRunning  = "running"
	StateFinished = "finished"
)

// TenantOutcome is one tenant's result in a compromise response.
type TenantOutcome struct {
	TenantID string    `json:"tenant_id"`
	Outcome  string    `json:"outcome"`
	Code     string    `json:"code,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

// CompromiseStatus is a compromise response's progress, with one page of
// its tenants' outcomes.
type CompromiseStatus struct {
	IncidentID   string          `json:"incident_id"`
	ResponseID   string          `json:"response_id"`
	State        string          `json:"state"` // planning, running or finished
	RequestedBy  string          `json:"requested_by"`
	StartedAt    time.Time       `json:"started_at"`
	FinishedAt   *time.Time      `json:"finished_at,omitempty"`
	Total        int             `json:"total"`
	Done         int             `json:"done"`
	Reset        int             `json:"reset"`
	AlreadyReset int             `json:"already_reset"`
	Failed       int             `json:"failed"`
	Skipped      int             `json:"skipped"`
	Page         int             `json:"page"`
	PerPage      int             `json:"per_page"`
	Results      []TenantOutcome `json:"results"`
}

// Paging of a compromise response's results.
const (
	DefaultResultsPerPage = 100
	MaxResultsPerPage     = 1000
)

// KV paths of a compromise response (see the top of this file). Each
// panics on an id that skipped its check (pathseg.Must).
func latestPath(id string) string {
	return "incidents/" + pathseg.Must(pathseg.IncidentID, id) + "/response"
}
func runFolder(id, responseID string) string {
	return "incidents/" + pathseg.Must(pathseg.IncidentID, id) + "/runs/" + pathseg.Must(pathseg.ResponseID, responseID) + "/"
}
func runPath(id, responseID string) string { return runFolder(id, responseID) + "run" }
func chunkPath(id, responseID string, n int) string {
	return runFolder(id, responseID) + "chunks/" + strconv.Itoa(n)
}
func resultPath(id, responseID string, n int) string {
	return runFolder(id, responseID) + "results/" + strconv.Itoa(n)
}
func doneFolder(id, responseID string) string { return runFolder(id, responseID) + "done/" }
func donePath(id, responseID string, n int) string {
	return doneFolder(id, responseID) + strconv.Itoa(n)
}

// run is the record of one compromise response.
type run struct {
	version     int
	IncidentID  string
	ResponseID  string
	RequestedBy string
	Reason      string
	StartedAt   time.Time
	FinishedAt  time.Time
	State       string
	Chunks      int    // 0 while planning
	MailUHost   string // the selector, when a host
	All         bool
	Listed      int // the length of a tenant_ids selector
}

func (r *run) data() map[string]string {
	d := map[string]string{
		"response_id": r.ResponseID, "requested_by": r.RequestedBy, "reason": r.Reason, "state": r.State,
		"started_at": FormatTime(r.StartedAt), "chunks": strconv.Itoa(r.Chunks),
	}
	switch {
	case r.All:
		d["selector"] = "all"
	case r.MailUHost != "":
		d["selector"], d["mailu_host"] = "mailu_host", r.MailUHost
	default:
		d["selector"], d["tenant_ids"] = "tenant_ids", strconv.Itoa(r.Listed)
	}
	if !r.FinishedAt.IsZero() {
		d["finished_at"] = FormatTime(r.FinishedAt)
	}
	return d
}

func (s *Service) readRun(ctx context.Context, incidentID, responseID string) (*run, error) {
	sec, err := s.cfg.Vault.Read(ctx, runPath(incidentID, responseID))
	if errors.Is(err, vault.ErrNotFound) {
		return nil, fmt.Errorf("%w: no compromise response %s for incident %s", ErrNotFound, responseID, incidentID)
	}
	if err != nil {
		return nil, upstream("read the compromise response", err)
	}
	d := sec.Data
	r := &run{version: sec.Version, IncidentID: incidentID, ResponseID: responseID, RequestedBy: d["requested_by"], Reason: d["reason"],
		State: d["state"], MailUHost: d["mailu_host"], All: d["selector"] == "all"}
	r.StartedAt, _ = time.Parse(time.RFC3339, d["started_at"])
	r.FinishedAt, _ = time.Parse(time.RFC3339, d["finished_at"])
	r.Chunks, _ = strconv.Atoi(d["chunks"])
	r.Listed, _ = strconv.Atoi(d["tenant_ids"])
	if d["response_id"] != responseID || r.Chunks < 0 || r.Chunks > maxChunks {
		return nil, fmt.Errorf("%w: the record of compromise response %s is damaged", ErrUnavailable, responseID)
	}
	return r, nil
}

func (s *Service) writeRun(ctx context.Context, r *run) error {
	v, err := s.cfg.Vault.WriteCAS(ctx, runPath(r.IncidentID, r.ResponseID), r.data(), r.version)
	if err != nil {
		return upstream("record the compromise response", err)
	}
	r.version = v
	return nil
}

// StartCompromiseResponse records the response, audits its start
// (credential_compromise_response, critical, failing closed), alerts, and
// hands the work to the reset queue: the chunks of a list, or a planning
// job for all tenants or a host. It returns at once. Without a queue it
// does the work itself before returning.
func (s *Service) StartCompromiseResponse(ctx context.Context, req CompromiseRequest) (CompromiseStatus, error) {
	if err := ValidateIncidentID(req.IncidentID); err != nil {
		return CompromiseStatus{}, err
	}
	reason, err := ValidateReason(req.Reason, false)
	if err != nil {
		return CompromiseStatus{}, err
	}
	r := &run{IncidentID: req.IncidentID, ResponseID: uuid.NewString(), RequestedBy: truncate(req.Actor.UserID, 128), Reason: reason,
		StartedAt: s.Now(), State: StatePlanning, All: req.All, Listed: len(req.TenantIDs)}
	listed, err := compromiseSelection(&req)
	if err != nil {
		return CompromiseStatus{}, err
	}
	r.MailUHost = req.MailUHost
	if listed != nil {
		r.Chunks, r.State = chunkCount(len(listed)), StateRunning
	}
	if err := s.writeRun(ctx, r); err != nil {
		return CompromiseStatus{}, err
	}
	selector := map[string]any{"tenant_ids": len(req.TenantIDs)}
	switch {
	case req.All:
		selector = map[string]any{"all": true}
	case req.MailUHost != "":
		selector = map[string]any{"mailu_host": req.MailUHost}
	}
	if err := s.cfg.Audit.Record(ctx, audit.Event{
		Event: audit.CompromiseResponse, UserID: req.Actor.UserID, IP: req.Actor.IP, UserAgent: req.Actor.UserAgent, Severity: audit.Critical,
		Details: map[string]any{"incident_id": req.IncidentID, "response_id": r.ResponseID, "phase": "started", "tenants": len(listed), "reason": reason, "selector": selector},
	}); err != nil {
		return CompromiseStatus{}, upstream("record "+audit.CompromiseResponse, err)
	}
	// The chunks of a list are written before the run is named the
	// incident's latest, so that the progress never shows a run with
	// missing chunks.
	if listed != nil {
		if err := s.writeChunks(ctx, r, listed); err != nil {
			return CompromiseStatus{}, err
		}
	}
	if err := s.pointLatest(ctx, r); err != nil {
		return CompromiseStatus{}, err
	}
	s.notifyResponse(ctx, req.IncidentID, fmt.Sprintf("%s started a compromise response for incident %s (%s). Reason: %s", req.Actor.UserID, req.IncidentID, describeSelector(r, len(listed)), reason))
	var jobs []ResetJob
	if listed == nil {
		jobs = []ResetJob{{IncidentID: r.IncidentID, ResponseID: r.ResponseID, Plan: true}}
	} else {
		jobs = r.chunkJobs()
	}
	s.dispatch(ctx, jobs)
	return s.CompromiseResponse(ctx, req.IncidentID, 1, 0)
}

func describeSelector(r *run, listed int) string {
	switch {
	case r.All:
		return "all tenants"
	case r.MailUHost != "":
		return "every tenant on " + r.MailUHost
	}
	return strconv.Itoa(listed) + " tenants"
}

// compromiseSelection checks the request's selector and returns its
// tenant list, sorted and unique; nil for all tenants or a host (chosen
// by the planning job). A host is normalised in req.
func compromiseSelection(req *CompromiseRequest) ([]string, error) {
	selectors := 0
	for _, set := range []bool{len(req.TenantIDs) > 0, req.MailUHost != "", req.All} {
		if set {
			selectors++
		}
	}
	if selectors != 1 {
		return nil, fmt.Errorf("%w: give exactly one of tenant_ids, mailu_host or all", ErrInvalidInput)
	}
	switch {
	case len(req.TenantIDs) > 0:
		if len(req.TenantIDs) > MaxCompromiseTenants {
			return nil, fmt.Errorf("%w: at most %d tenant_ids", ErrInvalidInput, MaxCompromiseTenants)
		}
		for _, id := range req.TenantIDs {
			if err := ValidateTenantID(id); err != nil {
				return nil, fmt.Errorf("%w (%q)", err, truncate(id, 40))
			}
		}
		ids := slices.Clone(req.TenantIDs)
		sort.Strings(ids)
		return slices.Compact(ids), nil
	case req.MailUHost != "":
		host := strings.ToLower(strings.TrimSuffix(req.MailUHost, "."))
		if !validHost(host) {
			return nil, fmt.Errorf("%w: mailu_host must be a host name or IP address", ErrInvalidInput)
		}
		req.MailUHost = host
	}
	return nil, nil
}

// chunkCount is how many chunks n tenants take.
func chunkCount(n int) int { return max(1, min((n+ChunkSize-1)/ChunkSize, maxChunks)) }

// chunkOf is the chunk of a tenant among chunks: by the first 16 bits of
// its (random) UUID, so that a plan repeated over a listing that changed
// meanwhile puts every tenant in the chunk it had.
func chunkOf(tenantID string, chunks int) int {
	v, _ := strconv.ParseUint(tenantID[:4], 16, 32)
	return int(v) * chunks >> 16
}

func (r *run) chunkJobs() []ResetJob {
	jobs := make([]ResetJob, r.Chunks)
	for n := range jobs {
		jobs[n] = ResetJob{IncidentID: r.IncidentID, ResponseID: r.ResponseID, Chunk: n}
	}
	return jobs
}

// writeChunks splits ids into r.Chunks chunks and writes each one not
// written yet (a chunk, once written, is never changed).
func (s *Service) writeChunks(ctx context.Context, r *run, ids []string) error {
	parts := make([][]string, r.Chunks)
	for _, id := range ids {
		n := chunkOf(id, r.Chunks)
		parts[n] = append(parts[n], id)
	}
	errs := make([]error, r.Chunks)
	s.forEach(r.Chunks, func(n int) {
		_, err := s.cfg.Vault.WriteCAS(ctx, chunkPath(r.IncidentID, r.ResponseID, n), map[string]string{"tenants": strings.Join(parts[n], ",")}, 0)
		if err != nil && !errors.Is(err, vault.ErrCASConflict) {
			errs[n] = upstream("record a chunk of the compromise response", err)
		}
	})
	return errors.Join(errs...)
}

// pointLatest names r the incident's latest response, the one the
// progress route shows.
func (s *Service) pointLatest(ctx context.Context, r *run) error {
	path := latestPath(r.IncidentID)
	version := 0
	if cur, err := s.cfg.Vault.Read(ctx, path); err == nil {
		version = cur.Version
	} else if !errors.Is(err, vault.ErrNotFound) {
		return upstream("read the compromise response", err)
	}
	if _, err := s.cfg.Vault.WriteCAS(ctx, path, map[string]string{"response_id": r.ResponseID}, version); err != nil {
		return upstream("record the compromise response", err)
	}
	return nil
}

// dispatch hands jobs to the reset queue, or without one runs them here.
// Jobs the queue refuses are logged: the run stays unfinished and its
// progress says so; running the response again finishes it.
func (s *Service) dispatch(ctx context.Context, jobs []ResetJob) {
	if s.cfg.ResetQueue == nil {
		s.forEach(len(jobs), func(i int) {
			if _, err := s.RunResetJob(ctx, jobs[i]); err != nil {
				s.log.ErrorContext(ctx, "compromise response: job", "incident_id", jobs[i].IncidentID, "chunk", jobs[i].Chunk, "error", err)
			}
		})
		return
	}
	if sent, err := s.cfg.ResetQueue.Send(ctx, jobs); err != nil {
		s.log.ErrorContext(ctx, "compromise response: queue jobs", "jobs", len(jobs), "sent", sent, "error", err)
	}
}

// plan selects the tenants of an "all" or host response into chunks and
// queues them. Repeating it (a delivery after a crash) keeps the chunks
// already written and queues every chunk again, which is harmless: a
// chunk's worker skips tenants with an outcome.
func (s *Service) plan(ctx context.Context, r *run) error {
	if r.State != StatePlanning {
		return nil
	}
	ids, err := s.tenantIDs(ctx)
	if err != nil {
		return err
	}
	sort.Strings(ids)
	if r.Chunks == 0 {
		r.Chunks = chunkCount(len(ids))
		if err := s.writeRun(ctx, r); err != nil {
			return err
		}
	}
	if err := s.writeChunks(ctx, r, ids); err != nil {
		return err
	}
	s.dispatch(ctx, r.chunkJobs())
	r.State = StateRunning
	if err := s.writeRun(ctx, r); err != nil && !errors.Is(err, ErrConflict) {
		return err
	}
	return nil
}

// CompromiseResponse reports the progress of the incident's latest
// response, with page (from 1) of its tenants' outcomes, perPage a page
// (0: DefaultResultsPerPage).
func (s *Service) CompromiseResponse(ctx context.Context, incidentID string, page, perPage int) (CompromiseStatus, error) {
	if err := ValidateIncidentID(incidentID); err != nil {
		return CompromiseStatus{}, err
	}
	if perPage == 0 {
		perPage = DefaultResultsPerPage
	}
	if page < 1 || perPage < 1 || perPage > MaxResultsPerPage {
		return CompromiseStatus{}, fmt.Errorf("%w: page must be at least 1 and per_page 1 to %d", ErrInvalidInput, MaxResultsPerPage)
	}
	cur, err := s.cfg.Vault.Read(ctx, latestPath(incidentID))
	if errors.Is(err, vault.ErrNotFound) {
		return CompromiseStatus{}, fmt.Errorf("%w: no compromise response for incident %s", ErrNotFound, incidentID)
	}
	if err != nil {
		return CompromiseStatus{}, upstream("read the compromise response", err)
	}
	responseID := cur.Data["response_id"]
	if err := pathseg.Check(pathseg.ResponseID, responseID); err != nil {
		return CompromiseStatus{}, fmt.Errorf("%w: the compromise response record of incident %s is damaged", ErrUnavailable, incidentID)
	}
	r, err := s.readRun(ctx, incidentID, responseID)
	if err != nil {
		return CompromiseStatus{}, err
	}
	st := CompromiseStatus{IncidentID: incidentID, ResponseID: responseID, RequestedBy: r.RequestedBy, State: r.State, StartedAt: r.StartedAt,
		Page: page, PerPage: perPage, Results: []TenantOutcome{}}
	if !r.FinishedAt.IsZero() {
		st.FinishedAt = &r.FinishedAt
	}
	if r.Chunks == 0 {
		return st, nil
	}
	chunks, err := s.readChunks(ctx, r)
	if err != nil {
		return CompromiseStatus{}, err
	}
	skip := (page - 1) * perPage
	for _, c := range chunks {
		for _, o := range c {
			if !st.tally(o.Outcome) {
				continue
			}
			if o.Outcome != outcomePending {
				st.Done++
			}
			if skip > 0 {
				skip--
			} else if len(st.Results) < perPage {
				st.Results = append(st.Results, o)
			}
		}
	}
	return st, nil
}

// tally counts one tenant's outcome into st; it counts nothing and
// reports false for an outcome that is not a tenant's of this response
// (off host).
func (st *CompromiseStatus) tally(outcome string) bool {
	switch outcome {
	case OutcomeReset:
		st.Reset++
	case OutcomeAlreadyReset:
		st.AlreadyReset++
	case OutcomeFailed:
		st.Failed++
	case OutcomeSkipped:
		st.Skipped++
	case outcomePending:
	default:
		return false
	}
	st.Total++
	return true
}

// readChunks reads every chunk of r with its outcomes, tenants in chunk
// order; a tenant without an outcome is pending.
func (s *Service) readChunks(ctx context.Context, r *run) ([][]TenantOutcome, error) {
	out := make([][]TenantOutcome, r.Chunks)
	errs := make([]error, r.Chunks)
	s.forEach(r.Chunks, func(n int) {
		tenants, err := s.readChunk(ctx, r, n)
		if err != nil {
			errs[n] = err
			return
		}
		done, _, err := s.readResults(ctx, r, n)
		if err != nil {
			errs[n] = err
			return
		}
		out[n] = make([]TenantOutcome, len(tenants))
		for i, t := range tenants {
			if o, ok := done[t]; ok {
				out[n][i] = o
			} else {
				out[n][i] = TenantOutcome{TenantID: t, Outcome: outcomePending}
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return out, nil
}

// readChunk returns the tenants of chunk n; none when it is not written
// (yet). An id that is not a tenant id is dropped: a chunk is data, and
// only checked ids become paths.
func (s *Service) readChunk(ctx context.Context, r *run, n int) ([]string, error) {
	sec, err := s.cfg.Vault.Read(ctx, chunkPath(r.IncidentID, r.ResponseID, n))
	if errors.Is(err, vault.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, upstream("read a chunk of the compromise response", err)
	}
	var ids []string
	for _, id := range strings.Split(sec.Data["tenants"], ",") {
		if ValidateTenantID(id) == nil {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// notifyResponse sends a compromise response's security alert; a failure
// is logged.
func (s *Service) notifyResponse(ctx context.Context, incidentID, body string) {
	if s.cfg.Notifier == nil {
		return
	}
	if err := s.cfg.Notifier.Notify(ctx, notify.Message{
		Kind:    notify.KindSecurityAlert,
		Subject: "smtp-vault: compromise response for incident " + truncate(incidentID, 64),
		Body:    body,
		Attrs:   map[string]string{"rule": "compromise_response", "incident_id": incidentID, "severity": string(audit.Critical)},
	}); err != nil {
		s.log.ErrorContext(ctx, "compromise response: security alert not sent", "incident_id", incidentID, "error", err)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}

// validHost accepts a lowercase DNS name or an IP address literal.
func validHost(h string) bool {
	return net.ParseIP(h) != nil || (len(h) <= 253 && domainPattern.MatchString(h))
}

// ParseResetJob decodes a reset queue message: one JSON object with the
// fields of ResetJob and no other, and ids that could name a run.
func ParseResetJob(body []byte) (ResetJob, error) {
	var j ResetJob
	if err := decodeMessage(body, &j); err != nil {
		return ResetJob{}, fmt.Errorf("%w: a reset job must be one JSON object with incident_id, response_id, chunk and plan only", ErrInvalidInput)
	}
	return j, j.Validate()
}
