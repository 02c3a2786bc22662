package devenv

import (
	"fmt"
	"io"
	"os/exec"
	"syscall"
	"time"
)

// process is a server this package started as a child process.
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// startProcess starts bin with args, its output to out. The child dies
// with the process that started it, even on a crash, and gets its own
// process group so that stop can kill what it spawned.
func startProcess(out io.Writer, bin string, env []string, args ...string) (*process, error) {
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("devenv: start %s: %w", bin, err)
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	return p, nil
}

// stop asks the process to exit (SIGTERM), kills its group after grace,
// and waits for it.
func (p *process) stop(grace time.Duration) {
	if p == nil {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}
