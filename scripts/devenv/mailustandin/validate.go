package mailustandin

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MailU validates payloads against its flask-restx models with JSON Schema
// draft 4 before the token is even checked, and its handlers then validate
// addresses with python-validators. This file reproduces both closely
// enough that a client sees the same statuses and body shapes.

type kind int

const (
	kString kind = iota
	kInteger
	kBoolean
	kStringList
)

type field struct {
	kind kind
	min  *int64 // JSON Schema "minimum"
}

type schema struct {
	fields   map[string]field
	required []string
}

func minimum(n int64) *int64 { return &n }

// userFields are the writable fields of MailU's UserCreate/UserUpdate.
var userFields = map[string]field{
	"raw_password":         {kind: kString},
	"comment":              {kind: kString},
	"quota_bytes":          {kind: kInteger},
	"global_admin":         {kind: kBoolean},
	"enabled":              {kind: kBoolean},
	"change_pw_next_login": {kind: kBoolean},
	"enable_imap":          {kind: kBoolean},
	"enable_pop":           {kind: kBoolean},
	"allow_spoofing":       {kind: kBoolean},
	"forward_enabled":      {kind: kBoolean},
	"forward_destination":  {kind: kStringList},
	"forward_keep":         {kind: kBoolean},
	"reply_enabled":        {kind: kBoolean},
	"reply_subject":        {kind: kString},
	"reply_body":           {kind: kString},
	"reply_startdate":      {kind: kString},
	"reply_enddate":        {kind: kString},
	"displayed_name":       {kind: kString},
	"spam_enabled":         {kind: kBoolean},
	"spam_mark_as_read":    {kind: kBoolean},
	"spam_threshold":       {kind: kInteger},
}

var (
	userCreateSchema = schema{fields: withField(userFields, "email", field{kind: kString}), required: []string{"email", "raw_password"}}
	userUpdateSchema = schema{fields: userFields}
	domainSchema     = schema{fields: map[string]field{
		"name":            {kind: kString},
		"comment":         {kind: kString},
		"max_users":       {kind: kInteger, min: minimum(-1)},
		"max_aliases":     {kind: kInteger, min: minimum(-1)},
		"max_quota_bytes": {kind: kInteger, min: minimum(0)},
		"signup_enabled":  {kind: kBoolean},
		"alternatives":    {kind: kStringList},
	}, required: []string{"name"}}
)

func withField(m map[string]field, name string, f field) map[string]field {
	out := make(map[string]field, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	out[name] = f
	return out
}

// payload is a validated request body.
type payload map[string]json.RawMessage

func (p payload) has(k string) bool { _, ok := p[k]; return ok }

func (p payload) str(k string) string {
	var s string
	_ = json.Unmarshal(p[k], &s)
	return s
}

func (p payload) num(k string) int64 {
	n, _ := strconv.ParseInt(string(p[k]), 10, 64)
	return n
}

func (p payload) flag(k string) bool { return string(p[k]) == "true" }

func (p payload) list(k string) []string {
	var s []string
	_ = json.Unmarshal(p[k], &s)
	return s
}

// decodePayload reads and validates a JSON body the way flask-restx does.
// On failure it returns the status and body to answer with.
func decodePayload(r *http.Request, sc schema) (payload, int, any) {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/json" && !(strings.HasPrefix(mt, "application/") && strings.HasSuffix(mt, "+json")) {
		return nil, http.StatusUnsupportedMediaType, msg("Did not attempt to load JSON data because the request Content-Type was not 'application/json'.")
	}
	raw, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRequestBody))
	if err != nil {
		return nil, http.StatusRequestEntityTooLarge, msg("The data value transmitted exceeds the capacity limit.")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, http.StatusBadRequest, msg("Failed to decode JSON object: " + err.Error())
	}
	if dec.More() {
		return nil, http.StatusBadRequest, msg("Failed to decode JSON object: Extra data")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, http.StatusBadRequest, validationFailed(map[string]string{"": pyRepr(v) + " is not of type 'object'"})
	}
	errs := map[string]string{}
	for _, name := range sc.required {
		if _, ok := obj[name]; !ok {
			errs[name] = fmt.Sprintf("'%s' is a required property", name)
		}
	}
	p := payload{}
	for name, val := range obj {
		b, _ := json.Marshal(val)
		p[name] = b
		f, known := sc.fields[name]
		if !known {
			continue // flask-restx models allow extra properties
		}
		if why := checkKind(f, val); why != "" {
			errs[name] = why
		}
	}
	if len(errs) > 0 {
		return nil, http.StatusBadRequest, validationFailed(errs)
	}
	return p, 0, nil
}

func checkKind(f field, v any) string {
	switch f.kind {
	case kString:
		if _, ok := v.(string); !ok {
			return pyRepr(v) + " is not of type 'string'"
		}
	case kBoolean:
		if _, ok := v.(bool); !ok {
			return pyRepr(v) + " is not of type 'boolean'"
		}
	case kInteger:
		n, ok := v.(json.Number)
		if !ok || strings.ContainsAny(n.String(), ".eE") {
			return pyRepr(v) + " is not of type 'integer'"
		}
		i, err := n.Int64()
		if err != nil {
			return pyRepr(v) + " is too large"
		}
		if f.min != nil && i < *f.min {
			return fmt.Sprintf("%d is less than the minimum of %d", i, *f.min)
		}
	case kStringList:
		list, ok := v.([]any)
		if !ok {
			return pyRepr(v) + " is not of type 'array'"
		}
		for _, item := range list {
			if _, ok := item.(string); !ok {
				return pyRepr(item) + " is not of type 'string'"
			}
		}
	}
	return ""
}

// pyRepr renders a JSON value roughly as Python's repr, which is what
// jsonschema puts in its messages.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return "'" + x + "'"
	case json.Number:
		return x.String()
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

var (
	// Dot-atom local part, as python-validators accepts it.
	localPartRE = regexp.MustCompile("(?i)^[-a-z0-9!#$%&'*+/=?^_`{}|~]+(\\.[-a-z0-9!#$%&'*+/=?^_`{}|~]+)*$")
	// Hostname labels and an alphabetic (or punycode) TLD.
	domainRE = regexp.MustCompile(`(?i)^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+(?:[a-z]{2,63}|xn--[a-z0-9]{1,59})$`)
)

// validDomain approximates validators.domain: ASCII names only (MailU also
// accepts IDNs, which the stand-in does not need).
func validDomain(d string) bool { return len(d) <= 253 && domainRE.MatchString(d) }

// validEmail approximates validators.email.
func validEmail(e string) bool {
	at := strings.LastIndexByte(e, '@')
	if at <= 0 {
		return false
	}
	local, dom := e[:at], e[at+1:]
	return len(local) <= 64 && localPartRE.MatchString(local) && validDomain(dom)
}

// parseReplyDate accepts MailU's YYYY-MM-DD and returns it normalised, or
// "" when it is not a real date.
func parseReplyDate(s string) string {
	parts := strings.Split(s, "-")
	if len(parts) != 3 {
		return ""
	}
	var n [3]int
	for i, p := range parts {
		v, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return ""
		}
		n[i] = v
	}
	t := time.Date(n[0], time.Month(n[1]), n[2], 0, 0, 0, 0, time.UTC)
	if n[0] < 1 || n[0] > 9999 || t.Year() != n[0] || int(t.Month()) != n[1] || t.Day() != n[2] {
		return ""
	}
	return t.Format(time.DateOnly)
}
