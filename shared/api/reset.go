package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/credential"
)

// resetBody is the body of POST .../smtp-credentials/emergency-reset.
type resetBody struct {
	IncidentID string `json:"incident_id"`
	Reason     string `json:"reason"`
}

// resetResponse is the answer of an emergency reset. Password is the new
// password, shown this once (Cache-Control: no-store; nothing serves the
// response again); it is absent when this incident already reset the
// credential.
type resetResponse struct {
	TenantID           string    `json:"tenant_id"`
	IncidentID         string    `json:"incident_id"`
	Username           string    `json:"username"`
	Password           string    `json:"password,omitempty"`
	AlreadyReset       bool      `json:"already_reset"`
	LastRotated        time.Time `json:"last_rotated"`
	NextRotation       time.Time `json:"next_rotation"`
	CompromisedVersion int       `json:"compromised_version,omitempty"`
	KVVersion          int       `json:"kv_version"`
}

// EmergencyReset serves the emergency reset route (access: Routes).
func (d Deps) EmergencyReset() Handler {
	return d.guard("emergency-reset", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		var b resetBody
		if err := decodeBody(req, &b); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		res, err := d.Credentials.EmergencyReset(ctx, credential.ResetRequest{
			TenantID: req.PathParameters["tenant_id"], IncidentID: b.IncidentID, Reason: b.Reason, Actor: actor(req, c.Principal),
		})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, resetResponse{
			TenantID: res.TenantID, IncidentID: res.IncidentID, Username: res.Username, Password: res.Password,
			AlreadyReset: res.AlreadyReset, LastRotated: res.LastRotated, NextRotation: res.NextRotation,
			CompromisedVersion: res.CompromisedVersion, KVVersion: res.Version,
		}), nil
	})
}

// compromiseBody is the body of POST .../incidents/{id}/compromise-response:
// exactly one of tenant_ids, mailu_host or all.
type compromiseBody struct {
	TenantIDs []string `json:"tenant_ids"`
	MailUHost string   `json:"mailu_host"`
	All       bool     `json:"all"`
	Reason    string   `json:"reason"`
}

// CompromiseEvent is the on-demand invocation of a compromise response
// (events/compromise-response.json).
type CompromiseEvent struct {
	Action     string   `json:"action"` // "compromise-response"
	IncidentID string   `json:"incident_id"`
	TenantIDs  []string `json:"tenant_ids,omitempty"`
	MailUHost  string   `json:"mailu_host,omitempty"`
	All        bool     `json:"all,omitempty"`
	Reason     string   `json:"reason,omitempty"`
	// RequestedBy names the operator; audited.
	RequestedBy string `json:"requested_by"`
}

// StartCompromiseResponse serves POST .../compromise-response: it answers
// 202 with the response's id and first progress at once; the selection
// of all tenants or a host and the resets run in the emergency-reset
// worker.
func (d Deps) StartCompromiseResponse() Handler {
	return d.guard("emergency-reset", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		var b compromiseBody
		if err := decodeBody(req, &b); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		st, err := d.Credentials.StartCompromiseResponse(ctx, credential.CompromiseRequest{
			IncidentID: req.PathParameters["incident_id"], TenantIDs: b.TenantIDs, MailUHost: b.MailUHost, All: b.All,
			Reason: b.Reason, Actor: actor(req, c.Principal),
		})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusAccepted, st), nil
	})
}

