package mailustandin

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s1 := newTestServer(t, Options{StatePath: path})
	a := addInstance(t, s1, "a.test")
	b := addInstance(t, s1, "b.test")
	createUser(t, a, "admin@a.test", "first-secret")
	setPassword(t, a, "admin@a.test", "second-secret")
	createUser(t, b, "admin@b.test", "b-secret")
	if r := call(t, a, "POST", "/domain", bearer(testToken), `{"name":"extra.test"}`); r.status != 200 {
		t.Fatalf("create domain: %d", r.status)
	}
	createUser(t, a, "x@extra.test", "x-secret")
	a.SetFaults(Faults{RejectSMTP: true}) // faults are not state
	apiA, smtpA, apiB := a.APIURL(), a.SMTPAddr(), b.APIURL()
	s1.Close()

	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"first-secret", "second-secret", "b-secret", "x-secret"} {
		if strings.Contains(string(raw), secret) {
			t.Fatalf("state file holds the plaintext %q", secret)
		}
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600 (it holds API tokens)", fi.Mode().Perm())
	}

	s2 := newTestServer(t, Options{StatePath: path})
	if err := s2.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	a2, ok := s2.Instance("a.test")
	if !ok {
		t.Fatal("a.test not restored")
	}
	if a2.APIURL() != apiA || a2.SMTPAddr() != smtpA {
		t.Fatalf("a.test moved: %s %s, was %s %s", a2.APIURL(), a2.SMTPAddr(), apiA, smtpA)
	}
	if b2, _ := s2.Instance("b.test"); b2 == nil || b2.APIURL() != apiB {
		t.Fatal("b.test not restored on its port")
	}
	if a2.Faults() != (Faults{}) {
		t.Errorf("faults restored: %+v", a2.Faults())
	}
	if err := smtpLogin(a2.SMTPAddr(), "admin@a.test", "second-secret"); err != nil {
		t.Fatalf("current password after restart: %v", err)
	}
	if err := smtpLogin(a2.SMTPAddr(), "admin@a.test", "first-secret"); smtpCode(err) != 535 {
		t.Fatalf("old password after restart: %v", err)
	}
	if err := smtpLogin(a2.SMTPAddr(), "x@extra.test", "x-secret"); err != nil {
		t.Fatalf("user of the added domain: %v", err)
	}
	if r := call(t, a2, "GET", "/user/admin@a.test", bearer(testToken), ""); r.status != 200 {
		t.Fatalf("token after restart: %d", r.status)
	}
	// Same domain and token again: the restored instance, not a new one.
	again, err := s2.AddInstance(context.Background(), InstanceConfig{Domain: "a.test", APIToken: testToken})
	if err != nil || again != a2 {
		t.Fatalf("AddInstance after restore: %v %v", again, err)
	}

	// Losing an instance removes it from the state too.
	if err := a2.Close(); err != nil {
		t.Fatal(err)
	}
	s2.Close()
	s3 := newTestServer(t, Options{StatePath: path})
	if err := s3.Restore(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, ok := s3.Instance("a.test"); ok {
		t.Fatal("closed instance came back")
	}
	if _, ok := s3.Instance("b.test"); !ok {
		t.Fatal("b.test lost")
	}
}

func TestStateConcurrentWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	s := newTestServer(t, Options{StatePath: path})
	in := addInstance(t, s, "acme.test")
	var wg sync.WaitGroup
	for n := range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			createUser(t, in, fmt.Sprintf("u%d@acme.test", n), "pw")
		}()
	}
	wg.Wait()
	var st stateFile
	raw, _ := os.ReadFile(path)
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	if got := len(st.Instances[0].Users); got != 30 {
		t.Fatalf("state has %d users, want 30", got)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*.tmp")); len(leftovers) > 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
}

func TestRestoreMissingAndBroken(t *testing.T) {
	dir := t.TempDir()
	s := newTestServer(t, Options{StatePath: filepath.Join(dir, "none.json")})
	if err := s.Restore(context.Background()); err != nil {
		t.Fatalf("missing file: %v", err)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte("{"), 0o600)
	if err := newTestServer(t, Options{StatePath: bad}).Restore(context.Background()); err == nil {
		t.Fatal("broken file accepted")
	}
}

func TestAddInstanceChecks(t *testing.T) {
	s := newTestServer(t, Options{})
	ctx := context.Background()
	addInstance(t, s, "acme.test")
	for _, c := range []InstanceConfig{
		{Domain: "not a domain", APIToken: testToken},
		{Domain: "x.test", APIToken: testToken, HTTPAddr: "0.0.0.0:0"},
		{Domain: "ACME.test", APIToken: "another-token"},
	} {
		if _, err := s.AddInstance(ctx, c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
