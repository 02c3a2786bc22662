package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

// clock is a hand-moved clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestBar(t *testing.T) {
	tests := []struct {
		name  string
		tty   bool
		steps []time.Duration // clock advance before each Add(1)
		fail  []bool          // Fail(1) instead of Add(1) at this step
		want  string
	}{
		{
			name:  "lines at the interval only",
			steps: []time.Duration{time.Second, 9 * time.Second, time.Second, 9 * time.Second},
			want: "rewrap: 4 to do\n" +
				"rewrap: 2/4 (50%) 0.2/s ETA 10s\n" +
				"rewrap: 4/4 (100%) 0.2/s ETA 0s\n" +
				"rewrap: 4/4 (100%) 0.2/s in 20s\n",
		},
		{
			name:  "failures are counted once there are any",
			steps: []time.Duration{10 * time.Second, 10 * time.Second, 10 * time.Second, 10 * time.Second},
			fail:  []bool{false, true, false, true},
			want: "rewrap: 4 to do\n" +
				"rewrap: 1/4 (25%) 0.1/s ETA 30s\n" +
				"rewrap: 2/4 (50%) 1 failed 0.1/s ETA 20s\n" +
				"rewrap: 3/4 (75%) 1 failed 0.1/s ETA 10s\n" +
				"rewrap: 4/4 (100%) 2 failed 0.1/s ETA 0s\n" +
				"rewrap: 4/4 (100%) 2 failed 0.1/s in 40s\n",
		},
		{
			name:  "a terminal redraws one line",
			tty:   true,
			steps: []time.Duration{20 * time.Second, 20 * time.Second},
			want: "\r\033[Krewrap [#######.......................] 1/4 (25%) 0.1/s ETA 1m0s" +
				"\r\033[Krewrap [###############...............] 2/4 (50%) 0.1/s ETA 40s" +
				"\r\033[Krewrap [###############...............] 2/4 (50%) 0.1/s in 40s\n",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
			b := newBar(&out, "rewrap", 4, tt.tty, 10*time.Second, c.now)
			for i, d := range tt.steps {
				c.t = c.t.Add(d)
				if i < len(tt.fail) && tt.fail[i] {
					b.Fail(1)
				} else {
					b.Add(1)
				}
			}
			b.Finish()
			if got := out.String(); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", out.String(), tt.want)
			}
		})
	}
}

func TestNewWritesLinesToAPipe(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "verify", 2)
	b.Add(2)
	b.Finish()
	if !strings.HasPrefix(out.String(), "verify: 2 to do\n") || !strings.Contains(out.String(), "verify: 2/2 (100%)") {
		t.Errorf("output %q", out.String())
	}
}

func TestETA(t *testing.T) {
	for _, tt := range []struct {
		left int
		rate float64
		want string
	}{{0, 0, "0s"}, {5, 0, "?"}, {90, 1, "1m30s"}, {3, 2, "1.5s"}} {
		if got := eta(tt.left, tt.rate); got != tt.want {
			t.Errorf("eta(%d, %v) = %s, want %s", tt.left, tt.rate, got, tt.want)
		}
	}
}

// A job that lists its items first starts the bar without a size and
// gives it once known; rate and ETA count from the start.
func TestBarTotalKnownLater(t *testing.T) {
	var out bytes.Buffer
	c := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b := newBar(&out, "check", 0, false, 10*time.Second, c.now)
	c.t = c.t.Add(10 * time.Second)
	b.SetTotal(4)
	b.SetTotal(4)
	b.Add(1)
	c.t = c.t.Add(10 * time.Second)
	b.Finish()
	want := "check: 4 to do\n" +
		"check: 1/4 (25%) 0.1/s ETA 30s\n" +
		"check: 1/4 (25%) 0.1/s in 20s\n"
	if out.String() != want {
		t.Errorf("got\n%q\nwant\n%q", out.String(), want)
	}
}
