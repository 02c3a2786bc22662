package main

import (
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// invocationDeadline is the deadline handed to the function with its
// event, the functions' Timeout in template.yaml.
const invocationDeadline = 29 * time.Second

// coldStart execs bin once against a fresh Runtime API and waits, at most
// timeout, for it to answer its first invocation. An error response is an
// answer; an init error, an exit or silence is not.
func coldStart(bin, fn string, event []byte, env []string, timeout time.Duration) (answer, error) {
	rt := newRuntimeAPI(fn, event, invocationDeadline)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return answer{}, fmt.Errorf("listen for the runtime API: %w", err)
	}
	srv := &http.Server{Handler: rt.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	defer rt.release()

	out := &tailBuffer{max: 2048}
	cmd := exec.Command(bin)
	cmd.Dir = filepath.Dir(bin)
	cmd.Env = append(env[:len(env):len(env)], "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	cmd.Stdout, cmd.Stderr = out, out

	rt.begin()
	if err := cmd.Start(); err != nil {
		return answer{}, fmt.Errorf("start: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	timer := time.NewTimer(timeout)
	defer timer.Stop()

	var a answer
	select {
	case a = <-rt.done:
	case err := <-exited:
		return answer{}, fmt.Errorf("exited before answering an invocation (%v)%s", err, out.excerpt())
	case <-timer.C:
		_ = cmd.Process.Kill()
		<-exited
		return answer{}, fmt.Errorf("no answer within %s%s", timeout, out.excerpt())
	}
	_ = cmd.Process.Kill()
	<-exited
	if a.kind == "init error" {
		return a, fmt.Errorf("%s%s", a.describe(), out.excerpt())
	}
	return a, nil
}

// tailBuffer keeps the last max bytes written to it: the function's output,
// shown only when it fails.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf.Write(p)
	if over := b.buf.Len() - b.max; over > 0 {
		b.buf.Next(over)
	}
	return len(p), nil
}

// excerpt is the kept output, indented, for an error message.
func (b *tailBuffer) excerpt() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := strings.TrimSpace(b.buf.String())
	if s == "" {
		return ""
	}
	return "\n    output: " + strings.ReplaceAll(s, "\n", "\n    ")
}
