package credential

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/notify"
	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/vault"
)

// A compromise response resets many tenants in one incident: the request
// is recorded at incidents/<id>/response, each tenant becomes a ResetJob
// for the emergency-reset worker (SQS in AWS, an in-process queue
// locally), and each job records its outcome at
// incidents/<id>/runs/<response_id>/<tenant>. A tenant is reset once per incident
// (EmergencyReset's own rule), so running the response again finishes
// what failed and resets nobody twice.

// MaxCompromiseTenants bounds one compromise response.
const MaxCompromiseTenants = 100_000

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

// ResetJob is one tenant of a compromise response, the body of a reset
// queue message. It holds no secret.
type ResetJob struct {
	IncidentID  string `json:"incident_id"`
	TenantID    string `json:"tenant_id"`
	ResponseID  string `json:"response_id"`
	Reason      string `json:"reason,omitempty"`
	RequestedBy string `json:"requested_by"`
}

// Outcomes of one tenant in a compromise response.
const (
	OutcomeReset        = "reset"         // reset and verified over SMTP AUTH
	OutcomeAlreadyReset = "already_reset" // this incident reset it before
	OutcomeFailed       = "failed"        // untouched; Code says why
	OutcomeSkipped      = "skipped"       // no such credential
	outcomePending      = "pending"       // queued, no outcome yet
)

// TenantOutcome is one tenant's result in a compromise response.
type TenantOutcome struct {
	TenantID string    `json:"tenant_id"`
	Outcome  string    `json:"outcome"`
	Code     string    `json:"code,omitempty"`
	At       time.Time `json:"at,omitzero"`
}

// CompromiseStatus is a compromise response's progress.
type CompromiseStatus struct {
	IncidentID   string          `json:"incident_id"`
	ResponseID   string          `json:"response_id"`
	State        string          `json:"state"` // running or finished
	RequestedBy  string          `json:"requested_by"`
	StartedAt    time.Time       `json:"started_at"`
	FinishedAt   *time.Time      `json:"finished_at,omitempty"`
	Total        int             `json:"total"`
	Done         int             `json:"done"`
	Reset        int             `json:"reset"`
	AlreadyReset int             `json:"already_reset"`
	Failed       int             `json:"failed"`
	Skipped      int             `json:"skipped"`
	Results      []TenantOutcome `json:"results"`
}

// KV paths of a compromise response: the latest run's request, and each
// run's outcomes in a folder of their own (so counting a folder's keys
// tells whether a run is done).
func incidentPath(id string) string {
	return "incidents/" + pathseg.Must(pathseg.IncidentID, id) + "/response"
}
func resultsPath(id, responseID string) string {
	return "incidents/" + pathseg.Must(pathseg.IncidentID, id) + "/runs/" + pathseg.Must(pathseg.ResponseID, responseID) + "/"
}
func resultPath(id, responseID, tenantID string) string {
	return resultsPath(id, responseID) + pathseg.Must(pathseg.TenantID, tenantID)
}

