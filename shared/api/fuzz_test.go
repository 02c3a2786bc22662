package api

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"smtp-vault/shared/credential"
)

// FuzzRequestBodies feeds every route's body type arbitrary bytes: the
// decoder never panics, and every refusal is one of the statuses a client
// is told about (400, 413, 415, 422) with a code, never a 500.
func FuzzRequestBodies(f *testing.F) {
	for _, seed := range []string{
		`{}`, `{"domain":"a.example","webmail_url":"https://a","mailu_api_url":"https://b","smtp_addr":"c:587"}`,
		`{"incident_id":"INC-1","reason":"x"}`, `{"tenant_ids":["550e8400-e29b-41d4-a716-446655440000"]}`, `{"all":true}`,
		`{"reason":"x"} {}`, `{"domain":42}`, `[`, `null`, `{"password":"x","totp_code":"123456"}`, "\x00", `{"event":"smtp_credentials_copied","field":"password"}`,
	} {
		f.Add(seed, false)
	}
	f.Fuzz(func(t *testing.T, body string, base64 bool) {
		req := events.APIGatewayV2HTTPRequest{Body: body, IsBase64Encoded: base64, Headers: map[string]string{"content-type": "application/json"}}
		for _, v := range []any{&storeBody{}, &rotateBody{}, &resetBody{}, &compromiseBody{}, &StoreEvent{}, &credential.Job{}, &credential.ResetJob{}, &RecoverEvent{}, &CompromiseEvent{}, &viewingBody{}} {
			err := decodeBody(req, v)
			if err == nil {
				continue
			}
			var e *Error
			if !errors.As(err, &e) || e.Code == "" {
				t.Fatalf("refusal without a code: %v", err)
			}
			switch e.Status {
			case http.StatusBadRequest, http.StatusRequestEntityTooLarge, http.StatusUnsupportedMediaType, http.StatusUnprocessableEntity:
			default:
				t.Fatalf("status %d for a malformed body", e.Status)
			}
		}
	})
}

// FuzzQueryStrings feeds the overview's and the audit route's query
// parsers arbitrary parameters: they never panic, refuse with 400 and a
// code, and what they accept is within bounds.
func FuzzQueryStrings(f *testing.F) {
	f.Add("status", "overdue", "page", "2")
	f.Add("q", "example\x00.test", "status", "failing")
	f.Add("per_page", "1000", "page", "-1")
	f.Add("from", "2026-01-01T00:00:00Z", "to", "2025-01-01T00:00:00Z")
	f.Add("event", "smtp_credentials_accessed", "user", strings.Repeat("u", 300))
	f.Fuzz(func(t *testing.T, k1, v1, k2, v2 string) {
		q := map[string]string{k1: v1, k2: v2}
		if oq, err := overviewQuery(q); err == nil {
			if err := oq.Validate(); err != nil {
				t.Fatalf("overview accepted %v, which the domain refuses: %v", q, err)
			}
		} else if e := toError(err); e.Status != http.StatusBadRequest || e.Code == "" {
			t.Fatalf("overview refusal %d %q", e.Status, e.Code)
		}
		if aq, err := parseAuditQuery(q); err == nil {
			if aq.Page < 1 || aq.PerPage < 1 || aq.PerPage > MaxPerPage || (!aq.From.IsZero() && !aq.To.IsZero() && aq.From.After(aq.To)) {
				t.Fatalf("audit query accepted out of bounds: %+v", aq)
			}
		} else if e := toError(err); e.Status != http.StatusBadRequest || e.Code == "" {
			t.Fatalf("audit refusal %d %q", e.Status, e.Code)
		}
	})
}
