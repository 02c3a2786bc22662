package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Report is the result of verifying one chain.
type Report struct {
	Chain    string `json:"chain"`
	Bucket   string `json:"bucket"`
	Records  int    `json:"records"`   // valid records read
	HeadSeq  uint64 `json:"head_seq"`  // seq of the newest valid record
	HeadHash string `json:"head_hash"` // its hash: a later run can check the chain still ends there
	// Anchor is the head last anchored outside the bucket (Vault KV),
	// when there is one.
	Anchor *Anchor `json:"anchor,omitempty"`
	Intact bool    `json:"intact"`
	// Break is the first problem in chain order; nil when intact.
	Break *Break `json:"break,omitempty"`
	// Problems lists every problem found, in chain order, up to
	// MaxProblems; ProblemCount counts them all.
	Problems     []Break `json:"problems,omitempty"`
	ProblemCount int     `json:"problem_count,omitempty"`
}

// MaxProblems bounds the problems one report lists.
const MaxProblems = 100

// Break is a problem found in a chain.
type Break struct {
	Seq     uint64 `json:"seq"` // the slot concerned (0 for a key that names none)
	Key     string `json:"key,omitempty"`
	Kind    string `json:"kind"`
	Problem string `json:"problem"`
}

// Kinds of problems. The first five are objects that are not valid
// records: writers skip them (and the slot they take) and chain onto the
// last valid record, so they never stop a chain; the verifier reports
// them. The others mean valid records were removed, edited or rewritten.
const (
	KindMalformedKey = "malformed_key" // a key under the chain's prefix that names no slot
	KindMalformed    = "malformed"     // an object that is not a record
	KindForged       = "forged"        // no valid MAC: not written by a function
	KindReordered    = "reordered"     // a valid record at another slot than its seq
	KindForeign      = "foreign"       // a valid record of another chain
	KindMissing      = "missing"       // a slot below a valid record holds nothing (deleted)
	KindBrokenLink   = "broken_link"   // prev_hash is not the hash of the previous valid record
	KindOverwritten  = "overwritten"   // a key with more than one version
	KindDeleteMarker = "delete_marker" // a key with a delete marker
	KindRewritten    = "rewritten"     // the anchored record is no longer what was anchored
	KindTruncated    = "truncated"     // the bucket ends before the anchored head
)

// blocking reports whether a problem means the valid records themselves
// were tampered with (Anchor then does not move the anchor).
func blocking(kind string) bool {
	switch kind {
	case KindMissing, KindBrokenLink, KindRewritten, KindTruncated:
		return true
	}
	return false
}

// Verify walks a chain from its first record to its head and reports
// every problem (see the Kinds): objects that are not valid records of
// the chain at their key (no valid MAC, a wrong seq or chain, not a
// record, a malformed key), slots missing below a valid record, prev_hash
// links that do not match, and with Anchors, a head below or a record
// different from the anchored one. In a versioned bucket (Object Lock) it
// also reports keys with more than one version or a delete marker: the
// current versions could otherwise hide an overwritten or deleted record.
// An error means it could not read the chain (or Vault could not unwrap a
// MAC key) at all.
func (b *Bucket) Verify(ctx context.Context, chain string) (Report, error) {
	r := Report{Chain: chain, Bucket: b.name, HeadHash: GenesisHash}
	if !ValidChain(chain) {
		return r, fmt.Errorf("audit: %q is not a chain (a lowercase tenant UUID or %q)", chain, PlatformChain)
	}
	w := newWalker(b, chain)
	if b.anchors != nil {
		a, _, err := b.anchors.read(ctx, chain)
		if err != nil {
			return r, err
		}
		if a.Seq > 0 {
			r.Anchor, w.anchor = &a, &a
		}
	}
	keys, err := b.keysFrom(ctx, chain, 0)
	if err != nil {
		return r, err
	}
	for _, k := range keys {
		if err := w.visit(ctx, k); err != nil {
			return r, err
		}
	}
	w.finish()
	brks, err := b.versionBreaks(ctx, chain)
	if err != nil {
		return r, err
	}
	w.problems = append(w.problems, brks...)
	w.report(&r)
	return r, nil
}