// StartCompromiseResponse records the response, audits its start
// (credential_compromise_response, critical, failing closed), alerts, and
// hands every tenant to the reset queue; without a queue it resets them
// itself, Config.Concurrency at a time, before returning.
func (s *Service) StartCompromiseResponse(ctx context.Context, req CompromiseRequest) (CompromiseStatus, error) {
	if err := ValidateIncidentID(req.IncidentID); err != nil {
		return CompromiseStatus{}, err
	}
	reason, err := ValidateReason(req.Reason, false)
	if err != nil {
		return CompromiseStatus{}, err
	}
	tenants, err := s.compromiseTargets(ctx, req)
	if err != nil {
		return CompromiseStatus{}, err
	}
	now := s.Now()
	responseID := uuid.NewString()
	version := 0
	if cur, err := s.cfg.Vault.Read(ctx, incidentPath(req.IncidentID)); err == nil {
		version = cur.Version
	} else if !errors.Is(err, vault.ErrNotFound) {
		return CompromiseStatus{}, upstream("read the compromise response", err)
	}
	if _, err := s.cfg.Vault.WriteCAS(ctx, incidentPath(req.IncidentID), map[string]string{
		"response_id":  responseID,
		"requested_by": req.Actor.UserID,
		"reason":       reason,
		"started_at":   FormatTime(now),
		"tenants":      strings.Join(tenants, ","),
	}, version); err != nil {
		return CompromiseStatus{}, upstream("record the compromise response", err)
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
		Details: map[string]any{"incident_id": req.IncidentID, "response_id": responseID, "phase": "started", "tenants": len(tenants), "reason": reason, "selector": selector},
	}); err != nil {
		return CompromiseStatus{}, upstream("record "+audit.CompromiseResponse, err)
	}
	s.notifyResponse(ctx, req.IncidentID, fmt.Sprintf("%s started a compromise response for incident %s: %d tenants are being reset. Reason: %s", req.Actor.UserID, req.IncidentID, len(tenants), reason))
	jobs := make([]ResetJob, len(tenants))
	for i, t := range tenants {
		jobs[i] = ResetJob{IncidentID: req.IncidentID, TenantID: t, ResponseID: responseID, Reason: reason, RequestedBy: req.Actor.UserID}
	}
	if s.cfg.ResetQueue != nil {
		sent, err := s.cfg.ResetQueue.Send(ctx, jobs)
		if err != nil {
			s.log.ErrorContext(ctx, "compromise response: queue jobs", "incident_id", req.IncidentID, "jobs", len(jobs), "sent", sent, "error", err)
			for _, j := range jobs[sent:] {
				s.recordOutcome(ctx, j, TenantOutcome{TenantID: j.TenantID, Outcome: OutcomeFailed, Code: "queue_unavailable"})
			}
		}
	} else {
		s.runResetJobs(ctx, jobs)
	}
	return s.CompromiseResponse(ctx, req.IncidentID)
}

// runResetJobs works through jobs in the invocation, Config.Concurrency at
// a time.
func (s *Service) runResetJobs(ctx context.Context, jobs []ResetJob) {
	s.forEach(len(jobs), func(i int) { s.RunResetJob(ctx, jobs[i]) })
}

// compromiseTargets resolves the request's tenants, sorted and unique.
func (s *Service) compromiseTargets(ctx context.Context, req CompromiseRequest) ([]string, error) {
	selectors := 0
	for _, set := range []bool{len(req.TenantIDs) > 0, req.MailUHost != "", req.All} {
		if set {
			selectors++
		}
	}
	if selectors != 1 {
		return nil, fmt.Errorf("%w: give exactly one of tenant_ids, mailu_host or all", ErrInvalidInput)
	}
	var ids []string
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
		ids = slices.Clone(req.TenantIDs)
	case req.MailUHost != "":
		host := strings.ToLower(strings.TrimSuffix(req.MailUHost, "."))
		if !validHost(host) {
			return nil, fmt.Errorf("%w: mailu_host must be a host name or IP address", ErrInvalidInput)
		}
		all, err := s.tenantIDs(ctx)
		if err != nil {
			return nil, err
		}
		if ids, err = s.tenantsOnHost(ctx, all, host); err != nil {
			return nil, err
		}
	default:
		var err error
		if ids, err = s.tenantIDs(ctx); err != nil {
			return nil, err
		}
	}
	sort.Strings(ids)
	return slices.Compact(ids), nil
}

// tenantsOnHost returns the tenants whose SMTP address or MailU API is on
// host, from the records' plain fields (nothing is decrypted).
func (s *Service) tenantsOnHost(ctx context.Context, ids []string, host string) ([]string, error) {
	var (
		mu   sync.Mutex
		out  []string
		errs []error
	)
	s.forEach(len(ids), func(i int) {
		id := ids[i]
		rec, err := s.readRecord(ctx, id)
		if errors.Is(err, ErrNotFound) {
			return
		}
		apiURL, uerr := s.storedMailUURL(ctx, id)
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err != nil:
			errs = append(errs, err)
		case uerr != nil:
			errs = append(errs, uerr)
		case strings.EqualFold(hostOf(rec.SMTPAddr), host) || strings.EqualFold(urlHost(apiURL), host):
			out = append(out, id)
		}
	})
	if len(errs) > 0 {
		// A partial list would leave compromised tenants out: refuse.
		return nil, errs[0]
	}
	return out, nil
}

