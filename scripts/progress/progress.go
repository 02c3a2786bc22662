// Package progress reports how far a long operator job has come: on a
// terminal a bar redrawn in place with the count, rate and time left;
// otherwise (a log file, CI) one plain line at a fixed interval, so a
// silent job is never mistaken for a hung one.
package progress

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// Bar counts finished items of a job of known size. Its methods are safe
// for concurrent use.
type Bar struct {
	w     io.Writer
	label string
	total int
	tty   bool
	every time.Duration // between two writes: redraws on a terminal, lines otherwise
	now   func() time.Time

	mu     sync.Mutex
	done   int
	failed int // of done
	start  time.Time
	last   time.Time // of the last write
}

// New starts a bar for total items written to w (0: not known yet, see
// SetTotal). A *os.File that is a
// terminal gets a bar redrawn at most ten times a second; anything else a
// line every ten seconds.
func New(w io.Writer, label string, total int) *Bar {
	tty := isTerminal(w)
	every := 10 * time.Second
	if tty {
		every = 100 * time.Millisecond
	}
	return newBar(w, label, total, tty, every, time.Now)
}

func newBar(w io.Writer, label string, total int, tty bool, every time.Duration, now func() time.Time) *Bar {
	b := &Bar{w: w, label: label, total: total, tty: tty, every: every, now: now}
	b.start = now()
	b.last = b.start
	if !tty && total > 0 {
		fmt.Fprintf(w, "%s: %d to do\n", label, total)
	}
	return b
}

// SetTotal gives the job's size once it is known (a job that lists its
// items first), and writes it; the clock keeps running from New.
func (b *Bar) SetTotal(total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if total == b.total {
		return
	}
	b.total = total
	if !b.tty {
		fmt.Fprintf(b.w, "%s: %d to do\n", b.label, total)
	}
}

// isTerminal is true for a character device such as a terminal; pipes,
// files and /dev/null-like sinks that are not char devices get lines.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0 && os.Getenv("TERM") != "dumb"
}

// Add counts n more items done and writes when the interval has passed.
func (b *Bar) Add(n int) { b.add(n, 0) }

func (b *Bar) add(n, failed int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done += n
	b.failed += failed
	now := b.now()
	if now.Sub(b.last) < b.every {
		return
	}
	b.last = now
	b.write(now, false)
}

// Fail counts n more items done that failed; the status shows how many
// once there are any, so an operator sees a job going wrong before its
// end.
func (b *Bar) Fail(n int) { b.add(n, n) }

// Printf writes one line of its own; on a terminal above the bar, which
// is redrawn below it.
func (b *Bar) Printf(format string, args ...any) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.tty {
		fmt.Fprint(b.w, "\r\033[K")
	}
	fmt.Fprintf(b.w, strings.TrimSuffix(format, "\n")+"\n", args...)
	if b.tty {
		b.write(b.now(), false)
	}
}

// Finish writes the final state with the total time taken.
func (b *Bar) Finish() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.write(b.now(), true)
}

func (b *Bar) write(now time.Time, final bool) {
	elapsed := now.Sub(b.start)
	rate := 0.0
	if elapsed > 0 {
		rate = float64(b.done) / elapsed.Seconds()
	}
	status := fmt.Sprintf("%d/%d (%d%%)", b.done, b.total, percent(b.done, b.total))
	if b.failed > 0 {
		status += fmt.Sprintf(" %d failed", b.failed)
	}
	status += fmt.Sprintf(" %.1f/s", rate)
	if final {
		status += " in " + round(elapsed).String()
	} else {
		status += " ETA " + eta(b.total-b.done, rate)
	}
	switch {
	case b.tty && final:
		fmt.Fprintf(b.w, "\r\033[K%s %s %s\n", b.label, bar(b.done, b.total, 30), status)
	case b.tty:
		fmt.Fprintf(b.w, "\r\033[K%s %s %s", b.label, bar(b.done, b.total, 30), status)
	default:
		fmt.Fprintf(b.w, "%s: %s\n", b.label, status)
	}
}

func percent(done, total int) int {
	if total <= 0 {
		return 100
	}
	return done * 100 / total
}

func bar(done, total, width int) string {
	filled := width
	if total > 0 {
		filled = min(width, done*width/total)
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat(".", width-filled) + "]"
}

// eta is the time the remaining items take at the rate so far.
func eta(left int, rate float64) string {
	if left <= 0 {
		return "0s"
	}
	if rate <= 0 {
		return "?"
	}
	return round(time.Duration(float64(left) / rate * float64(time.Second))).String()
}

func round(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}
