package auth

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// renderClaims turns a verified JWT payload into the map[string]string API
// Gateway's HTTP API hands to a Lambda in requestContext.authorizer.jwt.claims:
// strings as they are, numbers as decimal text, booleans as true/false,
// arrays as their elements joined by spaces inside brackets ("[a b]"),
// objects as compact JSON, and null claims left out.
func renderClaims(payload []byte) (map[string]string, error) {
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber() // keep exp and friends exact instead of float64
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, err
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		if v == nil {
			continue
		}
		out[k] = renderClaim(v)
	}
	return out, nil
}

func renderClaim(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case json.Number:
		return decimal(v)
	case bool:
		return strconv.FormatBool(v)
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			if e != nil {
				parts[i] = renderClaim(e)
			}
		}
		return "[" + strings.Join(parts, " ") + "]"
	case map[string]any:
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	default:
		return fmt.Sprint(v)
	}
}

// decimal writes a JSON number without an exponent, so 1.7e9 reads 1700000000.
func decimal(n json.Number) string {
	if i, err := n.Int64(); err == nil {
		return strconv.FormatInt(i, 10)
	}
	if f, err := n.Float64(); err == nil {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return n.String()
}
