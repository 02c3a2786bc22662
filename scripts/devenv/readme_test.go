package devenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// readmeMarker precedes a README shell block that is meant to be pasted
// against a running stack: <!-- readme-test: "text", "other text" -->.
// The quoted texts must appear in what the block prints.
var readmeMarker = regexp.MustCompile(`^<!--\s*readme-test(?::(.*?))?\s*-->$`)

var quoted = regexp.MustCompile(`"((?:[^"\\]|\\.)*)"`)

// readmeBlock is one marked block of the README.
type readmeBlock struct {
	line   int // of the opening fence
	script string
	expect []string
}

// readmeBlocks finds the marked ```sh blocks of a Markdown text.
func readmeBlocks(text string) []readmeBlock {
	lines := strings.Split(text, "\n")
	var out []readmeBlock
	for i := 0; i < len(lines); i++ {
		m := readmeMarker.FindStringSubmatch(strings.TrimSpace(lines[i]))
		if m == nil || i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```sh") {
			continue
		}
		b := readmeBlock{line: i + 2}
		for _, q := range quoted.FindAllStringSubmatch(m[1], -1) {
			b.expect = append(b.expect, strings.ReplaceAll(q[1], `\"`, `"`))
		}
		var body []string
		for i += 2; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			body = append(body, lines[i])
		}
		b.script = strings.Join(body, "\n")
		out = append(out, b)
	}
	return out
}

func TestReadmeBlocksParse(t *testing.T) {
	text := "intro\n<!-- readme-test: \"ok\", \"say \\\"hi\\\"\" -->\n```sh\necho ok\necho 'say \"hi\"'\n```\n```sh\nnot marked\n```\n<!-- readme-test -->\n```sh\ntrue\n```\n"
	got := readmeBlocks(text)
	if len(got) != 2 || got[0].script != "echo ok\necho 'say \"hi\"'" || len(got[0].expect) != 2 || got[0].expect[1] != `say "hi"` || got[1].script != "true" || got[1].line != 11 {
		t.Errorf("readmeBlocks = %+v", got)
	}
}

// TestReadmeCommandsWork pastes the README's marked blocks, in order, into
// one bash session in a copy of the repository whose .local is a test
// stack's folder (with its dev.env) and whose .cache is the build cache,
// as a reader would after `make run`.
func TestReadmeCommandsWork(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(string(readme))
	if len(blocks) == 0 {
		t.Fatal("README.md marks no block with <!-- readme-test -->")
	}
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}

	ts := StartTestStack(t, 1)
	if err := ts.WriteDevEnv(filepath.Join(ts.Dir, "dev.env")); err != nil {
		t.Fatal(err)
	}
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

	var script strings.Builder
	for i, b := range blocks {
		script.WriteString("echo '=== readme block " + strconv.Itoa(i) + " ==='\n" + b.script + "\n")
	}
	cmd := exec.Command("bash", "-c", script.String())
	cmd.Dir = work
	cmd.Env = readmeEnv(cache)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("the README's blocks exited with %v", err)
	}
	sections := strings.Split(string(out), "=== readme block ")
	for i, b := range blocks {
		var got string
		if i+1 < len(sections) {
			got = sections[i+1]
		}
		for _, want := range b.expect {
			if !strings.Contains(got, want) {
				t.Errorf("README.md block at line %d: output lacks %q:\n%s", b.line, want, got)
			}
		}
	}
	if t.Failed() {
		t.Logf("whole output:\n%s", out)
	}
}

// readmeEnv is a reader's shell environment: theirs, minus what a
// running `make` or a test would add, and minus the operator's own AWS
// configuration, which the README's commands do not use.
func readmeEnv(cache string) []string {
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
