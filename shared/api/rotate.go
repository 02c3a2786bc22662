package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/credential"
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
		res, err := d.Credentials.Rotate(ctx, credential.Request{
			TenantID: tenantID, Reason: reason, Trigger: credential.TriggerManual, Actor: actor(req, c.Principal),
		})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, rotateResponse{TenantID: tenantID, Outcome: res.Outcome, LastRotated: res.LastRotated, NextRotation: res.NextRotation}), nil
	})
}

// RotateOverdue serves the bulk route (access: Routes).
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
		out, err := d.Credentials.RotateOverdue(ctx, reason, actor(req, c.Principal))
		if err != nil {
			return events.APIGatewayV2HTTPResponse{}, err
		}
		return respondJSON(http.StatusOK, out), nil
	})
}

// RotateFunction is the rotate Lambda's handler: the two HTTP API routes,
// RotateQueue's SQS batches (partial failures reported, so only failed
// messages come back), or one credential.Job invoked directly.
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
		var job credential.Job
		if err := decodeJSON(raw, &job); err != nil {
			return nil, err
		}
		res, err := d.Credentials.RunJob(ctx, job)
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
		job, err := credential.ParseJob([]byte(m.Body))
		if err != nil {
			d.Log.ErrorContext(ctx, "rotate queue: malformed message dropped", "message_id", m.MessageId, "error", err)
			continue
		}
		_, err = d.Credentials.RunJob(ctx, job)
		switch {
		case err == nil:
		case !credential.Retryable(err):
			d.Log.ErrorContext(ctx, "rotate queue: message dropped", "message_id", m.MessageId, "tenant_id", job.TenantID, "error", err)
		default:
			d.Log.WarnContext(ctx, "rotate queue: will retry", "message_id", m.MessageId, "tenant_id", job.TenantID, "error", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: m.MessageId})
		}
	}
	return resp
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
// EventBridge schedule (the event's content is not used) or on demand. An
// operator's {"action": "rebuild-index"} rebuilds the status index from
// every tenant's metadata instead, for at most about a minute a call: its
// summary is in "index", and until "index.done" is true the next call
// goes on where this one stopped (docs/runbook.md).
func (d Deps) RotateSweepFunction() func(context.Context, json.RawMessage) (credential.Summary, error) {
	return func(ctx context.Context, raw json.RawMessage) (credential.Summary, error) {
		var in struct {
			Action string `json:"action"`
		}
		_ = json.Unmarshal(raw, &in) // a schedule's event has no action
		switch in.Action {
		case "":
			return d.Credentials.Sweep(ctx)
		case "rebuild-index":
			rep, err := d.Credentials.RebuildIndex(ctx)
			d.Log.InfoContext(ctx, "status index rebuild", "done", rep.Done, "remaining", rep.Remaining, "checked", rep.Checked, "added", rep.Added, "fixed", rep.Fixed, "removed", rep.Removed, "failed", rep.Failed)
			return credential.Summary{Index: rep}, err
		default:
			return credential.Summary{}, fmt.Errorf("rotate-sweep: unknown action %q: use rebuild-index, or none for the sweep", in.Action)
		}
	}
}
