package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"smtp-vault/shared/pathseg"
)

// The audit trail in the bucket is a set of hash chains, one per tenant
// and one for events without a tenant ("platform"). Each object is one
// Record: the event plus its place in its chain.
//
//   - Key: tenants/<tenant_id>/<rev>.json or platform/<rev>.json, where rev
//     is the 12-digit MaxSeq-seq. Listing a prefix (S3 lists keys in
//     ascending order) therefore yields one tenant's events newest first,
//     and the first key names the chain's head.
//   - Hash of a record: SHA-256 over the exact bytes of its object. Those
//     bytes are the JSON encoding of Record by encoding/json: fields in the
//     declared order, details keys sorted, no insignificant whitespace,
//     timestamps RFC 3339 with nanoseconds in UTC. Any tool can recompute
//     it from the object without re-encoding anything.
//   - prev_hash: the hex hash of the chain's previous valid record;
//     GenesisHash for the first. A slot taken by an object that is not a
//     valid record (see Bucket.Verify) is skipped, not linked to.
//   - mac_key and mac: the record's MAC (see Keys): mac is the hex
//     HMAC-SHA256, under the data key that mac_key wraps, of the object's
//     bytes without the final mac field. mac is always the last field.
//
// Appending claims the key of seq N+1 with a conditional write
// (If-None-Match: *), so two writers can never both append after the same
// record: the loser re-reads the head and tries N+2.
type Record struct {
	Seq      uint64 `json:"seq"`
	PrevHash string `json:"prev_hash"`
	Event
	MACKey string `json:"mac_key,omitempty"`
	MAC    string `json:"mac,omitempty"`
}

// GenesisHash is the prev_hash of a chain's first record.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// MaxSeq is the largest sequence number a chain can hold.
const MaxSeq = 999_999_999_999

// PlatformChain is the chain of events without a (valid) tenant id.
const PlatformChain = "platform"

// ChainOf names the chain an event belongs to: its tenant, or
// PlatformChain when it has no valid tenant id (which then never becomes
// part of a key).
func ChainOf(e Event) string {
	if pathseg.Check(pathseg.TenantID, e.TenantID) == nil {
		return e.TenantID
	}
	return PlatformChain
}

// ValidChain reports whether chain names a chain: a lowercase UUID v4 or
// PlatformChain.
func ValidChain(chain string) bool {
	return chain == PlatformChain || pathseg.Check(pathseg.TenantID, chain) == nil
}

// ChainPrefix is the key prefix of a chain's objects.
func ChainPrefix(chain string) string {
	if chain == PlatformChain {
		return "platform/"
	}
	return "tenants/" + pathseg.Must(pathseg.TenantID, chain) + "/"
}

// ChainKey is the object key of record seq in chain.
func ChainKey(chain string, seq uint64) string {
	return ChainPrefix(chain) + fmt.Sprintf("%012d", MaxSeq-seq) + ".json"
}

// SeqOfKey returns the sequence number a key under prefix names.
func SeqOfKey(prefix, key string) (uint64, bool) {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return 0, false
	}
	rev, ok := strings.CutSuffix(rest, ".json")
	if !ok || len(rev) != 12 {
		return 0, false
	}
	n, err := strconv.ParseUint(rev, 10, 64)
	if err != nil || n >= MaxSeq {
		return 0, false
	}
	return MaxSeq - n, true
}

// Hash is the chain hash of a stored record: hex SHA-256 of its bytes.
func Hash(object []byte) string {
	sum := sha256.Sum256(object)
	return hex.EncodeToString(sum[:])
}

// EncodeRecord is the canonical serialisation of a record.
func EncodeRecord(r Record) ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("encode audit record: %w", err)
	}
	return b, nil
}
