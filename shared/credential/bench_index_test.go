package credential_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/credential"
)

// BenchmarkIndexAtScale writes the status index of INDEX_BENCH_TENANTS
// tenants (default 100,000; last rotations over 200 days) through the
// writers' path in the rebuild's chunks of 1,000 (the leaves splitting as
// it grows) without their KV records, which would take the better part of
// an hour to seed here, and measures what the index costs at that size:
// the write, its leaves and their sizes, a read of every leaf beside the
// bare fetch of the same documents, the set needing attention, the
// overview's first page through the gateway with the console's cache
// expired, and one tenant's change (pending, then rewritten) in a leaf of
// that index.
//
//	INDEX_BENCH_TENANTS=100000 go test -run '^$' -bench BenchmarkIndexAtScale -benchtime 1x -timeout 60m ./shared/credential/
func BenchmarkIndexAtScale(b *testing.B) {
	tenants := devenv.EnvCount(b, "INDEX_BENCH_TENANTS", 100_000)
	s := devenv.StartTestStack(b, 1)
	ctx := context.Background()
	cfg := s.App.Config
	svc := credential.New(credential.Config{Vault: s.App.Vault, KVMount: cfg.KVMount, IndexMount: cfg.IndexMount, Now: s.Clock.Now,
		Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})
	now := s.Clock.Now()
	entries := make(map[string]credential.IndexEntry, tenants)
	keys := make([]string, 0, tenants)
	for i := range tenants {
		id := uuid.NewString()
		domain := fmt.Sprintf("t%06d.example.test", i)
		entries[id] = credential.IndexEntry{LastRotated: credential.FormatTime(now.Add(-time.Duration(i%200)*24*time.Hour - time.Hour)),
			State: credential.StateCurrent, Username: "admin@" + domain, WebmailURL: "https://mail." + domain}
		keys = append(keys, credential.RangeKey(id))
	}
	sort.Strings(keys)
	for range b.N {
		t0 := time.Now()
		for at := 0; at < len(keys); at += 1000 {
			ids := make([]string, 0, 1000)
			for _, k := range keys[at:min(at+1000, len(keys))] {
				ids = append(ids, k[9:])
			}
			if err := svc.WriteIndexEntries(ctx, ids, entries); err != nil {
				b.Fatalf("write the index at %d tenants: %v", at, err)
			}
		}
		write := time.Since(t0)
		t0 = time.Now()
		if err := svc.RefreshAttention(ctx); err != nil {
			b.Fatal(err)
		}
		report(b, "%d tenants: the index written through the writers' path in chunks of 1,000 in %v; the set needing attention made whole in %v",
			tenants, write.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))
		n, largest, err := svc.IndexLeaves(ctx)
		if err != nil {
			b.Fatal(err)
		}
		names, size := leafDocs(b, s, "leaves")
		hotNames, hotSize := leafDocs(b, s, "hot")
		report(b, "the index: %d leaves, %d bytes (%d a tenant), the largest %d bytes (limit %d); the set needing attention: %d leaves, %d bytes",
			n, size, size/tenants, largest, credential.DefaultIndexLeafBytes, len(hotNames), hotSize)

		var read, bare []time.Duration
		for range 5 {
			t := time.Now()
			got, err := svc.ReadIndexSize(ctx)
			if err != nil || got != tenants+len(s.Tenants) {
				b.Fatalf("read the index: %d entries, %v", got, err)
			}
			read = append(read, time.Since(t))
			t = time.Now()
			fetch(b, s, names)
			bare = append(bare, time.Since(t))
		}
		report(b, "a read of every leaf (what the sweep reads): p50 %v of 5; bare fetch of the same %d documents: p50 %v", p50(read), len(names), p50(bare))

		// The overview through the gateway, as the console lists.
		bearer, _, err := s.ReauthAs(auth.RolePlatformAdmin)
		if err != nil {
			b.Fatal(err)
		}
		client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
		list := func(query string) credential.OverviewPage {
			req, _ := http.NewRequest("GET", s.APIURL+"/api/v1/platform-admin/smtp-credentials"+query, nil)
			req.Header.Set("Authorization", "Bearer "+bearer)
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var page credential.OverviewPage
			if resp.StatusCode != 200 || json.Unmarshal(body, &page) != nil {
				b.Fatalf("overview %s: %d %s", query, resp.StatusCode, body)
			}
			return page
		}
		ttl := s.Apps["console"].Config.IndexCacheTTL
		timed := func(n int, query string, check func(credential.OverviewPage)) time.Duration {
			var d []time.Duration
			for range n {
				time.Sleep(ttl + 50*time.Millisecond)
				t := time.Now()
				p := list(query)
				d = append(d, time.Since(t))
				check(p)
			}
			return p50(d)
		}
		first := timed(10, "?page=1", func(p credential.OverviewPage) {
			if p.Total != tenants+len(s.Tenants) || len(p.Credentials) != credential.DefaultOverviewPerPage {
				b.Fatalf("first page: total %d, %d items", p.Total, len(p.Credentials))
			}
		})
		var bareHot []time.Duration
		for range 10 {
			t := time.Now()
			fetch(b, s, append([]string{"summary"}, hotNames...))
			bareHot = append(bareHot, time.Since(t))
		}
		report(b, "overview first page through the gateway, cache expired: p50 %v of 10 (goal < 200 ms); bare fetch of the summary and the %d leaves of the set needing attention: p50 %v",
			first, len(hotNames), p50(bareHot))
		filtered := timed(5, "?status=due_soon&q=t0001", func(credential.OverviewPage) {})
		report(b, "filtered search (status=due_soon&q=t0001), cache expired: p50 %v of 5", filtered)
		search := timed(3, "?q=t0001", func(credential.OverviewPage) {})
		report(b, "search with no status filter (every leaf read), cache expired: p50 %v of 3", search)
		time.Sleep(ttl + 50*time.Millisecond)
		t := time.Now()
		seen, pages := 0, 0
		for page := 1; ; page++ {
			p := list("?status=overdue&per_page=100&page=" + strconv.Itoa(page))
			seen, pages = seen+len(p.Credentials), page
			if seen >= p.Total {
				break
			}
		}
		report(b, "full listing of the overdue set, cache expired at the start: %d credentials in %d pages, %v", seen, pages, time.Since(t).Round(time.Millisecond))

		// One tenant's change in a leaf of that index: marked pending, then
		// rewritten, as every rotation does, 16 tenants at a time, the
		// tenants spread over the index as due ones are.
		want := min(160, max(tenants/20, 1))
		ids := make([]string, 0, want)
		for i := 0; i < len(keys) && len(ids) < want; i += max(len(keys)/want, 1) {
			ids = append(ids, keys[i][9:])
		}
		var mu sync.Mutex
		var changes []time.Duration
		var wg sync.WaitGroup
		next := make(chan string)
		for range 16 {
			wg.Go(func() {
				for id := range next {
					e := entries[id]
					t := time.Now()
					e.State = credential.StatePending
					if err := svc.WriteIndexEntries(ctx, []string{id}, map[string]credential.IndexEntry{id: e}); err != nil {
						b.Error(err)
					}
					e.State, e.LastRotated = credential.StateCurrent, credential.FormatTime(now)
					if err := svc.WriteIndexEntries(ctx, []string{id}, map[string]credential.IndexEntry{id: e}); err != nil {
						b.Error(err)
					}
					mu.Lock()
					changes = append(changes, time.Since(t))
					mu.Unlock()
				}
			})
		}
		for _, id := range ids {
			next <- id
		}
		close(next)
		wg.Wait()
		report(b, "a change's two index writes (pending, then rewritten; 16 tenants at a time, spread over the index): p50 %v, p99 %v of %d", p50(changes), p99(changes), len(changes))
	}
}

