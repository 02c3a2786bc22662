// Package pathseg is the one check for every value that becomes part of a
// Vault or S3 path: tenant ids, incident ids, compromise response ids,
// backup names and staff names. Entries (routes, invocations, queue
// messages, operator commands) call Check before anything else; the path
// constructors call Must, so a value that skipped its entry check never
// reaches Vault or S3.
package pathseg

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrInvalid is what every refusal of Check matches (errors.Is).
var ErrInvalid = errors.New("not a valid path segment")

// Error is a refusal: its text names the field and the rule ("tenant_id
// must be a lowercase UUID version 4"), never the value.
type Error struct {
	Field, Rule string
}

func (e *Error) Error() string { return e.Field + " must be " + e.Rule }

// Is makes every Error match ErrInvalid.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

// Kind is a kind of value that becomes part of a path.
type Kind int

// The kinds. None admits '/', "..", an empty value or more than 128
// bytes.
const (
	// TenantID: a lowercase UUID version 4 (SPEC section 2).
	TenantID Kind = iota
	// IncidentID: 3 to 64 letters, digits and . _ : -, starting with a
	// letter or digit (INC-2026-0042, sec:1234).
	IncidentID
	// ResponseID: a compromise response's id, a lowercase UUID version 4.
	ResponseID
	// StaffName: a Vault userpass name, already lower-cased (Vault
	// lower-cases them): letters, digits and . _ @ + | -, starting with a
	// letter or digit, at most 128 bytes.
	StaffName
	// BackupName: the S3 key of a backup's data object,
	// vault-backups/YYYY/MM/DD/YYYYMMDDTHHMMSS.nnnnnnnnnZ.snap.enc. It is
	// a whole key, not one segment, and its shape is fixed.
	BackupName
)

var kinds = map[Kind]struct {
	field   string
	pattern interface{ MatchString(string) bool }
	rule    string
}{
	TenantID:   {"tenant_id", uuidV4, "a lowercase UUID version 4"},
	IncidentID: {"incident_id", regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{2,63}$`), "3 to 64 letters, digits, '.', '_', ':' or '-', starting with a letter or digit"},
	ResponseID: {"response_id", uuidV4, "a lowercase UUID version 4"},
	StaffName:  {"staff name", regexp.MustCompile(`^[a-z0-9][a-z0-9._@+|-]{0,127}$`), "lowercase letters, digits and . _ @ + | -, starting with a letter or digit, at most 128"},
	BackupName: {"backup", regexp.MustCompile(`^vault-backups/[0-9]{4}/[0-9]{2}/[0-9]{2}/[0-9]{8}T[0-9]{6}\.[0-9]{9}Z\.snap\.enc$`), "the name of a backup as listed (vault-backups/YYYY/MM/DD/<time>.snap.enc)"},
}

// uuidV4 matches what
// ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$
// matches (TestUUIDMatchesItsPattern), without a regular expression: the
// status index checks every tenant id it decodes, and at 100,000 tenants
// the regular expression was half of the overview's decoding time.
var uuidV4 uuidMatcher

type uuidMatcher struct{}

func (uuidMatcher) MatchString(v string) bool {
	if len(v) != 36 || v[14] != '4' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case i == 19:
			if c != '8' && c != '9' && c != 'a' && c != 'b' {
				return false
			}
		case ('0' <= c && c <= '9') || ('a' <= c && c <= 'f'):
		default:
			return false
		}
	}
	return true
}

// Check refuses v unless it is a well-formed value of kind k.
func Check(k Kind, v string) error {
	spec, ok := kinds[k]
	if !ok {
		return &Error{Field: fmt.Sprintf("a value of kind %d", k), Rule: "of a known kind"}
	}
	// The patterns start with a letter or digit, so no value is "." or
	// ".."; a ".." inside one (a..b) could still mean something to a
	// path cleaner, so it is refused as well.
	if !spec.pattern.MatchString(v) || containsDotDot(v) {
		return &Error{Field: spec.field, Rule: spec.rule}
	}
	return nil
}

// Must returns v, or panics if Check refuses it: path constructors use it
// so that a value that skipped its entry's Check is a crash in tests, not
// a path in Vault or S3.
func Must(k Kind, v string) string {
	if err := Check(k, v); err != nil {
		panic(fmt.Sprintf("pathseg: a path was built from an unchecked value: %v", err))
	}
	return v
}

func containsDotDot(v string) bool {
	for i := 0; i+1 < len(v); i++ {
		if v[i] == '.' && v[i+1] == '.' {
			return true
		}
	}
	return false
}
