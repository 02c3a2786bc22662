package pathseg_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"smtp-vault/shared/pathseg"
	"smtp-vault/shared/pathseg/pathsegtest"
)

var allKinds = []pathseg.Kind{pathseg.TenantID, pathseg.IncidentID, pathseg.ResponseID, pathseg.StaffName, pathseg.BackupName}

func TestCheck(t *testing.T) {
	for _, k := range allKinds {
		if err := pathseg.Check(k, pathsegtest.Good(k)); err != nil {
			t.Errorf("kind %d: %q refused: %v", k, pathsegtest.Good(k), err)
		}
		for _, v := range pathsegtest.Bad(k) {
			err := pathseg.Check(k, v)
			if !errors.Is(err, pathseg.ErrInvalid) {
				t.Errorf("kind %d: %q accepted (%v)", k, v, err)
			}
		}
	}
	for _, ok := range []struct {
		k pathseg.Kind
		v string
	}{
		{pathseg.IncidentID, "sec:1234"}, {pathseg.IncidentID, "INC-T1"}, {pathseg.IncidentID, "a.b_c"},
		{pathseg.StaffName, "google|1234"}, {pathseg.StaffName, "a"},
	} {
		if err := pathseg.Check(ok.k, ok.v); err != nil {
			t.Errorf("%q refused: %v", ok.v, err)
		}
	}
	if err := pathseg.Check(pathseg.Kind(99), "x"); err == nil {
		t.Error("an unknown kind was accepted")
	}
}

// TestErrorNamesNoValue: a refusal says what is wrong without echoing the
// value, which may be anything a caller sent.
func TestErrorNamesNoValue(t *testing.T) {
	err := pathseg.Check(pathseg.TenantID, "../../../secret-value")
	if err == nil || err.Error() != "tenant_id must be a lowercase UUID version 4" {
		t.Fatalf("got %v", err)
	}
}

func TestMust(t *testing.T) {
	pathsegtest.Refuses(t, "Must", pathseg.TenantID, func(v string) string { return pathseg.Must(pathseg.TenantID, v) })
}

var uuidV4Pattern = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)

// TestUUIDMatchesItsPattern: the hand-written UUID check accepts exactly
// what its regular expression accepts, on every one-byte change of a
// good id and on every byte at every position.
func TestUUIDMatchesItsPattern(t *testing.T) {
	good := "3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c"
	check := func(v string) {
		if got, want := pathseg.Check(pathseg.TenantID, v) == nil, uuidV4Pattern.MatchString(v); got != want {
			t.Errorf("%q: check %v, pattern %v", v, got, want)
		}
	}
	check(good)
	check("")
	check(good[:35])
	check(good + "0")
	check(strings.ToUpper(good))
	for i := range len(good) {
		for c := 0; c < 256; c++ {
			check(good[:i] + string([]byte{byte(c)}) + good[i+1:])
		}
	}
}

func FuzzUUIDMatchesItsPattern(f *testing.F) {
	f.Add("3f1c2a9e-5b7d-4c1e-9a2b-6d8e0f1a2b3c")
	f.Add("3f1c2a9e-5b7d-4c1e-ca2b-6d8e0f1a2b3c")
	f.Fuzz(func(t *testing.T, v string) {
		if got, want := pathseg.Check(pathseg.TenantID, v) == nil, uuidV4Pattern.MatchString(v); got != want {
			t.Errorf("%q: check %v, pattern %v", v, got, want)
		}
	})
}
