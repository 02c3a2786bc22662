package devenv

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// VaultTally counts the requests Vault answered, by operation and path
// with ids folded ("update smtp/data/<id>/admin"), from its file audit
// device: a benchmark marks the log before a step (MarkVaultRequests) and
// tallies after it, which says what the step asked of Vault per tenant.
type VaultTally map[string]int

// VaultRequestMark is a place in the local Vault's audit log.
type VaultRequestMark struct {
	path   string
	offset int64
}

// MarkVaultRequests marks the end of the local Vault's audit log.
func (v *Vault) MarkVaultRequests() (VaultRequestMark, error) {
	path := filepath.Join(v.Dir, "vault-audit.log")
	st, err := os.Stat(path)
	if err != nil {
		return VaultRequestMark{}, fmt.Errorf("devenv: the Vault audit log: %w", err)
	}
	return VaultRequestMark{path: path, offset: st.Size()}, nil
}

// Since tallies the requests Vault answered after m.
func (m VaultRequestMark) Since() (VaultTally, error) {
	f, err := os.Open(m.path)
	if err != nil {
		return nil, fmt.Errorf("devenv: the Vault audit log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(m.offset, io.SeekStart); err != nil {
		return nil, err
	}
	return tallyAudit(f)
}

func tallyAudit(r io.Reader) (VaultTally, error) {
	t := VaultTally{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var e struct {
			Type    string `json:"type"`
			Request struct {
				Operation string `json:"operation"`
				Path      string `json:"path"`
			} `json:"request"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Type != "response" {
			continue // a request entry, or a line cut at the mark
		}
		t[e.Request.Operation+" "+foldIDs(e.Request.Path)]++
	}
	return t, sc.Err()
}

// idSegment is a path segment that names one of many things: a tenant,
// an incident or run, a leaf of the status index, a chunk.
var idSegment = regexp.MustCompile(`^([0-9a-f]{8}-[0-9a-f-]{27}|[0-9]+(-[0-9a-f]+)?|[A-Z][A-Z0-9]*-[A-Za-z0-9-]+)$`)

func foldIDs(path string) string {
	seg := strings.Split(path, "/")
	for i, s := range seg {
		if idSegment.MatchString(s) {
			seg[i] = "<id>"
		}
	}
	return strings.Join(seg, "/")
}

// Total is the number of requests tallied.
func (t VaultTally) Total() int {
	n := 0
	for _, c := range t {
		n += c
	}
	return n
}

// PerUnit lists the tally's kinds, most frequent first, each as its count
// per unit (per tenant, say), on one line (a benchmark's log keeps only
// its first lines): "3.00 patch smtp/metadata/<id>/admin; ...".
func (t VaultTally) PerUnit(units int, top int) string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if t[a] != t[b] {
			return t[b] - t[a]
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "%.2f in all:", float64(t.Total())/float64(max(units, 1)))
	for i, k := range keys {
		if i == top {
			break
		}
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %.2f %s", float64(t[k])/float64(max(units, 1)), k)
	}
	return b.String()
}
