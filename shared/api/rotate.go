package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/rotation"
)

const (
	rotateRoute        = "POST " + tenantCredentials + "/rotate"
	rotateOverdueRoute = "POST /api/v1/platform-admin/smtp-credentials/rotate-overdue"
	// maxReasonBytes bounds the free-text reason kept in the audit trail.
	maxReasonBytes = 500
)

// rotateBody is the body of POST .../smtp-credentials/rotate and of
// POST .../smtp-credentials/rotate-overdue (where the reason is optional).
type rotateBody struct {
	Reason string `json:"reason"`
}

// rotateResponse is the body of a manual rotation's answer.
type rotateResponse struct {
	TenantID     string    `json:"tenant_id"`
	Outcome      string    `json:"outcome"` // rotated, or resumed (an interrupted rotation was finished instead)
	LastRotated  time.Time `json:"last_rotated"`
	NextRotation time.Time `json:"next_rotation"`
}

// rotateOverdueResponse is the body of the bulk rotation's answer.
type rotateOverdueResponse struct {
	Overdue   int      `json:"overdue"`
	Queued    int      `json:"queued"`  // handed to the rotate worker (RotateQueue)
	Rotated   int      `json:"rotated"` // done in the request (no queue configured)
	Failed    int      `json:"failed"`
	TenantIDs []string `json:"tenant_ids"`
}

func (b rotateBody) reason(required bool) (string, error) {
	r := strings.TrimSpace(b.Reason)
	switch {
	case r == "" && required:
		return "", &Error{http.StatusBadRequest, "reason_required", "reason is required: say why the credential is rotated"}
	case len(r) > maxReasonBytes || !utf8.ValidString(r) || strings.ContainsAny(r, "\x00\r\n"):
		return "", &Error{http.StatusBadRequest, "invalid_reason", fmt.Sprintf("reason must be one line of at most %d bytes", maxReasonBytes)}
	}
	return r, nil
}

// Rotate serves the manual rotation route (access: Routes).
func (d Deps) Rotate() Handler {
	return d.guard("rotate", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		tenantID := req.PathParameters["tenant_id"]
		if err := credential.ValidateTenantID(tenantID); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		var b rotateBody
		if err := decodeBody(req, &b); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		reason, err := b.reason(true)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		res, err := d.Credentials.Rotation().Rotate(ctx, rotation.Request{
			TenantID: tenantID, Reason: reason, Trigger: rotation.TriggerManual, Actor: actor(req, c.Principal),
		})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, rotateResponse{TenantID: tenantID, Outcome: res.Outcome, LastRotated: res.LastRotated, NextRotation: res.NextRotation}), nil
	})
}

// RotateOverdue serves the bulk route: every credential 180 days old or
// more is handed to the rotate worker through the queue (or, with no queue
// configured, rotated in the request).
func (d Deps) RotateOverdue() Handler {
	return d.guard("rotate", func(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller) (events.APIGatewayV2HTTPResponse, error) {
		var b rotateBody
		if err := decodeBody(req, &b); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		reason, err := b.reason(false)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		eng := d.Credentials.Rotation()
		statuses, err := eng.Statuses(ctx, 0)
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		now := eng.Now()
		out := rotateOverdueResponse{TenantIDs: []string{}}
		var jobs []rotation.Job
		for _, st := range statuses {
			if st.Err == nil && st.Overdue(now) {
				jobs = append(jobs, rotation.Job{TenantID: st.TenantID, Reason: rotation.JobBulk, RequestedBy: c.Subject, Note: reason})
				out.TenantIDs = append(out.TenantIDs, st.TenantID)
			}
		}
		out.Overdue = len(jobs)
		// The request is audited before anything is queued, so a bulk
		// rotation nobody can trace never starts.
		if err := d.recordRequest(ctx, req, c, audit.BulkRotationRequested, "", map[string]any{"reason": reason, "overdue": len(jobs)}); err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		if d.Queue != nil {
			sent, err := d.Queue.Send(ctx, jobs)
			if err != nil && sent == 0 && len(jobs) > 0 {
				return events.APIGatewayV2HTTPResponse{}, fmt.Errorf("%w: %w", credential.ErrUnavailable, err)
			}
			if err != nil {
				d.Log.WarnContext(ctx, "rotate overdue: queue jobs", "jobs", len(jobs), "sent", sent, "error", err)
			}
			out.Queued, out.Failed = sent, len(jobs)-sent
		} else {
			for _, j := range jobs {
				r := j.Request()
				r.Actor = actor(req, c.Principal)
				if res, err := eng.Rotate(ctx, r); err != nil {
					out.Failed++
					d.Log.WarnContext(ctx, "bulk rotation", "tenant_id", j.TenantID, "error", err)
				} else if res.Outcome != rotation.OutcomeNotDue {
					out.Rotated++
				}
			}
		}
		d.Log.InfoContext(ctx, "rotate overdue", "user_id", c.Subject, "overdue", out.Overdue, "queued", out.Queued, "rotated", out.Rotated, "failed", out.Failed)
		return respondJSON(http.StatusOK, out), nil
	})
}

