package freeport

import (
	"net"
	"strconv"
	"testing"
	"time"
)

func newPicker(claims string, now func() time.Time) *picker {
	return &picker{handed: map[int]bool{}, claims: claims, now: now}
}

// freeRun finds n consecutive free ports below the ephemeral range.
func freeRun(t *testing.T, n int) int {
	t.Helper()
	for base := lowest + 5000; base < ephemeralLow()-n; base += n {
		ok := true
		for p := base; p < base+n && ok; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return base
		}
	}
	t.Fatalf("no %d consecutive free ports", n)
	return 0
}

// Ports come from below the ephemeral range, are free, and never repeat
// within a process, even when the caller has not bound them yet.
func TestAddrBelowEphemeralRangeAndUnique(t *testing.T) {
	top := ephemeralLow()
	seen := map[string]bool{}
	for range 500 {
		addr, err := Addr()
		if err != nil {
			t.Fatal(err)
		}
		host, port, err := net.SplitHostPort(addr)
		if err != nil || host != "127.0.0.1" {
			t.Fatalf("%q: not a loopback address (%v)", addr, err)
		}
		p, _ := strconv.Atoi(port)
		if p < lowest || p >= top {
			t.Fatalf("%s: port outside [%d, %d)", addr, lowest, top)
		}
		if seen[addr] {
			t.Fatalf("%s handed out twice", addr)
		}
		seen[addr] = true
	}
}

// A port that is bound elsewhere, or was handed out already, is never
// handed out.
func TestPickSkipsTakenAndHandedPorts(t *testing.T) {
	// Find 8 consecutive free ports below the ephemeral range, hold all
	// but one.
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var lo int
	for base := lowest + 5000; base < ephemeralLow()-8; base += 8 {
		held = held[:0]
		ok := true
		for p := base; p < base+8; p++ {
			l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		if ok {
			lo = base
			break
		}
		for _, l := range held {
			l.Close()
		}
	}
	if lo == 0 {
		t.Fatal("no 8 consecutive free ports")
	}
	free := held[3].Addr().String()
	held[3].Close()
	pk := newPicker(t.TempDir(), time.Now)
	addr, err := pk.pick(lo, lo+8, 1000)
	if err != nil || addr != free {
		t.Fatalf("pick = %q, %v; want the one free port %s", addr, err, free)
	}
	if addr, err := pk.pick(lo, lo+8, 1000); err == nil {
		t.Fatalf("pick handed out %s again, or a held port", addr)
	}
}

// Two processes (two pickers with their own memory, one claims folder)
// never hand out the same port within claimTTL; once the claims are older,
// the ports can be handed out again.
func TestClaimsKeepProcessesApart(t *testing.T) {
	lo := freeRun(t, 4)
	dir := t.TempDir()
	at := time.Now()
	clock := func() time.Time { return at }
	first, second := newPicker(dir, clock), newPicker(dir, clock)
	got := map[string]bool{}
	for range 4 {
		addr, err := first.pick(lo, lo+4, 1000)
		if err != nil {
			t.Fatal(err)
		}
		got[addr] = true
	}
	if len(got) != 4 {
		t.Fatalf("first process: %v", got)
	}
	if addr, err := second.pick(lo, lo+4, 1000); err == nil {
		t.Fatalf("second process was handed %s, claimed by the first", addr)
	}
	at = at.Add(claimTTL + time.Second)
	if addr, err := second.pick(lo, lo+4, 1000); err != nil || !got[addr] {
		t.Fatalf("after the claims aged: %q, %v", addr, err)
	}
}
