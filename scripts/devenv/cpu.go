package devenv

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CPUSample is the CPU time (user and system) that this process and each
// server it started have used so far, read from /proc: "this process"
// (the functions, and the in-process MailU stand-ins of a test stack),
// and each child by its program name ("vault", "versitygw", "dovecot"
// with every process under it). A benchmark takes one before and one
// after a step; Since says where the step's CPU went, which on a 2-core
// machine running everything says what bounds it.
type CPUSample map[string]time.Duration

// clockTicks is Linux's USER_HZ, the unit of /proc/<pid>/stat's times
// (100 on every Linux architecture Go runs on).
const clockTicks = 100

// SampleCPU reads the CPU time of this process and of every process under
// it, each grouped under the child of this process it descends from. It
// counts the reaped children of each process too, so a short-lived
// worker's time is not lost. On a system without /proc it is empty.
func SampleCPU() CPUSample {
	self := os.Getpid()
	type proc struct {
		ppid int
		comm string
		cpu  time.Duration
	}
	procs := map[int]proc{}
	dirs, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, path := range dirs {
		b, err := os.ReadFile(path)
		if err != nil {
			continue // exited meanwhile
		}
		s := string(b)
		open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if open < 0 || end < open {
			continue
		}
		pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
		if err != nil {
			continue
		}
		// After the name: state ppid ... utime(14) stime(15) cutime(16)
		// cstime(17), counting from 1 with pid and name as 1 and 2.
		f := strings.Fields(s[end+1:])
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		var ticks int64
		for _, i := range []int{11, 12, 13, 14} {
			n, _ := strconv.ParseInt(f[i], 10, 64)
			ticks += n
		}
		procs[pid] = proc{ppid: ppid, comm: s[open+1 : end], cpu: time.Duration(ticks) * time.Second / clockTicks}
	}
	out := CPUSample{}
	for pid, p := range procs {
		if pid == self {
			out["this process"] += p.cpu
			continue
		}
		// Climb to the child of this process that p descends from.
		for cur, hops := pid, 0; hops < 64; hops++ {
			c, ok := procs[cur]
			if !ok {
				break
			}
			if c.ppid == self {
				out[c.comm] += p.cpu
				break
			}
			cur = c.ppid
		}
	}
	return out
}

// Since is the CPU time used between before and s, by the same names.
func (s CPUSample) Since(before CPUSample) CPUSample {
	out := CPUSample{}
	for name, d := range s {
		out[name] = d - before[name]
	}
	return out
}

// String lists the times, largest first: "vault 41.2 s, this process
// 30.0 s, ...".
func (s CPUSample) String() string {
	names := make([]string, 0, len(s))
	for n := range s {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return int(s[b] - s[a]) })
	parts := make([]string, 0, len(names))
	for _, n := range names {
		parts = append(parts, fmt.Sprintf("%s %.1f s", n, s[n].Seconds()))
	}
	return strings.Join(parts, ", ")
}
