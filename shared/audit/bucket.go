package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// Bucket is the audit trail in an S3 bucket with Object Lock: a Sink that
// appends each event to its chain (see Record) as one MACed object in
// COMPLIANCE mode retained for the configured years, and the reader that
// queries, verifies and anchors the chains. The same code talks to AWS S3
// and to the local S3 server; only the client's endpoint and credentials
// differ.
type Bucket struct {
	client  *s3.Client
	name    string
	years   int
	keys    *Keys
	anchors *VaultAnchors
	log     *slog.Logger
	lines   io.Writer

	mu       sync.Mutex
	heads    map[string]head     // chain -> last record this instance saw
	rejected map[string]struct{} // keys of objects found not to be valid records
	linesMu  sync.Mutex
}

// BucketConfig configures a Bucket.
type BucketConfig struct {
	Client *s3.Client
	Name   string
	// RetentionYears is the COMPLIANCE retention stamped on every object;
	// 0 writes objects without Object Lock headers, for buckets without
	// Object Lock (tests of the chain alone).
	RetentionYears int
	// Keys MAC every record written and check those read; required.
	Keys *Keys
	// Anchors, when set, is where Anchor keeps each chain's head and what
	// Verify compares the bucket with.
	Anchors *VaultAnchors
	// Log receives what appending skipped (objects that are not valid
	// records: "audit_chain_anomaly", warning); nil discards it.
	Log *slog.Logger
	// Lines, when set, receives one JSON line per appended record
	// ({"log_type":"audit_chain","chain","seq","hash","event_id"}): on
	// Lambda it is stdout, so CloudWatch Logs holds every record's hash
	// outside the bucket.
	Lines io.Writer
}

type head struct {
	seq  uint64 // the newest valid record; 0 for none
	hash string // its hash; GenesisHash for none
	next uint64 // the first free slot after it (slots taken by invalid objects are skipped)
}

// appendAttempts bounds how often one event competes for the next place
// in a busy chain before the write counts as failed.
const appendAttempts = 25

// NewBucket returns the trail cfg describes.
func NewBucket(cfg BucketConfig) *Bucket {
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Bucket{
		client: cfg.Client, name: cfg.Name, years: cfg.RetentionYears, keys: cfg.Keys, anchors: cfg.Anchors,
		log: log, lines: cfg.Lines, heads: map[string]head{}, rejected: map[string]struct{}{},
	}
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.name }

// Write implements Sink: it appends e to its chain. It returns only once
// the object is stored, or with the error that kept it from being stored.
func (b *Bucket) Write(ctx context.Context, e Event) error {
	if b.keys == nil {
		return errors.New("audit bucket: no MAC keys configured")
	}
	chain := ChainOf(e)
	for attempt := range appendAttempts {
		h, err := b.head(ctx, chain)
		if err != nil {
			return err
		}
		if h.next > MaxSeq {
			return fmt.Errorf("audit chain %s is full (head %d): run audit-verify", chain, h.seq)
		}
		body, err := b.keys.sign(ctx, Record{Seq: h.next, PrevHash: h.hash, Event: e})
		if err != nil {
			return err
		}
		err = b.put(ctx, ChainKey(chain, h.next), body, e.Timestamp)
		if err == nil {
			b.appended(chain, h.next, body, e.ID)
			return nil
		}
		b.forget(chain)
		if !isPreconditionFailed(err) {
			return err
		}
		// Another writer took that place, an earlier try of this very
		// write landed although its answer was lost (the SDK retries), or
		// the place holds an object that is not a valid record (the next
		// head read skips it).
		latest, rec, err := b.readHead(ctx, chain)
		if err != nil {
			return err
		}
		b.setHead(chain, latest)
		if rec != nil && rec.ID == e.ID {
			return nil
		}
		if latest.seq < h.next && latest.next > h.next {
			continue // an invalid object held the place: no one to wait for
		}
		sleep(ctx, time.Duration(rand.IntN(20*(attempt+1)))*time.Millisecond)
	}
	return fmt.Errorf("append to audit chain %s: still contended after %d attempts", chain, appendAttempts)
}

