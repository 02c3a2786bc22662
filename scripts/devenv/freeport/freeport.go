// Package freeport hands out loopback ports for servers that the dev stack
// and the tests start as separate processes, which need their address
// before they run.
//
// A port found by listening on 127.0.0.1:0 and closing comes from the
// kernel's ephemeral range, the same range the kernel draws from for every
// other port-0 listener and for the source port of every outgoing
// connection. Until the server binds it, any of those can take it: a stack
// once found its Vault address answered by the STS stand-in that started a
// moment earlier. Ports from below the ephemeral range are never handed out
// by the kernel, so only another caller of this package could take one:
// within a process it never hands out the same port twice, and across
// processes (go test runs packages side by side) a port handed out is
// claimed by a file in the system's temporary folder for claimTTL, within
// which no other process hands it out.
package freeport

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// lowest is the first port handed out: above the registered ports most
// services use by default.
const lowest = 10000

// claimTTL is how long a port handed out stays claimed against other
// processes: longer than any server here takes to bind its port.
const claimTTL = 2 * time.Minute

var global = picker{handed: map[int]bool{}, claims: filepath.Join(os.TempDir(), "smtp-vault-ports"), now: time.Now}

// Addr returns 127.0.0.1:<port> with a port below the kernel's ephemeral
// range that was free a moment ago and that this process has not handed
// out before.
func Addr() (string, error) {
	top := ephemeralLow() // exclusive
	if top-lowest < 1000 {
		return "", fmt.Errorf("freeport: the ephemeral range starts at %d, leaving too few ports above %d", top, lowest)
	}
	return global.pick(lowest, top, 200)
}

type picker struct {
	mu     sync.Mutex
	handed map[int]bool
	claims string           // folder of the claim files, one per port
	now    func() time.Time // for the claims' age
}

// pick tries up to tries random ports in [lo, hi) and returns the first
// that was not handed out before and can be bound.
func (pk *picker) pick(lo, hi, tries int) (string, error) {
	pk.mu.Lock()
	defer pk.mu.Unlock()
	for range tries {
		p := lo + rand.IntN(hi-lo)
		if pk.handed[p] || !pk.claim(p) {
			continue
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(p))
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		pk.handed[p] = true
		return addr, nil
	}
	return "", fmt.Errorf("freeport: no free loopback port found in [%d, %d)", lo, hi)
}

// claim records that this process hands out port p, unless another did
// within claimTTL. A claim that cannot be written (no temporary folder)
// does not stop the pick: the port is then only as safe as before claims.
func (pk *picker) claim(p int) bool {
	if err := os.MkdirAll(pk.claims, 0o777); err != nil {
		return true
	}
	path := filepath.Join(pk.claims, strconv.Itoa(p))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o666)
	if err == nil {
		f.Close()
		now := pk.now()
		_ = os.Chtimes(path, now, now)
		return true
	}
	if !errors.Is(err, fs.ErrExist) {
		return true
	}
	st, err := os.Stat(path)
	if err != nil || pk.now().Sub(st.ModTime()) < claimTTL {
		return false
	}
	now := pk.now()
	return os.Chtimes(path, now, now) == nil
}

// ephemeralLow is the first port of Linux's ephemeral range, or the IANA
// one (49152) where it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 49152
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 49152
	}
	n, err := strconv.Atoi(f[0])
	if err != nil || n <= 0 {
		return 49152
	}
	return n
}
