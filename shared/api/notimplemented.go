package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/aws/aws-lambda-go/events"
)

// NotImplemented is the handler of a function whose issue has not landed
// and that serves no route: invocations get an error. It fakes nothing.
func NotImplemented(function string) func(context.Context, json.RawMessage) (any, error) {
	e := notImplemented(function)
	return func(_ context.Context, raw json.RawMessage) (any, error) {
		if isHTTPEvent(raw) {
			return renderError(e), nil
		}
		return nil, e
	}
}

// GuardedNotImplemented is the handler of a function whose issue has not
// landed but whose routes exist: an HTTP event passes the guard (bearer
// token, role, re-auth, as Routes says) before it gets 501, so the access
// matrix already holds when the function lands. Other invocations get an
// error.
func (d Deps) GuardedNotImplemented(function string) func(context.Context, json.RawMessage) (any, error) {
	e := notImplemented(function)
	h := d.guard(function, func(context.Context, events.APIGatewayV2HTTPRequest, caller) (events.APIGatewayV2HTTPResponse, error) {
		return renderError(e), nil
	})
	return func(ctx context.Context, raw json.RawMessage) (any, error) {
		if !isHTTPEvent(raw) {
			return nil, e
		}
		var req events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(raw, &req); err != nil {
			return nil, fmt.Errorf("decode HTTP API event: %w", err)
		}
		return h(ctx, req)
	}
}

func notImplemented(function string) *Error {
	return &Error{http.StatusNotImplemented, "not_implemented", "the " + function + " function is not implemented yet"}
}
