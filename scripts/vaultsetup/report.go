package vaultsetup

import (
	"fmt"
	"io"
	"strings"
)

// Status says what Apply found and did for one item.
type Status string

const (
	Created   Status = "created" // was missing, now set up
	Unchanged Status = "ok"      // already right
	Updated   Status = "updated" // differed, rewritten (Force)
	Drift     Status = "DRIFT"   // differs, left alone (no Force)
)

// Item is one thing Apply checked.
type Item struct {
	Status Status
	What   string
	Detail string // for Updated and Drift: what differed
}

// Report is everything Apply checked, in order.
type Report struct {
	Items []Item
	// TOTPMethodID is the id of the staff's TOTP login MFA method.
	TOTPMethodID string
}

func (r *Report) add(st Status, what, detail string) {
	r.Items = append(r.Items, Item{Status: st, What: what, Detail: detail})
}

// Drifted reports whether any item was left drifting.
func (r *Report) Drifted() bool {
	for _, it := range r.Items {
		if it.Status == Drift {
			return true
		}
	}
	return false
}

// Count returns how many items have status st.
func (r *Report) Count(st Status) int {
	n := 0
	for _, it := range r.Items {
		if it.Status == st {
			n++
		}
	}
	return n
}

// WriteTo prints one line per item and a summary line.
func (r *Report) WriteTo(w io.Writer) (int64, error) {
	var b strings.Builder
	for _, it := range r.Items {
		fmt.Fprintf(&b, "%-8s %s", it.Status, it.What)
		if it.Detail != "" {
			fmt.Fprintf(&b, ": %s", it.Detail)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "%d created, %d updated, %d already right, %d drifting\n",
		r.Count(Created), r.Count(Updated), r.Count(Unchanged), r.Count(Drift))
	n, err := io.WriteString(w, b.String())
	return int64(n), err
}
