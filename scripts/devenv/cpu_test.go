package devenv

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// A grandchild's CPU time is counted under the child it descends from,
// and String lists it.
func TestSampleCPUGroupsByChild(t *testing.T) {
	// The outer shell waits for the inner one, which spins.
	cmd := exec.Command("sh", "-c", `sh -c 'while :; do :; done'; exit 0`)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = exec.Command("pkill", "-KILL", "-P", strconv.Itoa(cmd.Process.Pid)).Run()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	before := SampleCPU()
	deadline := time.Now().Add(20 * time.Second)
	for {
		used := SampleCPU().Since(before)
		if used["sh"] >= 50*time.Millisecond {
			if !strings.Contains(used.String(), "sh ") {
				t.Errorf("String() = %q, want the shell named", used.String())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the spinning grandchild's time was never counted under sh: %v", used)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
