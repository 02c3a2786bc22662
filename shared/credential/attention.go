package credential

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"time"

	"smtp-vault/shared/vault"
)

// The set needing attention (the "hot" family of the index mount) holds a
// copy of the entry of every tenant that is compromised, failing, of
// unknown age, or due within hotHorizon; each change keeps it (index.go,
// changeEntries) and the sweep adds the tenants that time brought into
// it. Its summary document says when the sweep last made it whole and how
// many tenants the index holds: the overview answers its first page and
// every attention filter from these two reads, a few percent of the
// index, while the summary is fresh (hotValid).

// indexSummary is the summary document (path "summary").
type indexSummary struct {
	At      time.Time // when the sweep made the set whole; zero: never
	Tenants int       // tenants in the index then, plus those added since
}

func (s *Service) readSummary(ctx context.Context) (indexSummary, int, error) {
	sec, err := s.cfg.Vault.ReadKV(ctx, s.cfg.IndexMount, "summary")
	switch {
	case errors.Is(err, vault.ErrNotFound):
		return indexSummary{}, 0, nil
	case err != nil:
		return indexSummary{}, 0, upstream("read the status index summary", err)
	}
	at, _ := time.Parse(time.RFC3339, sec.Data["at"])
	n, _ := strconv.Atoi(sec.Data["tenants"])
	return indexSummary{At: at, Tenants: n}, sec.Version, nil
}

func (s *Service) writeSummary(ctx context.Context, sum indexSummary, version int) error {
	_, err := s.cfg.Vault.WriteKVCAS(ctx, s.cfg.IndexMount, "summary", map[string]string{"at": FormatTime(sum.At), "tenants": strconv.Itoa(sum.Tenants)}, version)
	return err
}

// countTenants adds n new tenants to the summary's count (best effort:
// the next sweep counts afresh).
func (s *Service) countTenants(ctx context.Context, n int) {
	for range indexCASTries {
		sum, version, err := s.readSummary(ctx)
		if err != nil || version == 0 {
			return
		}
		sum.Tenants += n
		if err = s.writeSummary(ctx, sum, version); !errors.Is(err, vault.ErrCASConflict) {
			return
		}
	}
}

// hotValid reports whether the set, made whole at sum.At, still holds
// every overdue and due-soon tenant at now.
func hotValid(sum indexSummary, now time.Time) bool {
	return !sum.At.IsZero() && !now.After(sum.At.Add(hotHorizon-NoticeAhead)) && !now.Before(sum.At.Add(-time.Hour))
}

// hotSet is the set needing attention as the overview reads it.
type hotSet struct {
	list []*listed // without the markers of tenants gone, in listing order
	// head counts the first tenants of list last rotated by the
	// summary's cutoff (or of unknown age): every such tenant is in the
	// set.
	head int
	sum  indexSummary
}

// cachedHot reads the summary and the set, or answers from a read of less
// than Config.IndexCacheTTL ago.
func (s *Service) cachedHot(ctx context.Context) (hotSet, error) {
	if s.cfg.IndexCacheTTL > 0 {
		s.cache.Lock()
		defer s.cache.Unlock()
		if s.cache.hot.list != nil && time.Since(s.cache.hotAt) < s.cfg.IndexCacheTTL {
			return s.cache.hot, nil
		}
	}
	sum, _, err := s.readSummary(ctx)
	if err != nil {
		return hotSet{}, err
	}
	entries := map[string]IndexEntry{}
	if !sum.At.IsZero() {
		all, _, _, err := s.hot.readAll(ctx)
		if err != nil {
			return hotSet{}, err
		}
		for id, e := range all {
			if e.Gone == "" {
				entries[id] = e
			}
		}
	}
	hs := hotSet{list: listing(entries), sum: sum}
	cutoff := sum.At.Add(hotHorizon - RotationInterval)
	hs.head = sort.Search(len(hs.list), func(i int) bool { return hs.list[i].st.LastRotated.After(cutoff) })
	if s.cfg.IndexCacheTTL > 0 {
		s.cache.hot, s.cache.hotAt = hs, time.Now()
	}
	return hs, nil
}

// refreshHot makes the set needing attention whole from entries, the
// index as the sweep read (and repaired) it at now, and records the
// summary. A copy is written only where it has no newer one (Q), so
// changes made since the read stay.
func (s *Service) refreshHot(ctx context.Context, entries map[string]IndexEntry, now time.Time) error {
	sum0, sumVersion, err := s.readSummary(ctx)
	if err != nil {
		return err
	}
	cur, found, _, err := s.hot.readAll(ctx)
	if err != nil {
		return err
	}
	s.hot.saveLayout(ctx, found)
	expired := func(e IndexEntry) bool {
		t, err := time.Parse(time.RFC3339, e.Gone)
		return err != nil || now.Sub(t) >= indexOrphanAge
	}
	young := func(e IndexEntry) bool {
		t, err := time.Parse(time.RFC3339, e.Updated)
		return err == nil && e.State == StatePending && now.Sub(t) < indexOrphanAge
	}
	// decide is what to do with one tenant's copy c (ok: present).
	decide := func(id string, c IndexEntry, ok bool) (IndexEntry, entryOp) {
		e, indexed := entries[id]
		switch {
		case indexed && e.hot(now):
			if !ok || c.Q < e.Q || (c.Q == e.Q && (c.Gone != "" || !sameEntry(c, e))) {
				return e, opPut
			}
		case !ok:
		case c.Gone != "":
			if expired(c) {
				return IndexEntry{}, opDelete
			}
		case indexed && c.Q <= e.Q, !indexed && !young(c):
			return IndexEntry{}, opDelete
		}
		return IndexEntry{}, opKeep
	}
	var ids []string
	for id, e := range entries {
		if c, ok := cur[id]; e.hot(now) || ok {
			if _, op := decide(id, c, ok); op != opKeep {
				ids = append(ids, id)
			}
		}
	}
	for id, c := range cur {
		if _, indexed := entries[id]; !indexed {
			if _, op := decide(id, c, true); op != opKeep {
				ids = append(ids, id)
			}
		}
	}
	if len(ids) > 0 {
		err = s.hot.update(ctx, ids, func(m map[string]IndexEntry, ids []string) {
			for _, id := range ids {
				c, ok := m[id]
				switch e, op := decide(id, c, ok); op {
				case opPut:
					m[id] = e
				case opDelete:
					delete(m, id)
				}
			}
		})
		if err != nil {
			return err
		}
	}
	// Tenants added while the sweep ran were counted into the summary by
	// their writers; entries holds some of them: the count is exact up to
	// those, and the next sweep's.
	sum := indexSummary{At: now, Tenants: len(entries)}
	if err := s.writeSummary(ctx, sum, sumVersion); err != nil {
		if !errors.Is(err, vault.ErrCASConflict) {
			return upstream("write the status index summary", err)
		}
		// A tenant was added meanwhile: keep its count, take the time.
		sum1, v1, rerr := s.readSummary(ctx)
		if rerr != nil {
			return rerr
		}
		sum.Tenants += max(sum1.Tenants-sum0.Tenants, 0)
		if err := s.writeSummary(ctx, sum, v1); err != nil && !errors.Is(err, vault.ErrCASConflict) {
			return upstream("write the status index summary", err)
		}
	}
	s.cache.Lock()
	s.cache.hot.list = nil
	s.cache.Unlock()
	return nil
}
