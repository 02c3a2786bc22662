package vaultsetup

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
)

// dataOf is a response's data, empty for no response.
func dataOf(s *vaultapi.Secret) map[string]any {
	if s == nil || s.Data == nil {
		return map[string]any{}
	}
	return s.Data
}

// intOf reads a number Vault returned as json.Number, float or string.
func intOf(v any) int {
	switch n := v.(type) {
	case json.Number:
		i, _ := n.Int64()
		return int(i)
	case float64:
		return int(n)
	case int:
		return n
	case string:
		if i, err := strconv.Atoi(n); err == nil {
			return i
		}
		if d, err := time.ParseDuration(n); err == nil {
			return int(d.Seconds())
		}
	}
	return 0
}

// stringsOf reads a list of strings (or one comma-free string).
func stringsOf(v any) []string {
	switch l := v.(type) {
	case []any:
		out := make([]string, 0, len(l))
		for _, x := range l {
			out = append(out, fmt.Sprint(x))
		}
		return out
	case []string:
		return l
	case string:
		if l == "" {
			return nil
		}
		return []string{l}
	}
	return nil
}

// sameSet reports whether a and b hold the same strings, in any order.
func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
