package devenv

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"smtp-vault/scripts/devenv/mailustandin"
)

// TestRunbookCommandsWork runs the marked blocks of docs/runbook.md, in
// order, in one bash session (set -euo pipefail) against a test stack, as
// a newcomer rehearsing with `make run` would: take a backup, restore it
// into a fresh Vault, point the stack at the restored data, verify, then
// the master key rotation, the compromise response and the status index
// rebuild. Where the runbook has the reader stop or start `make run`, the
// marker says so (stop-stack, start-stack) and the test does it with the
// same folder. The only edits to the text: the fresh Vault's folder and
// ports, which the test makes free ones.
func TestRunbookCommandsWork(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	text, err := os.ReadFile(filepath.Join(root, "docs", "runbook.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := docBlocks(string(text))
	if len(blocks) == 0 {
		t.Fatal("docs/runbook.md marks no block with <!-- doc-test -->")
	}
	cache, err := CacheDir()
	if err != nil {
		t.Fatal(err)
	}

	// The stand-in MailU outlives a restart of the stack, as a tenant's
	// MailU outlives make run.
	dir := t.TempDir()
	mailu := StartTestMailU(t, mailustandin.Options{})
	start := func() *TestStack {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		ts, err := NewTestStack(ctx, dir, 1, func(o *StackOptions) {
			o.MailU = keepOpen{mailu}
			o.Notifier = nil
		})
		if err != nil {
			if ts != nil {
				ts.Close()
			}
			t.Fatal(err)
		}
		return ts
	}
	ts := start()
	defer func() { ts.Close() }()
	work := docWorkdir(t, root, ts, cache)
	tools := exec.Command("make", "-s", "tools")
	tools.Dir, tools.Env = work, readerEnv(cache)
	if out, err := tools.CombinedOutput(); err != nil {
		t.Fatalf("make tools: %v\n%s", err, out)
	}

	fresh := t.TempDir()
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	cluster, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	edits := strings.NewReplacer("/tmp/vault-new", fresh, "127.0.0.1:8300", addr, "127.0.0.1:8301", cluster)

	sh := startShell(t, work, readerEnv(cache))
	for i, b := range blocks {
		if slices.Contains(b.words, "stop-stack") {
			ts.Close()
		}
		out, err := sh.run(edits.Replace(b.script), 10*time.Minute)
		if err != nil {
			t.Fatalf("docs/runbook.md block at line %d: %v\n%s", b.line, err, out)
		}
		for _, want := range b.expect {
			if !strings.Contains(out, want) {
				t.Errorf("docs/runbook.md block at line %d: output lacks %q:\n%s", b.line, want, out)
			}
		}
		if slices.Contains(b.words, "start-stack") {
			ts = start()
			writeEnvFiles(t, ts)
		}
		t.Logf("block %d (line %d) done", i, b.line)
	}
}

// keepOpen is a MailU host that a stack's Close leaves running.
type keepOpen struct{ MailUHost }

func (keepOpen) Close() error { return nil }

// shell is one bash session fed block after block, as a reader pastes
// them into one terminal.
type shell struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *SyncBuffer
	done  chan struct{}
	n     int
}

func startShell(t *testing.T, dir string, env []string) *shell {
	t.Helper()
	cmd := exec.Command("bash")
	cmd.Dir, cmd.Env = dir, env
	// Its own process group, so what a block leaves in the background
	// (the fresh Vault) is stopped with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &SyncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &shell{cmd: cmd, stdin: stdin, out: out, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() {
		stdin.Close()
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-s.done
	})
	if _, err := io.WriteString(stdin, "set -euo pipefail\n"); err != nil {
		t.Fatal(err)
	}
	return s
}

// run pastes script and returns what it printed; an error when the
// shell exited (a command failed) or the block outlasted timeout.
func (s *shell) run(script string, timeout time.Duration) (string, error) {
	s.n++
	from := len(s.out.String())
	end := fmt.Sprintf("=== end of block %d ===", s.n)
	if _, err := io.WriteString(s.stdin, script+"\necho '"+end+"'\n"); err != nil {
		return s.out.String()[from:], fmt.Errorf("the shell is gone: %w", err)
	}
	deadline := time.After(timeout)
	for {
		if got := s.out.String()[from:]; strings.Contains(got, end) {
			return got[:strings.Index(got, end)], nil
		}
		select {
		case <-s.done:
			return s.out.String()[from:], fmt.Errorf("the shell exited: %v", s.cmd.ProcessState)
		case <-deadline:
			return s.out.String()[from:], fmt.Errorf("no end after %v", timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
