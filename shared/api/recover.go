package api

import (
	"context"
	"encoding/json"
	"net/http"

	"smtp-vault/shared/credential"
)

// RecoverEvent is the on-demand invocation after a tenant's VPS was lost
// (events/recover.json).
type RecoverEvent struct {
	credential.RecoverInput
	// RequestedBy names the operator; audited.
	RequestedBy string `json:"requested_by"`
}

// RecoverFunction is the recover Lambda's handler: a RecoverEvent invoked
// directly (it serves no HTTP route).
func (d Deps) RecoverFunction() func(context.Context, json.RawMessage) (any, error) {
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if isHTTPEvent(raw) {
			return nil, &Error{http.StatusBadRequest, "invalid_request", "the recover function is invoked directly, not through the HTTP API"}
		}
		var ev RecoverEvent
		if err := decodeJSON(raw, &ev); err != nil {
			return nil, err
		}
		if ev.RequestedBy == "" {
			return nil, &Error{http.StatusBadRequest, "invalid_request", "requested_by must name the operator"}
		}
		res, err := d.Credentials.Recover(ctx, ev.RecoverInput, credential.Actor{UserID: "operator:" + ev.RequestedBy})
		if err != nil {
			e := toError(err)
			d.Log.Log(ctx, levelFor(e.Status), "recover invocation failed", "status", e.Status, "code", e.Code, "error", err)
			return nil, e
		}
		return res, nil
	}
}
