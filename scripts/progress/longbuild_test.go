package progress

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestLongBuildScript: scripts/long-build.sh, which `make vault` and
// `make versitygw` run their builds under, reports while the command runs
// and shows the command's output only when it fails.
func TestLongBuildScript(t *testing.T) {
	run := func(script string) (string, error) {
		cmd := exec.Command("../long-build.sh", "demo build", "bash", "-c", script)
		cmd.Env = append(os.Environ(), "PROGRESS_EVERY=1")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := run("echo example/pkg >&2; sleep 2.5")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// The command line, at least one line while it runs, the last one.
	if len(lines) < 3 || !strings.HasPrefix(lines[1], "demo build: 0m0") || !strings.HasSuffix(lines[len(lines)-1], "1 packages compiled, last: example/pkg") {
		t.Errorf("output:\n%s", out)
	}
	out, err = run("echo the compiler said no >&2; exit 3")
	if err == nil || !strings.Contains(out, "demo build: FAILED") || !strings.Contains(out, "the compiler said no") {
		t.Errorf("a failing build: err %v, output:\n%s", err, out)
	}
}
