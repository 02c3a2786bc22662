package api

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/credential"
)

// MaxBodyBytes bounds every request body.
const MaxBodyBytes = 64 << 10

// principal verifies the request's own bearer token (issuer, audience,
// signature by a key of the identity provider's JWKS, expiry), as API
// Gateway's JWT authorizer did before: anyone allowed to invoke the
// function directly could otherwise write any claims into the event. The
// claims an authorizer put in the event must name the same subject, and an
// event from another API than apiID (when set) is refused.
func principal(ctx context.Context, req events.APIGatewayV2HTTPRequest, v TokenVerifier, apiID string) (auth.Principal, error) {
	if v == nil {
		return auth.Principal{}, fmt.Errorf("%w: no token verifier configured", auth.ErrUnauthenticated)
	}
	if apiID != "" && req.RequestContext.APIID != apiID {
		return auth.Principal{}, fmt.Errorf("%w: the event comes from API %q, not this service's", auth.ErrUnauthenticated, req.RequestContext.APIID)
	}
	token, err := auth.BearerToken(header(req, "authorization"))
	if err != nil {
		return auth.Principal{}, err
	}
	p, _, err := v.Verify(ctx, token)
	if err != nil {
		return auth.Principal{}, err
	}
	if a := req.RequestContext.Authorizer; a != nil && a.JWT != nil && len(a.JWT.Claims) > 0 && a.JWT.Claims["sub"] != p.Subject {
		return auth.Principal{}, fmt.Errorf("%w: the authorizer's claims disagree with the bearer token", auth.ErrUnauthenticated)
	}
	return p, nil
}

// TokenVerifier checks a bearer token; *auth.Verifier implements it.
type TokenVerifier interface {
	Verify(ctx context.Context, rawToken string) (auth.Principal, map[string]string, error)
}

// actor is who made the request, for the audit trail.
func actor(req events.APIGatewayV2HTTPRequest, p auth.Principal) credential.Actor {
	return credential.Actor{
		UserID:    p.Subject,
		IP:        req.RequestContext.HTTP.SourceIP,
		UserAgent: req.RequestContext.HTTP.UserAgent,
	}
}

// recordRequest writes the audit event of a request that is itself the
// action (listing, querying the trail, asking for a bulk rotation), with
// who asked and from where. It fails closed: an error is
// credential.ErrAudit, which answers 503 audit_unavailable.
func (d Deps) recordRequest(ctx context.Context, req events.APIGatewayV2HTTPRequest, c caller, event, tenantID string, details map[string]any) error {
	a := actor(req, c.Principal)
	if err := d.Audit.Record(ctx, audit.Event{Event: event, TenantID: tenantID, UserID: a.UserID, IP: a.IP, UserAgent: a.UserAgent, Details: details}); err != nil {
		return fmt.Errorf("%w: %w", credential.ErrAudit, err)
	}
	return nil
}

// decodeBody parses a JSON body into v: at most MaxBodyBytes, unknown
// fields and trailing data rejected.
func decodeBody(req events.APIGatewayV2HTTPRequest, v any) error {
	raw := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return &Error{http.StatusBadRequest, "invalid_body", "the body is not valid base64"}
		}
		raw = b
	}
	if len(raw) > MaxBodyBytes {
		return &Error{http.StatusRequestEntityTooLarge, "body_too_large", fmt.Sprintf("the body exceeds %d bytes", MaxBodyBytes)}
	}
	if ct := header(req, "content-type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return &Error{http.StatusUnsupportedMediaType, "unsupported_media_type", "the body must be application/json"}
	}
	return decodeJSON(raw, v)
}

// decodeJSON parses exactly one JSON value into v, rejecting unknown
// fields, so that a misspelt field is an error and not silently ignored.
func decodeJSON(raw []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &te):
			return &Error{http.StatusUnprocessableEntity, "invalid_field", fmt.Sprintf("field %q has the wrong type", te.Field)}
		case strings.HasPrefix(err.Error(), "json: unknown field"):
			return &Error{http.StatusBadRequest, "unknown_field", strings.TrimPrefix(err.Error(), "json: ")}
		default:
			return &Error{http.StatusBadRequest, "invalid_json", "the body is not a valid JSON object"}
		}
	}
	if _, err := dec.Token(); err != io.EOF {
		return &Error{http.StatusBadRequest, "invalid_json", "the body must hold exactly one JSON object"}
	}
	return nil
}

// header reads a request header; API Gateway lower-cases their names.
func header(req events.APIGatewayV2HTTPRequest, name string) string {
	if v, ok := req.Headers[name]; ok {
		return v
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}
