package audit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Query selects events of one chain. Zero fields do not filter.
type Query struct {
	Chain   string // a tenant id or PlatformChain
	Event   string
	User    string
	From    time.Time // inclusive
	To      time.Time // inclusive
	Page    int       // from 1
	PerPage int
}

// Page is one page of a query's result, newest first.
type Page struct {
	Events  []Event `json:"events"`
	Total   int     `json:"total"`
	Page    int     `json:"page"`
	PerPage int     `json:"per_page"`
}

// MaxScan bounds how many records one filtered query reads; a query
// needing more is ErrQueryTooBroad (narrow it with from and to).
const MaxScan = 10000

// clockSlack is how far an object's LastModified may be from its event's
// timestamp (the time an append can take, plus clock skew), used only to
// skip objects that cannot match a time filter.
const clockSlack = 15 * time.Minute

// ErrQueryTooBroad: the filters leave more records to read than MaxScan.
var ErrQueryTooBroad = errors.New("audit: query would read too many records")

// listing is one listed key of a chain.
type listing struct {
	key      string
	seq      uint64
	modified time.Time
}

// Query returns one page of q's events, newest first, and how many there
// are in all.
//
// Without filters it reads only the page: the head's key gives the total
// and the page's first key is computed from it. With filters it lists the
// chain newest first (1,000 keys a request), skips keys whose
// LastModified rules them out of from/to (and stops at the first key
// older than from, as keys are in chain order), and reads the remaining
// records to match event and user. At tens of thousands of events per
// tenant a time window keeps that cheap; without one, at most MaxScan
// records are read.
func (b *Bucket) Query(ctx context.Context, q Query) (Page, error) {
	p := Page{Page: q.Page, PerPage: q.PerPage, Events: []Event{}}
	prefix := ChainPrefix(q.Chain)
	if q.Event == "" && q.User == "" && q.From.IsZero() && q.To.IsZero() {
		// The newest valid record gives the total: a planted key that
		// sorts first (a huge seq) must not page the trail into nothing.
		h, _, err := b.readHead(ctx, q.Chain)
		if err != nil || h.seq == 0 {
			return p, err
		}
		total := h.seq
		p.Total = int(total)
		skip := uint64((q.Page - 1) * q.PerPage)
		if skip >= total {
			return p, nil
		}
		after := ChainKey(q.Chain, total-skip+1)
		keys, err := b.list(ctx, prefix, after, q.PerPage)
		if err != nil {
			return p, err
		}
		recs, err := b.readAll(ctx, q.Chain, keys)
		if err != nil {
			return p, err
		}
		for _, r := range recs {
			if !r.skip {
				p.Events = append(p.Events, r.Event)
			}
		}
		return p, nil
	}

	var candidates []listing
	after := ""
	for done := false; !done; {
		keys, err := b.list(ctx, prefix, after, 1000)
		if err != nil {
			return p, err
		}
		if len(keys) < 1000 {
			done = true
		}
		for _, k := range keys {
			after = k.key
			if !q.From.IsZero() && k.modified.Before(q.From.Add(-clockSlack)) {
				done = true // every later key is older still
				break
			}
			if !q.To.IsZero() && k.modified.After(q.To.Add(clockSlack)) {
				continue
			}
			candidates = append(candidates, k)
			if len(candidates) > MaxScan {
				return p, fmt.Errorf("%w: more than %d records between from and to", ErrQueryTooBroad, MaxScan)
			}
		}
	}
	recs, err := b.readAll(ctx, q.Chain, candidates)
	if err != nil {
		return p, err
	}
	start, end := (q.Page-1)*q.PerPage, q.Page*q.PerPage
	for _, r := range recs {
		if r.skip {
			continue
		}
		e := r.Event
		if (q.Event != "" && e.Event != q.Event) || (q.User != "" && e.UserID != q.User) ||
			(!q.From.IsZero() && e.Timestamp.Before(q.From)) || (!q.To.IsZero() && e.Timestamp.After(q.To)) {
			continue
		}
		if p.Total >= start && p.Total < end {
			p.Events = append(p.Events, e)
		}
		p.Total++
	}
	return p, nil
}

// list returns up to max keys of prefix after the key after, in key order
// (newest first).
func (b *Bucket) list(ctx context.Context, prefix, after string, max int) ([]listing, error) {
	in := &s3.ListObjectsV2Input{Bucket: aws.String(b.name), Prefix: aws.String(prefix), MaxKeys: aws.Int32(int32(max))}
	if after != "" {
		in.StartAfter = aws.String(after)
	}
	out, err := b.client.ListObjectsV2(ctx, in)
	if err != nil {
		return nil, fmt.Errorf("list audit records under %s: %w", prefix, err)
	}
	keys := make([]listing, 0, len(out.Contents))
	for _, o := range out.Contents {
		k := aws.ToString(o.Key)
		seq, ok := SeqOfKey(prefix, k)
		if !ok {
			continue // not a record of this chain; the verifier reports it
		}
		keys = append(keys, listing{key: k, seq: seq, modified: aws.ToTime(o.LastModified)})
	}
	return keys, nil
}

// readConcurrency is how many records a query reads at once.
const readConcurrency = 16

type readRecord struct {
	Record
	raw  []byte
	skip bool // not a record of its key: the verifier reports it
}

// readAll reads the records of keys, in the order of keys. Objects that
// are not valid records of chain at their key (forged, moved, not a
// record) are marked skip: a query never shows an event no function
// wrote.
func (b *Bucket) readAll(ctx context.Context, chain string, keys []listing) ([]readRecord, error) {
	out := make([]readRecord, len(keys))
	errs := make([]error, len(keys))
	sem := make(chan struct{}, readConcurrency)
	var wg sync.WaitGroup
	for i, k := range keys {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			body, err := b.get(ctx, k.key)
			if err != nil {
				errs[i] = err
				return
			}
			out[i].raw = body
			rec, brk, err := b.examine(ctx, chain, k.key, k.seq, body)
			if err != nil {
				errs[i] = err
				return
			}
			out[i].Record, out[i].skip = rec, brk != nil
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return slices.Clip(out), nil
}