// appended notes a stored record: the head cache, and the line that puts
// its hash in CloudWatch Logs.
func (b *Bucket) appended(chain string, seq uint64, body []byte, id string) {
	hash := Hash(body)
	b.setHead(chain, head{seq, hash, seq + 1})
	if b.lines == nil {
		return
	}
	line, err := json.Marshal(struct {
		LogType string `json:"log_type"`
		Chain   string `json:"chain"`
		Seq     uint64 `json:"seq"`
		Hash    string `json:"hash"`
		EventID string `json:"event_id"`
	}{"audit_chain", chain, seq, hash, id})
	if err != nil {
		return
	}
	b.linesMu.Lock()
	defer b.linesMu.Unlock()
	// The record is stored: a lost line costs the CloudWatch copy of its
	// hash, not the record, so it does not fail the write.
	_, _ = b.lines.Write(append(line, '\n'))
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

func (b *Bucket) put(ctx context.Context, key string, body []byte, at time.Time) error {
	in := &s3.PutObjectInput{
		Bucket:      aws.String(b.name),
		Key:         aws.String(key),
		Body:        bytes.NewReader(body),
		ContentType: aws.String("application/json"),
		IfNoneMatch: aws.String("*"),
	}
	if b.years > 0 {
		in.ObjectLockMode = s3types.ObjectLockModeCompliance
		in.ObjectLockRetainUntilDate = aws.Time(at.UTC().AddDate(b.years, 0, 0))
	}
	if _, err := b.client.PutObject(ctx, in); err != nil {
		return fmt.Errorf("put audit object %s: %w", key, err)
	}
	return nil
}

func isPreconditionFailed(err error) bool {
	var ae smithy.APIError
	if errors.As(err, &ae) && (ae.ErrorCode() == "PreconditionFailed" || ae.ErrorCode() == "ConditionalRequestConflict") {
		return true
	}
	var re interface{ HTTPStatusCode() int }
	return errors.As(err, &re) && (re.HTTPStatusCode() == http.StatusPreconditionFailed || re.HTTPStatusCode() == http.StatusConflict)
}

// head returns the chain's last record as this instance knows it, or as
// the bucket says when nothing is known.
func (b *Bucket) head(ctx context.Context, chain string) (head, error) {
	b.mu.Lock()
	h, ok := b.heads[chain]
	b.mu.Unlock()
	if ok {
		return h, nil
	}
	h, _, err := b.readHead(ctx, chain)
	return h, err
}

// readHead finds the chain's newest valid record. Keys list newest first;
// an object that is not a valid record of the chain (a malformed key, a
// body that does not parse, a wrong seq or chain, no valid MAC) is skipped
// and logged, never fatal: anyone who can put an object in the bucket
// could otherwise stop the tenant's chain for the retention period. The
// slots such objects take right above the head are skipped too (next).
func (b *Bucket) readHead(ctx context.Context, chain string) (head, *Record, error) {
	prefix := ChainPrefix(chain)
	var taken []uint64 // seqs above the head held by invalid objects, descending
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String(prefix), MaxKeys: aws.Int32(8)}
	for {
		out, err := b.client.ListObjectsV2(ctx, in)
		if err != nil {
			return head{}, nil, fmt.Errorf("list audit chain %s: %w", chain, err)
		}
		for _, o := range out.Contents {
			key := aws.ToString(o.Key)
			seq, ok := SeqOfKey(prefix, key)
			if !ok {
				b.anomaly(ctx, chain, Break{Key: key, Kind: KindMalformedKey, Problem: "a key that names no record of this chain"})
				continue
			}
			if b.isRejected(key) {
				taken = append(taken, seq)
				continue
			}
			body, err := b.get(ctx, key)
			if err != nil {
				return head{}, nil, err
			}
			rec, brk, err := b.examine(ctx, chain, key, seq, body)
			if err != nil {
				return head{}, nil, err
			}
			if brk != nil {
				b.reject(key)
				b.anomaly(ctx, chain, *brk)
				taken = append(taken, seq)
				continue
			}
			return head{seq, Hash(body), nextFree(seq, taken)}, &rec, nil
		}
		if !aws.ToBool(out.IsTruncated) {
			return head{0, GenesisHash, nextFree(0, taken)}, nil, nil
		}
		in.ContinuationToken, in.MaxKeys = out.NextContinuationToken, aws.Int32(1000)
	}
}

// nextFree is the first slot above seq not in taken (descending): invalid
// objects right above the head are stepped over, while one far above it
// (a planted huge seq) changes nothing.
func nextFree(seq uint64, taken []uint64) uint64 {
	next := seq + 1
	for i := len(taken) - 1; i >= 0; i-- {
		switch {
		case taken[i] < next:
		case taken[i] == next:
			next++
		default:
			return next
		}
	}
	return next
}

func (b *Bucket) anomaly(ctx context.Context, chain string, brk Break) {
	b.log.WarnContext(ctx, "audit_chain_anomaly", "bucket", b.name, "chain", chain, "key", brk.Key, "kind", brk.Kind, "problem", brk.Problem)
}

func (b *Bucket) isRejected(key string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.rejected[key]
	return ok
}

func (b *Bucket) reject(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rejected[key] = struct{}{}
}

func (b *Bucket) get(ctx context.Context, key string) ([]byte, error) {
	out, err := b.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b.name), Key: aws.String(key)})
	if err != nil {
		return nil, fmt.Errorf("get audit object %s: %w", key, err)
	}
	defer out.Body.Close()
	body, err := io.ReadAll(io.LimitReader(out.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read audit object %s: %w", key, err)
	}
	return body, nil
}

func (b *Bucket) setHead(chain string, h head) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.heads[chain] = h
}

func (b *Bucket) forget(chain string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.heads, chain)
}
