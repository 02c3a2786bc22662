package audit

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"smtp-vault/shared/vault"
)

// Anchor is a chain's head as recorded outside the bucket: whoever can
// rewrite the bucket's newest records (which nothing after them links to)
// cannot also change this.
type Anchor struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	At   time.Time `json:"anchored_at"`
}

// KV is what VaultAnchors needs from Vault.
type KV interface {
	ReadKV(ctx context.Context, mount, path string) (*vault.Secret, error)
	WriteKVCAS(ctx context.Context, mount, path string, data map[string]string, cas int) (int, error)
}

// VaultAnchors keeps one anchor per chain in a KV v2 mount (cas_required),
// at the path named after the chain (a tenant id or "platform").
type VaultAnchors struct {
	Vault KV
	Mount string
}

// read returns the chain's anchor and its KV version; a chain never
// anchored is the zero Anchor and version 0.
func (a *VaultAnchors) read(ctx context.Context, chain string) (Anchor, int, error) {
	sec, err := a.Vault.ReadKV(ctx, a.Mount, chain)
	if errors.Is(err, vault.ErrNotFound) {
		return Anchor{}, 0, nil
	}
	if err != nil {
		return Anchor{}, 0, fmt.Errorf("read the anchor of audit chain %s: %w", chain, err)
	}
	an, ok := decodeAnchor(sec.Data)
	if !ok {
		return Anchor{}, 0, fmt.Errorf("the anchor of audit chain %s in %s is malformed", chain, a.Mount)
	}
	return an, sec.Version, nil
}

// encode is an anchor as stored in Vault.
func (an Anchor) encode() map[string]string {
	return map[string]string{"seq": strconv.FormatUint(an.Seq, 10), "hash": an.Hash, "anchored_at": an.At.UTC().Format(time.RFC3339Nano)}
}

// decodeAnchor reads an anchor as encode wrote it, and nothing else: a
// sequence number of a record (1 to MaxSeq, no sign or leading zero), a
// record hash (Hash: lowercase hex SHA-256) and the time it was set. An
// anchor the verifier starts from must be one Anchor could have written.
func decodeAnchor(data map[string]string) (Anchor, bool) {
	seq, err := strconv.ParseUint(data["seq"], 10, 64)
	if err != nil || seq == 0 || seq > MaxSeq {
		return Anchor{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, data["anchored_at"])
	if err != nil {
		return Anchor{}, false
	}
	an := Anchor{Seq: seq, Hash: data["hash"], At: at.UTC()}
	if !validHash(an.Hash) || !maps.Equal(an.encode(), data) {
		return Anchor{}, false
	}
	return an, true
}

// validHash is what Hash returns: 64 lowercase hex digits.
func validHash(h string) bool {
	if len(h) != len(GenesisHash) {
		return false
	}
	for _, c := range []byte(h) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func (a *VaultAnchors) write(ctx context.Context, chain string, an Anchor, cas int) error {
	_, err := a.Vault.WriteKVCAS(ctx, a.Mount, chain, an.encode(), cas)
	if err != nil {
		return fmt.Errorf("anchor audit chain %s: %w", chain, err)
	}
	return nil
}

// AnchorReport is what Anchor did for one chain.
type AnchorReport struct {
	Chain string `json:"chain"`
	From  uint64 `json:"from"` // the anchored seq before
	To    uint64 `json:"to"`   // the anchored seq after (From when it did not move)
	Hash  string `json:"hash,omitempty"`
	// Problems found in the records since the last anchor. A problem
	// with a valid record (missing, broken link, rewritten, truncated)
	// keeps the anchor where it was: the chain needs an operator.
	Problems []Break `json:"problems,omitempty"`
}

// Blocked reports whether a problem with valid records kept the anchor
// where it was.
func (r AnchorReport) Blocked() bool {
	return slices.ContainsFunc(r.Problems, func(p Break) bool { return blocking(p.Kind) })
}

// Anchor checks the chain's records since its last anchor (each record is
// read once in its life, by the first Anchor after it was written) and
// moves the anchor in Vault to the newest valid record when they link up.
// One Vault read and at most one write per chain, none per record: the
// daily sweep calls it (AnchorAll) rather than each append.
func (b *Bucket) Anchor(ctx context.Context, chain string, now time.Time) (AnchorReport, error) {
	rep := AnchorReport{Chain: chain}
	if b.anchors == nil || b.keys == nil {
		return rep, errors.New("audit: anchoring needs the anchors and the MAC keys")
	}
	if !ValidChain(chain) {
		return rep, fmt.Errorf("audit: %q is not a chain", chain)
	}
	a, version, err := b.anchors.read(ctx, chain)
	if err != nil {
		return rep, err
	}
	rep.From, rep.To, rep.Hash = a.Seq, a.Seq, a.Hash
	w := newWalker(b, chain)
	if a.Seq > 0 {
		w.startAt(a)
	}
	keys, err := b.keysFrom(ctx, chain, a.Seq)
	if err != nil {
		return rep, err
	}
	for _, k := range keys {
		if err := w.visit(ctx, k); err != nil {
			return rep, err
		}
	}
	w.finish()
	var r Report
	w.report(&r)
	rep.Problems = r.Problems
	if w.blocked() || w.records == 0 || w.lastValid == a.Seq {
		return rep, nil
	}
	next := Anchor{Seq: w.lastValid, Hash: w.prev, At: now.UTC()}
	if err := b.anchors.write(ctx, chain, next, version); err != nil {
		return rep, err
	}
	rep.To, rep.Hash = next.Seq, next.Hash
	return rep, nil
}

// anchorConcurrency is how many chains AnchorAll anchors at once.
const anchorConcurrency = 8

// AnchorAll anchors every chain in the bucket (see Anchor) and returns
// one report per chain, in Chains order. A chain that could not be read
// or anchored has its error joined into the returned error; the others
// are anchored all the same.
func (b *Bucket) AnchorAll(ctx context.Context, now time.Time) ([]AnchorReport, error) {
	chains, err := b.Chains(ctx)
	if err != nil {
		return nil, err
	}
	reps := make([]AnchorReport, len(chains))
	errs := make([]error, len(chains))
	sem := make(chan struct{}, anchorConcurrency)
	var wg sync.WaitGroup
	for i, c := range chains {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			reps[i], errs[i] = b.Anchor(ctx, c, now)
		})
	}
	wg.Wait()
	return reps, errors.Join(errs...)
}

// Chains names every chain with objects in the bucket: "platform" first
// when it has any, then the tenants in key order.
func (b *Bucket) Chains(ctx context.Context) ([]string, error) {
	chains := []string{}
	out, err := b.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String("platform/"), MaxKeys: aws.Int32(1)})
	if err != nil {
		return nil, fmt.Errorf("list audit chains: %w", err)
	}
	if len(out.Contents) > 0 {
		chains = append(chains, PlatformChain)
	}
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String("tenants/"), Delimiter: aws.String("/")}
	for {
		out, err := b.client.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("list audit chains: %w", err)
		}
		for _, p := range out.CommonPrefixes {
			id := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(p.Prefix), "tenants/"), "/")
			if ValidChain(id) {
				chains = append(chains, id)
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return chains, nil
		}
		in.ContinuationToken = out.NextContinuationToken
	}
}
