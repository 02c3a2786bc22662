package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
// appends each event to its chain (see Record) as one object in
// COMPLIANCE mode retained for the configured years, and the reader that
// queries and verifies the chains. The same code talks to AWS S3 and to
// the local S3 server; only the client's endpoint and credentials differ.
type Bucket struct {
	client *s3.Client
	name   string
	years  int

	mu    sync.Mutex
	heads map[string]head // chain -> last record this instance saw
}

type head struct {
	seq  uint64
	hash string
}

// appendAttempts bounds how often one event competes for the next place
// in a busy chain before the write counts as failed.
const appendAttempts = 25

// NewBucket returns the trail in bucket. retentionYears is the COMPLIANCE
// retention stamped on every object; 0 writes objects without Object Lock
// headers, for buckets without Object Lock (tests of the chain alone).
func NewBucket(client *s3.Client, bucket string, retentionYears int) *Bucket {
	return &Bucket{client: client, name: bucket, years: retentionYears, heads: map[string]head{}}
}

// Name is the bucket's name.
func (b *Bucket) Name() string { return b.name }

// Write implements Sink: it appends e to its chain. It returns only once
// the object is stored, or with the error that kept it from being stored.
func (b *Bucket) Write(ctx context.Context, e Event) error {
	chain := ChainOf(e)
	for attempt := range appendAttempts {
		h, err := b.head(ctx, chain, attempt > 0)
		if err != nil {
			return err
		}
		if h.seq >= MaxSeq {
			return fmt.Errorf("audit chain %s is full (head %d): run audit-verify", chain, h.seq)
		}
		body, err := EncodeRecord(Record{Seq: h.seq + 1, PrevHash: h.hash, Event: e})
		if err != nil {
			return err
		}
		err = b.put(ctx, ChainKey(chain, h.seq+1), body, e.Timestamp)
		if err == nil {
			b.setHead(chain, head{h.seq + 1, Hash(body)})
			return nil
		}
		b.forget(chain)
		if !isPreconditionFailed(err) {
			return err
		}
		// Another writer took that place, or an earlier try of this very
		// write landed although its answer was lost (the SDK retries).
		latest, rec, err := b.readHead(ctx, chain)
		if err != nil {
			return err
		}
		if rec != nil && rec.ID == e.ID {
			b.setHead(chain, latest)
			return nil
		}
		b.setHead(chain, latest)
		sleep(ctx, time.Duration(rand.IntN(20*(attempt+1)))*time.Millisecond)
	}
	return fmt.Errorf("append to audit chain %s: still contended after %d attempts", chain, appendAttempts)
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
// the bucket says when refresh is set or nothing is known.
func (b *Bucket) head(ctx context.Context, chain string, refresh bool) (head, error) {
	if !refresh {
		b.mu.Lock()
		h, ok := b.heads[chain]
		b.mu.Unlock()
		if ok {
			return h, nil
		}
	}
	h, _, err := b.readHead(ctx, chain)
	return h, err
}

// readHead finds the chain's newest record: the first key of its prefix.
func (b *Bucket) readHead(ctx context.Context, chain string) (head, *Record, error) {
	prefix := ChainPrefix(chain)
	out, err := b.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String(prefix), MaxKeys: aws.Int32(1)})
	if err != nil {
		return head{}, nil, fmt.Errorf("list audit chain %s: %w", chain, err)
	}
	for _, o := range out.Contents {
		seq, ok := SeqOfKey(prefix, aws.ToString(o.Key))
		if !ok {
			return head{}, nil, fmt.Errorf("audit chain %s: unexpected key %q", chain, aws.ToString(o.Key))
		}
		body, err := b.get(ctx, aws.ToString(o.Key))
		if err != nil {
			return head{}, nil, err
		}
		var r Record
		if err := json.Unmarshal(body, &r); err != nil {
			return head{}, nil, fmt.Errorf("audit chain %s: head %s is not a record: %w", chain, aws.ToString(o.Key), err)
		}
		return head{seq, Hash(body)}, &r, nil
	}
	return head{0, GenesisHash}, nil, nil
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