func p50(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2].Round(time.Millisecond)
}

func p99(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[min(len(s)-1, len(s)*99/100)].Round(time.Millisecond)
}

// leafDocs lists a family's leaves from its layout and sums their sizes.
func leafDocs(tb testing.TB, s *devenv.TestStack, prefix string) ([]string, int) {
	ctx := context.Background()
	kv := s.Vault.Root().KVv2(credential.DefaultIndexMount)
	leaves := "0-0" // a family that never split has no layout
	if lay, err := kv.Get(ctx, prefix+"/layout"); err == nil {
		leaves = lay.Data["leaves"].(string)
	} else if !errors.Is(err, vaultapi.ErrSecretNotFound) {
		tb.Fatal(err)
	}
	var names []string
	for _, n := range strings.Split(leaves, ",") {
		names = append(names, prefix+"/"+n)
	}
	size := 0
	for _, n := range names {
		sec, err := kv.Get(ctx, n)
		if err == nil {
			size += len(fmt.Sprint(sec.Data["tenants"]))
		} else if !errors.Is(err, vaultapi.ErrSecretNotFound) {
			tb.Fatal(err)
		}
	}
	return names, size
}

// fetch gets documents of the index mount 16 at a time, decoding nothing.
func fetch(tb testing.TB, s *devenv.TestStack, paths []string) {
	ctx := context.Background()
	c := s.Vault.Root()
	var wg sync.WaitGroup
	next := make(chan string)
	for range credential.DefaultConcurrency {
		wg.Go(func() {
			for p := range next {
				r := c.NewRequest(http.MethodGet, "/v1/"+credential.DefaultIndexMount+"/data/"+p)
				resp, err := c.RawRequestWithContext(ctx, r)
				if resp != nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err != nil && (resp == nil || resp.StatusCode != http.StatusNotFound) {
					tb.Error(err)
				}
			}
		})
	}
	for _, p := range paths {
		next <- p
	}
	close(next)
	wg.Wait()
}

// report logs a figure and prints it at once (a benchmark's log shows
// only when it ends).
func report(b *testing.B, format string, args ...any) {
	b.Helper()
	b.Logf(format, args...)
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}