// CompromiseResponse serves GET .../compromise-response?page=&per_page=:
// progress and one page of per-tenant outcomes.
func (d Deps) CompromiseResponse() Handler {
	return d.guard("emergency-reset", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		page, perPage := 1, credential.DefaultResultsPerPage
		for k, v := range req.QueryStringParameters {
			var err error
			switch k {
			case "page":
				if page, err = strconv.Atoi(v); err != nil || page < 1 || page > 1_000_000 {
					return events.APIGatewayV2HTTPResponse{}, &Error{http.StatusBadRequest, "invalid_page", "page must be a whole number from 1"}
				}
			case "per_page":
				if perPage, err = strconv.Atoi(v); err != nil || perPage < 1 || perPage > credential.MaxResultsPerPage {
					return events.APIGatewayV2HTTPResponse{}, &Error{http.StatusBadRequest, "invalid_per_page", fmt.Sprintf("per_page must be a whole number from 1 to %d", credential.MaxResultsPerPage)}
				}
			default:
				return events.APIGatewayV2HTTPResponse{}, &Error{http.StatusBadRequest, "unknown_parameter", fmt.Sprintf("unknown query parameter %q: use page, per_page", k)}
			}
		}
		st, err := d.Credentials.CompromiseResponse(ctx, req.PathParameters["incident_id"], page, perPage)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, st), nil
	})
}

// EmergencyResetFunction is the emergency-reset Lambda's handler: its
// HTTP API routes, ResetQueue's SQS batches of ResetJobs, or a
// CompromiseEvent invoked directly.
func (d Deps) EmergencyResetFunction() func(context.Context, json.RawMessage) (any, error) {
	reset, start, progress := d.EmergencyReset(), d.StartCompromiseResponse(), d.CompromiseResponse()
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if isHTTPEvent(raw) {
			var req events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &req); err != nil {
				return nil, fmt.Errorf("decode HTTP API event: %w", err)
			}
			switch req.RouteKey {
			case "POST " + compromiseResponse:
				return start(ctx, req)
			case "GET " + compromiseResponse:
				return progress(ctx, req)
			}
			return reset(ctx, req) // the guard refuses any other route
		}
		if isSQSEvent(raw) {
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("decode SQS event: %w", err)
			}
			return d.ResetBatch(ctx, ev), nil
		}
		var ev CompromiseEvent
		if err := decodeJSON(raw, &ev); err != nil {
			return nil, err
		}
		if ev.Action != "compromise-response" || ev.RequestedBy == "" {
			return nil, &Error{http.StatusBadRequest, "invalid_request", `action must be "compromise-response", with requested_by naming the operator`}
		}
		st, err := d.Credentials.StartCompromiseResponse(ctx, credential.CompromiseRequest{
			IncidentID: ev.IncidentID, TenantIDs: ev.TenantIDs, MailUHost: ev.MailUHost, All: ev.All, Reason: ev.Reason,
			Actor: credential.Actor{UserID: "operator:" + ev.RequestedBy},
		})
		if err != nil {
			return nil, toError(err)
		}
		return st, nil
	}
}

// ResetBatch works through one SQS batch of compromise-response jobs.
// Every tenant's outcome is recorded (a failed tenant is reported, not
// retried), so a message comes back only when its job could not finish
// (Vault unavailable, or cut off without a continuation): the next
// delivery resumes it. A malformed job, or one that names no recorded
// run, is logged and dropped.
func (d Deps) ResetBatch(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed = []events.SQSBatchItemFailure{}
	)
	for _, m := range ev.Records {
		job, err := credential.ParseResetJob([]byte(m.Body))
		if err != nil {
			d.Log.ErrorContext(ctx, "reset queue: malformed message dropped", "message_id", m.MessageId, "error", err)
			continue
		}
		wg.Go(func() {
			_, err := d.Credentials.RunResetJob(ctx, job)
			switch {
			case err == nil:
			case !credential.Retryable(err):
				d.Log.ErrorContext(ctx, "reset queue: job refused and dropped", "message_id", m.MessageId, "incident_id", job.IncidentID, "error", err)
			default:
				d.Log.WarnContext(ctx, "reset queue: job comes back", "message_id", m.MessageId, "incident_id", job.IncidentID, "chunk", job.Chunk, "error", err)
				mu.Lock()
				failed = append(failed, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return events.SQSEventResponse{BatchItemFailures: failed}
}
