package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Report is the result of verifying one chain.
type Report struct {
	Chain    string `json:"chain"`
	Bucket   string `json:"bucket"`
	Records  int    `json:"records"`   // records read
	HeadSeq  uint64 `json:"head_seq"`  // seq of the newest record
	HeadHash string `json:"head_hash"` // its hash: a later run can check the chain still ends there
	Intact   bool   `json:"intact"`
	// Break is the first problem found in chain order; nil when intact.
	Break *Break `json:"break,omitempty"`
}

// Break is where a chain stops being trustworthy.
type Break struct {
	Seq     uint64 `json:"seq"` // the record at which the chain breaks
	Key     string `json:"key,omitempty"`
	Problem string `json:"problem"`
}

// Verify walks a chain from its first record to its head: every record
// must sit at the key of its seq, seqs must run 1, 2, 3, ... without a
// gap, each prev_hash must be the hash of the record before, and every
// record must belong to the chain. In a versioned bucket (Object Lock)
// it also refuses keys with more than one version or a delete marker:
// the current versions could otherwise hide an overwritten or deleted
// record. It reports the first break; an error means it could not read
// the chain at all.
func (b *Bucket) Verify(ctx context.Context, chain string) (Report, error) {
	r := Report{Chain: chain, Bucket: b.name, HeadHash: GenesisHash}
	if !ValidChain(chain) {
		return r, fmt.Errorf("audit: %q is not a chain (a lowercase tenant UUID or %q)", chain, PlatformChain)
	}
	prefix := ChainPrefix(chain)
	var keys []string
	var token *string
	for {
		out, err := b.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String(prefix), ContinuationToken: token})
		if err != nil {
			return r, fmt.Errorf("list audit chain %s: %w", chain, err)
		}
		for _, o := range out.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		token = out.NextContinuationToken
	}
	slices.Reverse(keys) // oldest first
	brk := func(seq uint64, key, problem string, args ...any) (Report, error) {
		r.Break = &Break{Seq: seq, Key: key, Problem: fmt.Sprintf(problem, args...)}
		return r, nil
	}
	prev := GenesisHash
	for i, key := range keys {
		want := uint64(i) + 1
		seq, ok := SeqOfKey(prefix, key)
		switch {
		case !ok:
			return brk(want, key, "a key that is not a record of this chain")
		case seq > want:
			return brk(want, ChainKey(chain, want), "record %d is missing (deleted); the next record found is %d", want, seq)
		}
		body, err := b.get(ctx, key)
		if err != nil {
			return r, err
		}
		var rec Record
		if err := json.Unmarshal(body, &rec); err != nil {
			return brk(seq, key, "not a valid record: %v", err)
		}
		switch {
		case rec.Seq != seq:
			return brk(seq, key, "the record at this key says it is record %d (moved or reordered)", rec.Seq)
		case rec.PrevHash != prev:
			return brk(seq, key, "prev_hash %.16s… is not the hash %.16s… of record %d (a record was edited, removed or reordered)", rec.PrevHash, prev, seq-1)
		case ChainOf(rec.Event) != chain:
			return brk(seq, key, "the record belongs to chain %s", ChainOf(rec.Event))
		}
		prev = Hash(body)
		r.Records++
		r.HeadSeq, r.HeadHash = seq, prev
	}
	if brk, err := b.versionBreak(ctx, chain); err != nil || brk != nil {
		r.Break = brk
		return r, err
	}
	r.Intact = true
	return r, nil
}

// versionBreak looks for a key of the chain with more than one version or
// a delete marker, in a bucket with versioning. Under Object Lock in
// COMPLIANCE mode neither can hide a record (its version stays), but both
// mean someone tried.
func (b *Bucket) versionBreak(ctx context.Context, chain string) (*Break, error) {
	v, err := b.client.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(b.name)})
	if err != nil {
		return nil, fmt.Errorf("read versioning of %s: %w", b.name, err)
	}
	if v.Status != s3types.BucketVersioningStatusEnabled {
		return nil, nil
	}
	prefix := ChainPrefix(chain)
	seen := map[string]int{}
	var first *Break
	note := func(key, problem string) {
		seq, _ := SeqOfKey(prefix, key)
		if first == nil || seq < first.Seq {
			first = &Break{Seq: seq, Key: key, Problem: problem}
		}
	}
	in := &s3.ListObjectVersionsInput{Bucket: aws.String(b.name), Prefix: aws.String(prefix)}
	for {
		out, err := b.client.ListObjectVersions(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list versions of audit chain %s: %w", chain, err)
		}
		for _, o := range out.Versions {
			k := aws.ToString(o.Key)
			if seen[k]++; seen[k] == 2 {
				note(k, "the key holds more than one version (the record was overwritten; the original version is kept)")
			}
		}
		for _, m := range out.DeleteMarkers {
			note(aws.ToString(m.Key), "the key has a delete marker (a deletion was attempted; the record's version is kept)")
		}
		if !aws.ToBool(out.IsTruncated) {
			return first, nil
		}
		in.KeyMarker, in.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
}
