// Package pathsegtest checks path constructors against pathseg: every
// package that builds a Vault or S3 path runs its constructors through
// Refuses in a table test.
package pathsegtest

import (
	"fmt"
	"strings"
	"testing"

	"smtp-vault/shared/pathseg"
)

// Good returns a valid value of kind k.
func Good(k pathseg.Kind) string {
	switch k {
	case pathseg.TenantID:
		return "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c"
	case pathseg.ResponseID:
		return "0b9e7c52-1d2a-4f3b-8c4d-5e6f7a8b9c0d"
	case pathseg.IncidentID:
		return "INC-2026-0042"
	case pathseg.StaffName:
		return "alice@example.com"
	case pathseg.BackupName:
		return "vault-backups/2026/12/04/20261204T020000.000000000Z.snap.enc"
	}
	panic(fmt.Sprintf("pathsegtest: unknown kind %d", k))
}

// Bad returns values that no constructor of kind k may accept: empty,
// "..", "/", traversal, overlong, control characters and, where the kind
// is lowercase, upper case.
func Bad(k pathseg.Kind) []string {
	good := Good(k)
	bad := []string{"", ".", "..", "/", "a/b", "../../" + good, good + "/..", good + "/x", "x/" + good,
		strings.Repeat("a", 129), good + "\x00", good + "\n", " " + good, "a..b", good + "%2f..", "\u00e9" + good}
	switch k {
	case pathseg.TenantID, pathseg.ResponseID, pathseg.StaffName:
		bad = append(bad, strings.ToUpper(good))
	case pathseg.IncidentID:
		bad = append(bad, strings.Repeat("A", 65), "ab", "-INC-1", "INC/1")
	case pathseg.BackupName:
		bad = append(bad, "latest", strings.Replace(good, "vault-backups/", "vault-backups/../", 1), strings.TrimSuffix(good, ".snap.enc")+".manifest.json")
	}
	if k == pathseg.TenantID || k == pathseg.ResponseID {
		bad = append(bad, "3f1c2a9e-5b7d-1c1e-9a2b-6d8e0f1a2b3c") // not version 4
	}
	return bad
}

// Refuses checks that build accepts Good(k) and panics on every Bad(k):
// the constructor called pathseg.Must on the value.
func Refuses(t testing.TB, name string, k pathseg.Kind, build func(string) string) {
	t.Helper()
	if p := build(Good(k)); !strings.Contains(p, Good(k)) {
		t.Errorf("%s(%q) = %q: the path does not hold the value", name, Good(k), p)
	}
	for _, v := range Bad(k) {
		if p, ok := panics(func() string { return build(v) }); !ok {
			t.Errorf("%s(%q) built %q: a path from an unchecked value", name, v, p)
		}
	}
}

func panics(f func() string) (p string, panicked bool) {
	defer func() {
		if recover() != nil {
			panicked = true
		}
	}()
	return f(), false
}
