// Package archtest holds the architecture test: the rules of which package
// may import which, checked against the real import graph.
package archtest

import (
	"bytes"
	"encoding/json"
	"io"
	"os/exec"
	"strings"
	"testing"
)

const module = "smtp-vault/"

// pkg is what `go list -json` says of one package.
type pkg struct {
	ImportPath string
	Imports    []string // direct, non-test
	Deps       []string // transitive, non-test
}

// rule forbids packages matching from to import packages matching to.
// Direct rules look at direct imports, so that a handler may still reach
// Vault through the domain; transitive ones at every dependency.
type rule struct {
	from, to   []string // path prefixes; "std" in to means "anything but the standard library"
	transitive bool
	why        string
}

var (
	adapters = []string{"shared/vault", "shared/mailu", "shared/audit", "shared/alert", "shared/notify", "shared/queue", "shared/crypto", "shared/tracing"}
	awsSDK   = []string{"github.com/aws/aws-sdk-go-v2", "github.com/aws/smithy-go"}
)

var rules = []rule{
	{from: []string{"shared/api"}, to: append([]string{"shared/vault", "shared/mailu"}, awsSDK...),
		why: "handlers translate events into one domain call; Vault, MailU and AWS are reached only through the domain"},
	{from: []string{"shared/credential"}, to: []string{"shared/api", "shared/app", "github.com/aws/aws-lambda-go", "github.com/aws/aws-sdk-go-v2/service"},
		why: "the domain knows nothing of Lambda or HTTP, and reaches SQS, SNS and S3 through its ports"},
	{from: adapters, to: []string{"shared/credential", "shared/api", "shared/app"},
		why: "adapters serve the domain through ports it declares; they never import it"},
	{from: []string{"shared/crypto"}, to: []string{"std"},
		why: "the encryption package is small enough to audit in one sitting: standard library only"},
	{from: []string{"shared/", "functions/"}, to: []string{"scripts/"}, transitive: true,
		why: "shared/ is exactly what ships in the Lambdas; stand-ins and local tools live in scripts/"},
}

func TestImportRules(t *testing.T) {
	pkgs := list(t)
	if len(pkgs) < 10 {
		t.Fatalf("go list found %d packages; the test would prove nothing", len(pkgs))
	}
	checked := map[int]int{}
	for _, p := range pkgs {
		rel := strings.TrimPrefix(p.ImportPath, module)
		for i, r := range rules {
			if !matches(rel, r.from) {
				continue
			}
			checked[i]++
			imports := p.Imports
			if r.transitive {
				imports = p.Deps
			}
			for _, imp := range imports {
				if forbidden(imp, r.to) {
					t.Errorf("%s imports %s: %s", rel, imp, r.why)
				}
			}
		}
	}
	for i, r := range rules {
		if checked[i] == 0 {
			t.Errorf("rule %q matched no package: the table is stale", r.why)
		}
	}
}

// TestRulesCatchViolations runs the matcher on known-bad edges, so a
// broken matcher cannot pass the real graph by accident.
func TestRulesCatchViolations(t *testing.T) {
	bad := []struct{ from, imp string }{
		{"shared/api", "smtp-vault/shared/vault"},
		{"shared/api", "github.com/aws/aws-sdk-go-v2/service/s3"},
		{"shared/credential", "github.com/aws/aws-lambda-go/events"},
		{"shared/credential", "github.com/aws/aws-sdk-go-v2/service/sqs"},
		{"shared/mailu", "smtp-vault/shared/credential"},
		{"shared/crypto", "golang.org/x/crypto/hkdf"},
		{"shared/app", "smtp-vault/scripts/devenv/mailustandin"},
	}
	for _, b := range bad {
		caught := false
		for _, r := range rules {
			if matches(b.from, r.from) && forbidden(b.imp, r.to) {
				caught = true
			}
		}
		if !caught {
			t.Errorf("%s importing %s is not caught", b.from, b.imp)
		}
	}
}

func matches(rel string, prefixes []string) bool {
	for _, p := range prefixes {
		if rel == strings.TrimSuffix(p, "/") || strings.HasPrefix(rel, strings.TrimSuffix(p, "/")+"/") {
			return true
		}
	}
	return false
}

func forbidden(imp string, to []string) bool {
	for _, p := range to {
		if p == "std" {
			if first, _, _ := strings.Cut(imp, "/"); strings.Contains(first, ".") || strings.HasPrefix(imp, module) {
				return true
			}
			continue
		}
		if strings.HasPrefix(p, "github.com/") || strings.HasPrefix(p, "golang.org/") {
			if imp == p || strings.HasPrefix(imp, p+"/") {
				return true
			}
			continue
		}
		if matches(strings.TrimPrefix(imp, module), []string{p}) && strings.HasPrefix(imp, module) {
			return true
		}
	}
	return false
}

func list(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-json", "smtp-vault/...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, p)
	}
	return pkgs
}
