package api

import (
	"context"
	"encoding/json"
	"net/http"
)

// NotImplemented is the handler of a function whose issue has not landed:
// HTTP events get 501 and the standard error body, other invocations an
// error. It fakes nothing.
func NotImplemented(function string) func(context.Context, json.RawMessage) (any, error) {
	e := &Error{http.StatusNotImplemented, "not_implemented", "the " + function + " function is not implemented yet"}
	return func(_ context.Context, raw json.RawMessage) (any, error) {
		if isHTTPEvent(raw) {
			var body errorBody
			body.Error.Code, body.Error.Message = e.Code, e.Message
			return respondJSON(e.Status, body), nil
		}
		return nil, e
	}
}