// RotateFunction is the rotate Lambda's handler: the two HTTP API routes,
// RotateQueue's SQS batches (partial failures reported, so only failed
// messages come back), or one rotation.Job invoked directly.
func (d Deps) RotateFunction() func(context.Context, json.RawMessage) (any, error) {
	manual, bulk := d.Rotate(), d.RotateOverdue()
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if isHTTPEvent(raw) {
			var req events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(raw, &req); err != nil {
				return nil, fmt.Errorf("decode HTTP API event: %w", err)
			}
			if req.RouteKey == rotateOverdueRoute {
				return bulk(ctx, req)
			}
			return manual(ctx, req) // the guard refuses any other route
		}
		if isSQSEvent(raw) {
			var ev events.SQSEvent
			if err := json.Unmarshal(raw, &ev); err != nil {
				return nil, fmt.Errorf("decode SQS event: %w", err)
			}
			return d.RotateBatch(ctx, ev), nil
		}
		var job rotation.Job
		if err := decodeJSON(raw, &job); err != nil {
			return nil, err
		}
		res, err := d.runJob(ctx, job)
		if err != nil {
			return nil, toError(err)
		}
		return res, nil
	}
}

// RotateBatch works through one SQS batch and reports the messages to
// deliver again: those whose rotation failed for a reason that may pass
// (MailU or Vault down, a rotation of the tenant already running). A
// message that can never succeed (malformed, unknown tenant) is dropped
// with an error log rather than retried into the dead-letter queue.
func (d Deps) RotateBatch(ctx context.Context, ev events.SQSEvent) events.SQSEventResponse {
	resp := events.SQSEventResponse{BatchItemFailures: []events.SQSBatchItemFailure{}}
	for _, m := range ev.Records {
		var job rotation.Job
		if err := decodeJSON([]byte(m.Body), &job); err != nil {
			d.Log.ErrorContext(ctx, "rotate queue: malformed message dropped", "message_id", m.MessageId, "error", err)
			continue
		}
		_, err := d.runJob(ctx, job)
		switch {
		case err == nil:
		case errors.Is(err, rotation.ErrInvalidInput), errors.Is(err, rotation.ErrNotFound):
			d.Log.ErrorContext(ctx, "rotate queue: message dropped", "message_id", m.MessageId, "tenant_id", job.TenantID, "error", err)
		default:
			d.Log.WarnContext(ctx, "rotate queue: will retry", "message_id", m.MessageId, "tenant_id", job.TenantID, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp
}

func (d Deps) runJob(ctx context.Context, job rotation.Job) (rotation.Result, error) {
	switch job.Reason {
	case rotation.JobScheduled, rotation.JobResume, rotation.JobBulk:
	default:
		return rotation.Result{}, fmt.Errorf("%w: reason must be %s, %s or %s", rotation.ErrInvalidInput, rotation.JobScheduled, rotation.JobResume, rotation.JobBulk)
	}
	res, err := d.Credentials.Rotation().Rotate(ctx, job.Request())
	if err == nil {
		d.Log.InfoContext(ctx, "rotate job", "tenant_id", job.TenantID, "reason", job.Reason, "outcome", res.Outcome)
	}
	return res, err
}

// isSQSEvent tells an SQS batch from other invocations.
func isSQSEvent(raw json.RawMessage) bool {
	var probe struct {
		Records []struct {
			EventSource string `json:"eventSource"`
		} `json:"Records"`
	}
	return json.Unmarshal(raw, &probe) == nil && len(probe.Records) > 0 && probe.Records[0].EventSource == "aws:sqs"
}

// RotateSweepFunction is the rotate-sweep Lambda's handler, invoked by the
// EventBridge schedule (the event's content is not used) or on demand.
func (d Deps) RotateSweepFunction() func(context.Context, json.RawMessage) (rotation.Summary, error) {
	return func(ctx context.Context, _ json.RawMessage) (rotation.Summary, error) {
		if d.Sweeper == nil {
			return rotation.Summary{}, errors.New("rotate-sweep: no sweeper wired")
		}
		return d.Sweeper.Sweep(ctx)
	}
}