// RunResetJob resets one tenant of a compromise response and records its
// outcome; a conflict with a running change of the tenant is retried a
// few times first. It never fails: a tenant that cannot be reset is
// recorded as failed, untouched, for the next run of the response.
func (s *Service) RunResetJob(ctx context.Context, j ResetJob) TenantOutcome {
	out := TenantOutcome{TenantID: j.TenantID}
	var (
		res ResetResult
		err error
	)
	for attempt := 1; ; attempt++ {
		res, err = s.EmergencyReset(ctx, ResetRequest{
			TenantID: j.TenantID, IncidentID: j.IncidentID, Reason: j.Reason,
			Actor: Actor{UserID: j.RequestedBy}, fromResponse: j.ResponseID,
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
	case err == nil && res.AlreadyReset:
		out.Outcome = OutcomeAlreadyReset
	case err == nil:
		out.Outcome = OutcomeReset
	case errors.Is(err, ErrNotFound):
		out.Outcome, out.Code = OutcomeSkipped, "not_found"
	default:
		out.Outcome, out.Code = OutcomeFailed, errorClass(err)
		s.log.WarnContext(ctx, "compromise response: reset failed", "tenant_id", j.TenantID, "incident_id", j.IncidentID, "error", err)
	}
	s.recordOutcome(ctx, j, out)
	return out
}

// resetAttempts bounds the tries of one tenant's reset against conflicts.
const resetAttempts = 4

// recordOutcome writes a tenant's outcome and, when it is the last one of
// the response, finishes the response.
func (s *Service) recordOutcome(ctx context.Context, j ResetJob, out TenantOutcome) {
	out.At = s.Now()
	path := resultPath(j.IncidentID, j.ResponseID, j.TenantID)
	for range 3 {
		version := 0
		if cur, err := s.cfg.Vault.Read(ctx, path); err == nil {
			version = cur.Version
		}
		_, err := s.cfg.Vault.WriteCAS(ctx, path, map[string]string{
			"response_id": j.ResponseID, "outcome": out.Outcome, "code": out.Code, "at": FormatTime(out.At),
		}, version)
		if err == nil {
			break
		}
		if !errors.Is(err, vault.ErrCASConflict) {
			s.log.ErrorContext(ctx, "compromise response: record an outcome", "tenant_id", j.TenantID, "error", err)
			return
		}
	}
	s.finishResponseIfDone(ctx, j.IncidentID, j.ResponseID)
}

// finishResponseIfDone audits the end of a response (once: the response
// record's check-and-set picks one writer) when every tenant has an
// outcome of this run.
func (s *Service) finishResponseIfDone(ctx context.Context, incidentID, responseID string) {
	// One list per job; the full read only once every tenant has an outcome.
	keys, err := s.cfg.Vault.List(ctx, resultsPath(incidentID, responseID))
	if err != nil {
		return
	}
	cur, err := s.cfg.Vault.Read(ctx, incidentPath(incidentID))
	if err != nil || cur.Data["response_id"] != responseID || cur.Data["finished_at"] != "" || len(keys) < len(strings.Split(cur.Data["tenants"], ",")) {
		return
	}
	st, err := s.CompromiseResponse(ctx, incidentID)
	if err != nil || st.ResponseID != responseID || st.Done < st.Total {
		return
	}
	data := cloneMap(cur.Data)
	data["finished_at"] = FormatTime(s.Now())
	if _, err := s.cfg.Vault.WriteCAS(ctx, incidentPath(incidentID), data, cur.Version); err != nil {
		return // another worker finished it
	}
	if err := s.cfg.Audit.Record(ctx, audit.Event{
		Event: audit.CompromiseResponse, UserID: cur.Data["requested_by"], Severity: audit.Critical,
		Details: map[string]any{"incident_id": incidentID, "response_id": responseID, "phase": "finished", "tenants": st.Total,
			"reset": st.Reset, "already_reset": st.AlreadyReset, "failed": st.Failed, "skipped": st.Skipped},
	}); err != nil {
		s.log.ErrorContext(ctx, "compromise response: the end was not audited", "incident_id", incidentID, "error", err)
	}
	s.notifyResponse(ctx, incidentID, fmt.Sprintf("The compromise response for incident %s finished: %d reset, %d already reset, %d failed, %d skipped.", incidentID, st.Reset, st.AlreadyReset, st.Failed, st.Skipped))
}

// CompromiseResponse reports the progress of the incident's latest
// response and every tenant's outcome in it.
func (s *Service) CompromiseResponse(ctx context.Context, incidentID string) (CompromiseStatus, error) {
	if err := ValidateIncidentID(incidentID); err != nil {
		return CompromiseStatus{}, err
	}
	cur, err := s.cfg.Vault.Read(ctx, incidentPath(incidentID))
	if errors.Is(err, vault.ErrNotFound) {
		return CompromiseStatus{}, fmt.Errorf("%w: no compromise response for incident %s", ErrNotFound, incidentID)
	}
	if err != nil {
		return CompromiseStatus{}, upstream("read the compromise response", err)
	}
	st := CompromiseStatus{IncidentID: incidentID, ResponseID: cur.Data["response_id"], RequestedBy: cur.Data["requested_by"], State: "running", Results: []TenantOutcome{}}
	st.StartedAt, _ = time.Parse(time.RFC3339, cur.Data["started_at"])
	if f, err := time.Parse(time.RFC3339, cur.Data["finished_at"]); err == nil {
		st.FinishedAt, st.State = &f, "finished"
	}
	tenants := slices.DeleteFunc(strings.Split(cur.Data["tenants"], ","), func(s string) bool { return s == "" })
	st.Total = len(tenants)
	outcomes, err := s.readOutcomes(ctx, incidentID, st.ResponseID, tenants)
	if err != nil {
		return CompromiseStatus{}, err
	}
	for _, o := range outcomes {
		switch o.Outcome {
		case OutcomeReset:
			st.Reset++
		case OutcomeAlreadyReset:
			st.AlreadyReset++
		case OutcomeFailed:
			st.Failed++
		case OutcomeSkipped:
			st.Skipped++
		}
		if o.Outcome != outcomePending {
			st.Done++
		}
		st.Results = append(st.Results, o)
	}
	return st, nil
}

// readOutcomes reads the outcome of each tenant in this run of the
// response; a tenant without one is pending.
func (s *Service) readOutcomes(ctx context.Context, incidentID, responseID string, tenants []string) ([]TenantOutcome, error) {
	keys, err := s.cfg.Vault.List(ctx, resultsPath(incidentID, responseID))
	if err != nil && !errors.Is(err, vault.ErrNotFound) {
		return nil, upstream("list the compromise response's results", err)
	}
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[k] = true
	}
	out := make([]TenantOutcome, len(tenants))
	var (
		mu   sync.Mutex
		errs []error
	)
	s.forEach(len(tenants), func(i int) {
		out[i] = TenantOutcome{TenantID: tenants[i], Outcome: outcomePending}
		if !have[tenants[i]] {
			return
		}
		sec, err := s.cfg.Vault.Read(ctx, resultPath(incidentID, responseID, tenants[i]))
		if err != nil {
			mu.Lock()
			errs = append(errs, err)
			mu.Unlock()
			return
		}
		if sec.Data["response_id"] != responseID {
			return // an earlier run's outcome
		}
		at, _ := time.Parse(time.RFC3339, sec.Data["at"])
		out[i] = TenantOutcome{TenantID: tenants[i], Outcome: sec.Data["outcome"], Code: sec.Data["code"], At: at}
	})
	if len(errs) > 0 {
		return nil, upstream("read the compromise response's results", errs[0])
	}
	return out, nil
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