// slot is a listed key of a chain.
type slot struct {
	key string
	seq uint64
	ok  bool // the key names a slot
}

// keysFrom lists a chain's keys with seq >= from (and every malformed
// key met on the way), oldest first.
func (b *Bucket) keysFrom(ctx context.Context, chain string, from uint64) ([]slot, error) {
	prefix := ChainPrefix(chain)
	var out []slot
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String(prefix)}
	for {
		page, err := b.client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list audit chain %s: %w", chain, err)
		}
		for _, o := range page.Contents {
			key := aws.ToString(o.Key)
			seq, ok := SeqOfKey(prefix, key)
			if ok && seq < from {
				slices.Reverse(out)
				return out, nil
			}
			out = append(out, slot{key, seq, ok})
		}
		if !aws.ToBool(page.IsTruncated) {
			slices.Reverse(out)
			return out, nil
		}
		in.ContinuationToken = page.NextContinuationToken
	}
}

// walker checks a chain's slots in ascending order.
type walker struct {
	b     *Bucket
	chain string

	prev      string          // hash of the last valid record
	lastValid uint64          // its seq
	invalid   map[uint64]bool // slots above lastValid held by invalid objects
	records   int
	anchor    *Anchor // compared when the walk passes its seq
	anchorMet bool
	startSeq  uint64 // the walk's first record, whose link it cannot check (0: from genesis)
	problems  []Break
}

func newWalker(b *Bucket, chain string) *walker {
	return &walker{b: b, chain: chain, prev: GenesisHash, invalid: map[uint64]bool{}}
}

// startAt makes the walk begin at the anchored record a: the first slot
// visited must hold exactly it.
func (w *walker) startAt(a Anchor) {
	w.anchor, w.startSeq = &a, a.Seq
	w.lastValid, w.prev = a.Seq-1, a.Hash
}

func (w *walker) add(seq uint64, key, kind, problem string, args ...any) {
	w.problems = append(w.problems, Break{Seq: seq, Key: key, Kind: kind, Problem: fmt.Sprintf(problem, args...)})
}

func (w *walker) visit(ctx context.Context, s slot) error {
	if !s.ok {
		w.add(0, s.key, KindMalformedKey, "a key under the chain's prefix that names no record")
		return nil
	}
	body, err := w.b.get(ctx, s.key)
	if err != nil {
		return err
	}
	rec, brk, err := w.b.examine(ctx, w.chain, s.key, s.seq, body)
	if err != nil {
		return err
	}
	if w.anchor != nil && s.seq == w.anchor.Seq {
		w.anchorMet = true
		if brk != nil || Hash(body) != w.anchor.Hash {
			w.add(s.seq, s.key, KindRewritten, "the record anchored in Vault on %s (hash %.16s…) is not the one in the bucket", w.anchor.At.Format(time.RFC3339), w.anchor.Hash)
		}
	}
	if brk != nil {
		w.problems = append(w.problems, *brk)
		w.invalid[s.seq] = true
		return nil
	}
	// Slots between the last valid record and this one must hold
	// something: writers skip only slots that invalid objects took.
	for m := w.lastValid + 1; m < s.seq; m++ {
		if !w.invalid[m] {
			end := m
			for end+1 < s.seq && !w.invalid[end+1] {
				end++
			}
			if end == m {
				w.add(m, ChainKey(w.chain, m), KindMissing, "record %d is missing (deleted)", m)
			} else {
				w.add(m, ChainKey(w.chain, m), KindMissing, "records %d to %d are missing (deleted)", m, end)
			}
			m = end
		}
	}
	if rec.PrevHash != w.prev && s.seq != w.startSeq {
		w.add(s.seq, s.key, KindBrokenLink, "prev_hash %.16s… is not the hash %.16s… of the previous valid record %d (a record was edited, removed or reordered)", rec.PrevHash, w.prev, w.lastValid)
	}
	w.prev, w.lastValid, w.invalid = Hash(body), s.seq, map[uint64]bool{}
	w.records++
	return nil
}

