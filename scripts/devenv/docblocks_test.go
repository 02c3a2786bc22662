package devenv

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// docMarker precedes a shell block of the README or docs/ that is meant
// to be pasted against a running stack: <!-- doc-test: "text", "other text" -->.
// The quoted texts must appear in what the block prints; bare words are
// steps the test takes for the reader around the block (runbook_test.go:
// stop-stack before it, start-stack after it).
var docMarker = regexp.MustCompile(`^<!--\s*doc-test(?::(.*?))?\s*-->$`)

var quoted = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)

// docBlock is one marked block of a document.
type docBlock struct {
	line   int // of the opening fence
	script string
	expect []string
	words  []string
}

// docBlocks finds the marked ```sh blocks of a Markdown text.
func docBlocks(text string) []docBlock {
	lines := strings.Split(text, "\n")
	var out []docBlock
	for i := 0; i < len(lines); i++ {
		m := docMarker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil || i+1 >= len(lines) || !strings.HasPrefix(strings.TrimLeft(lines[i+1], " "), "```sh") {
			continue
		}
		// A block in a list item is indented; its lines lose that indent.
		indent := strings.Repeat(" ", len(lines[i+1])-len(strings.TrimLeft(lines[i+1], " ")))
		b := docBlock{line: i + 2}
		for _, q := range quoted.FindAllStringSubmatch(m[1], -1) {
			b.expect = append(b.expect, strings.ReplaceAll(q[1], `\"`, `"`))
		}
		b.words = strings.FieldsFunc(quoted.ReplaceAllString(m[1], ""), func(r rune) bool { return r == ',' || r == ' ' })
		var body []string
		for i += 2; i < len(lines) && !strings.HasPrefix(strings.TrimLeft(lines[i], " "), "```"); i++ {
			body = append(body, strings.TrimPrefix(lines[i], indent))
		}
		b.script = strings.Join(body, "\n")
		out = append(out, b)
	}
	return out
}

func TestDocBlocksParse(t *testing.T) {
	text := "intro\n<!-- doc-test: \"ok\", \"say \\\"hi\\\"\" -->\n```sh\necho ok\necho 'say \"hi\"'\n```\n```sh\nnot marked\n```\n<!-- doc-test -->\n```sh\ntrue\n```\n<!-- doc-test: stop-stack \"a, b\" start-stack -->\n  ```sh\n  false\n    x\n  ```\n"
	got := docBlocks(text)
	if len(got) != 3 || got[0].script != "echo ok\necho 'say \"hi\"'" || len(got[0].expect) != 2 || got[0].expect[1] != `say "hi"` || len(got[0].words) != 0 ||
		got[1].script != "true" || got[1].line != 11 ||
		strings.Join(got[2].words, "|") != "stop-stack|start-stack" || got[2].script != "false\n  x" || strings.Join(got[2].expect, "|") != "a, b" {
		t.Errorf("docBlocks = %+v", got)
	}
}

// docSession is the documents whose marked blocks run, in this order, in
// one shell session: the README's example, then what docs/local.md does
// with its variables, then onboarding a member of staff (docs/access.md).
// docs/runbook.md has its own session (runbook_test.go).
var docSession = []string{"README.md", "docs/local.md", "docs/access.md"}

// TestDocCommandsWork pastes the marked blocks of docSession, in order,
// into one bash session (with set -euo pipefail, so a failing command
// fails the test) in a copy of the repository whose .local is a test
// stack's folder (with its dev.env) and whose .cache is the build cache,
// as a reader would after `make run`.
func TestDocCommandsWork(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	type located struct {
		docBlock
		doc string
	}
	var blocks []located
	for _, doc := range docSession {
		text, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		found := docBlocks(string(text))
		if len(found) == 0 {
			t.Fatalf("%s marks no block with <!-- doc-test -->", doc)
		}
		for _, b := range found {
			blocks = append(blocks, located{b, doc})
		}
	}
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}

	ts := startDocStack(t)
	// docs/local.md's table names every key dev.env holds.
	localDoc, err := os.ReadFile(filepath.Join(root, "docs/local.md"))
	if err != nil {
		t.Fatal(err)
	}
	for k := range ts.DevEnv() {
		if !strings.Contains(string(localDoc), "`"+k+"`") {
			t.Errorf("docs/local.md does not name the dev.env key %s", k)
		}
	}
	work := docWorkdir(t, root, ts, cache)
	var script strings.Builder
	script.WriteString("set -euo pipefail\n")
	for i, b := range blocks {
		script.WriteString("echo '=== doc block " + strconv.Itoa(i) + " ==='\n" + b.script + "\n")
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = readerEnv(cache)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the documents' blocks exited with %v", err)
	}
	sections := strings.Split(string(out), "=== doc block ")
	for i, b := range blocks {
		var got string
		if i+1 < len(sections) {
			got = sections[i+1]
		}
		for _, want := range b.expect {
			if !strings.Contains(got, want) {
				t.Errorf("%s block at line %d: output lacks %q:\n%s", b.doc, b.line, want, got)
			}
		}
	}
	if t.Failed() {
		t.Logf("whole output:\n%s", out)
	}
}

// startDocStack is a test stack whose notifications go to its
// NOTIFICATIONS_FILE, as make run's do, for the documents to show.
func startDocStack(t testing.TB) *TestStack {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ts, err := NewTestStack(ctx, t.TempDir(), 1, func(o *StackOptions) { o.Notifier = nil })
	if ts != nil {
		t.Cleanup(ts.Close)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// docWorkdir is a copy of the repository (links to its files) whose .local
// is the test stack's folder, with the dev.env and functions.env `make run`
// writes, and whose .cache is the build cache.
func docWorkdir(t testing.TB, root string, ts *TestStack, cache string) string {
	t.Helper()
	writeEnvFiles(t, ts)
	work := t.TempDir()
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		switch e.Name() {
		case ".local", ".cache", ".git":
			continue
		}
		if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(work, e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	for link, target := range map[string]string{".local": ts.Dir, ".cache": cache} {
		if err := os.Symlink(target, filepath.Join(work, link)); err != nil {
			t.Fatal(err)
		}
	}
	return work
}

// writeEnvFiles writes the files `make run` writes into .local.
func writeEnvFiles(t testing.TB, ts *TestStack) {
	t.Helper()
	if err := ts.WriteDevEnv(filepath.Join(ts.Dir, "dev.env")); err != nil {
		t.Fatal(err)
	}
	if err := ts.WriteFunctionsEnv(filepath.Join(ts.Dir, "functions.env")); err != nil {
		t.Fatal(err)
	}
}

// readerEnv is a reader's shell environment: theirs, minus what a
// running `make` or a test would add, and minus the operator's own AWS
// configuration, which the documents' local commands do not use.
func readerEnv(cache string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "SMTP_VAULT_LOCAL", k == "MAKEFLAGS", k == "MFLAGS", k == "MAKELEVEL",
			strings.HasPrefix(k, "AWS_"), strings.HasPrefix(k, "VAULT_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env,
		"SMTP_VAULT_CACHE="+cache,
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
	)
}