// finish notes an anchored head the walk never reached.
func (w *walker) finish() {
	if w.anchor != nil && !w.anchorMet {
		w.add(w.anchor.Seq, ChainKey(w.chain, w.anchor.Seq), KindTruncated, "the bucket has no record %d, anchored in Vault on %s: the chain's tail was removed or rewritten", w.anchor.Seq, w.anchor.At.Format(time.RFC3339))
	}
}

func (w *walker) blocked() bool {
	return slices.ContainsFunc(w.problems, func(p Break) bool { return blocking(p.Kind) })
}

func (w *walker) report(r *Report) {
	r.Records = w.records
	if w.records > 0 {
		r.HeadSeq, r.HeadHash = w.lastValid, w.prev
	}
	slices.SortStableFunc(w.problems, func(a, b Break) int {
		switch {
		case a.Seq < b.Seq:
			return -1
		case a.Seq > b.Seq:
			return 1
		}
		return 0
	})
	r.ProblemCount = len(w.problems)
	r.Problems = w.problems[:min(len(w.problems), MaxProblems)]
	r.Intact = len(r.Problems) == 0
	if !r.Intact {
		r.Break = &r.Problems[0]
	}
}

// examine decides whether body, stored at key (slot seq), is a valid
// record of chain: it parses, its MAC verifies under a key Vault issued,
// and its seq and chain are those of its key. A problem says why not; an
// error means Vault could not answer, which says nothing about the record.
func (b *Bucket) examine(ctx context.Context, chain, key string, seq uint64, body []byte) (Record, *Break, error) {
	var r Record
	if b.keys == nil {
		return r, nil, errors.New("audit bucket: no MAC keys configured")
	}
	bad := func(kind, problem string, args ...any) (Record, *Break, error) {
		return r, &Break{Seq: seq, Key: key, Kind: kind, Problem: fmt.Sprintf(problem, args...)}, nil
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return bad(KindMalformed, "not a record: %v", err)
	}
	switch err := b.keys.checkMAC(ctx, body, r); {
	case errors.Is(err, errBadMAC), errors.Is(err, errForgedKey):
		return bad(KindForged, "%v: it was not written by a function", err)
	case err != nil:
		return r, nil, err
	}
	if r.Seq != seq {
		return bad(KindReordered, "the record at this key says it is record %d (moved or reordered)", r.Seq)
	}
	if c := ChainOf(r.Event); c != chain {
		return bad(KindForeign, "the record belongs to chain %s", c)
	}
	return r, nil, nil
}

// versionBreaks lists the keys of the chain with more than one version
// or a delete marker, in a bucket with versioning. Under Object Lock in
// COMPLIANCE mode neither can hide a record (its version stays), but both
// mean someone tried.
func (b *Bucket) versionBreaks(ctx context.Context, chain string) ([]Break, error) {
	v, err := b.client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(b.name)})
	if err != nil {
		return nil, fmt.Errorf("read versioning of %s: %w", b.name, err)
	}
	if v.Status != s3types.BucketVersioningStatusEnabled {
		return nil, nil
	}
	prefix := ChainPrefix(chain)
	seen := map[string]int{}
	var out []Break
	note := func(key, kind, problem string) {
		seq, _ := SeqOfKey(prefix, key)
		out = append(out, Break{Seq: seq, Key: key, Kind: kind, Problem: problem})
	}
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(b.name), Prefix: aws.String(prefix)}
	for {
		page, err := b.client.ListObjectVersions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list versions of audit chain %s: %w", chain, err)
		}
		for _, o := range page.Versions {
			k := aws.ToString(o.Key)
			if seen[k]++; seen[k] == 2 {
				note(k, KindOverwritten, "the key holds more than one version (the record was overwritten; the original version is kept)")
			}
		}
		for _, m := range page.DeleteMarkers {
			note(aws.ToString(m.Key), KindDeleteMarker, "the key has a delete marker (a deletion was attempted; the record's version is kept)")
		}
		if !aws.ToBool(page.IsTruncated) {
			return out, nil
		}
		in.KeyMarker, in.VersionIdMarker = page.NextKeyMarker, page.NextVersionIdMarker
	}
}
