package api_test

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
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/app"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/vault"
)

// BenchmarkScale seeds SCALE_BENCH_TENANTS tenants (default 100,000) once,
// in parallel, each sealed under its own Transit data key with the
// custom_metadata a store writes, last rotated over 200 days (a tenth
// overdue, 3.5% due within 7 days), and measures on them, each beside its
// bare I/O:
//
//   - the index rebuild, in invocations of at most Config.RebuildBudget
//     (50 s) each, beside reading every tenant's metadata and record;
//
//   - the size of the index (leaves, the set needing attention) and of the
//     raft snapshot;
//
//   - the overview through the gateway: the first page with the console's
//     cache expired and within it, a filtered search, the full listing of
//     the overdue set, beside reading the documents the first page reads;
//
//   - the daily sweep with 1% due and with nothing due (the clock moved
//     back; jobs queued, not run), beside listing the tenants and reading
//     every leaf;
//
//   - backup, restore into a fresh Vault, and the check of every
//     credential, beside taking the raft snapshot alone.
//
//     SCALE_BENCH_TENANTS=100000 go test -run '^$' -bench BenchmarkScale -benchtime 1x -timeout 120m ./shared/api/
func BenchmarkScale(b *testing.B) {
	tenants := devenv.EnvCount(b, "SCALE_BENCH_TENANTS", 100_000)
	s := devenv.StartTestStack(b, 1)
	ctx := context.Background()
	root := s.Vault.Root()
	all := tenants + len(s.Tenants)
	now := s.Clock.Now()
	t0 := time.Now()
	age := func(i int) int { // days, spread evenly over 200
		if tenants < 200 {
			return i * 199 / max(tenants-1, 1)
		}
		return i % 200
	}
	s.SeedSealedTenantsAt(b, tenants, func(i int) time.Time { return now.Add(-time.Duration(age(i))*24*time.Hour - time.Hour) })
	report(b, "seeded %d tenants (data key, record, metadata; 32 in flight) in %v", tenants, time.Since(t0).Round(time.Second))

	for range b.N {
		cfg := s.App.Config
		queued := &countingQueue{}
		svc := credential.New(credential.Config{Vault: s.App.Vault, TransitKey: cfg.TransitKey, KVMount: cfg.KVMount, IndexMount: cfg.IndexMount,
			Queue: queued, Inline: 0, Now: s.Clock.Now, Notifier: s.Notifications, Log: slog.New(slog.NewJSONHandler(io.Discard, nil))})

		// The rebuild, a Lambda invocation at a time.
		t0 = time.Now()
		var longest time.Duration
		calls := 0
		for {
			calls++
			ictx, cancel := context.WithTimeout(ctx, 15*time.Minute)
			c0 := time.Now()
			rep, err := svc.RebuildIndex(ictx)
			cancel()
			longest = max(longest, time.Since(c0))
			if err != nil {
				b.Fatalf("rebuild call %d: %v", calls, err)
			}
			if rep.Done {
				if rep.Added+rep.Fixed < tenants || rep.Failed != 0 {
					b.Fatalf("rebuild: %+v", rep)
				}
				break
			}
		}
		rebuild := time.Since(t0)
		t0 = time.Now()
		readEveryRecord(b, s)
		report(b, "%d tenants: index rebuild %v in %d invocations, the longest %v; bare list + every metadata and record read %v",
			all, rebuild.Round(time.Millisecond), calls, longest.Round(time.Millisecond), time.Since(t0).Round(time.Millisecond))

		leaves, leafBytes, largest := familySize(b, root, "leaves")
		hot, hotBytes, _ := familySize(b, root, "hot")
		report(b, "the index: %d leaves, %d bytes (%d a tenant), the largest leaf %d bytes; the set needing attention: %d leaves, %d bytes",
			leaves, leafBytes, leafBytes/all, largest, hot, hotBytes)

		scaleOverview(b, s, all)
		scaleSweep(b, s, svc, queued, all)
		scaleBackup(b, s, all)
	}
}

// countingQueue takes the sweep's jobs without running them.
type countingQueue struct{ n atomic.Int64 }

func (q *countingQueue) Send(_ context.Context, jobs []credential.Job) (int, error) {
	q.n.Add(int64(len(jobs)))
	return len(jobs), nil
}

// familySize reads every leaf of one family of the index mount as a
// reader with no index code would: its layout, then each leaf.
func familySize(tb testing.TB, root *vaultapi.Client, prefix string) (leaves, size, largest int) {
	ctx := context.Background()
	kv := root.KVv2(credential.DefaultIndexMount)
	names := []string{"0-0"}
	if lay, err := kv.Get(ctx, prefix+"/layout"); err == nil {
		names = strings.Split(lay.Data["leaves"].(string), ",")
	} else if !errors.Is(err, vaultapi.ErrSecretNotFound) {
		tb.Fatal(err)
	}
	var mu sync.Mutex
	parallel(len(names), func(i int) {
		sec, err := kv.Get(ctx, prefix+"/"+names[i])
		if errors.Is(err, vaultapi.ErrSecretNotFound) {
			return
		}
		if err != nil {
			tb.Error(err)
			return
		}
		n := len(fmt.Sprint(sec.Data["tenants"]))
		mu.Lock()
		leaves, size, largest = leaves+1, size+n, max(largest, n)
		mu.Unlock()
	})
	return leaves, size, largest
}

// parallel calls fn(i) for i in [0, n), 16 at a time (the service's
// Concurrency).
func parallel(n int, fn func(i int)) {
	var wg sync.WaitGroup
	next := make(chan int)
	for range min(credential.DefaultConcurrency, n) {
		wg.Go(func() {
			for i := range next {
				fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
}

// readEveryRecord is the Vault work of a rebuild with no index code: one
// LIST, and each tenant's metadata and record.
func readEveryRecord(tb testing.TB, s *devenv.TestStack) {
	ctx := context.Background()
	keys, err := s.App.Vault.List(ctx, "")
	if err != nil {
		tb.Fatal(err)
	}
	parallel(len(keys), func(i int) {
		p := credential.AdminPath(strings.TrimSuffix(keys[i], "/"))
		if _, err := s.App.Vault.ReadMetadata(ctx, p); err != nil {
			tb.Error(err)
		}
		if _, err := s.App.Vault.Read(ctx, p); err != nil {
			tb.Error(err)
		}
	})
}

func percentiles(d []time.Duration) (p50, p99 time.Duration) {
	slices.Sort(d)
	return d[len(d)/2], d[min(len(d)-1, len(d)*99/100)]
}

func scaleOverview(b *testing.B, s *devenv.TestStack, all int) {
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
	cold := devenv.EnvCount(b, "OVERVIEW_BENCH_COLD", 10)
	timed := func(n int, query string, cold bool) (p50, p99 time.Duration) {
		d := make([]time.Duration, n)
		for i := range d {
			if cold {
				time.Sleep(ttl + 50*time.Millisecond)
			}
			t := time.Now()
			list(query)
			d[i] = time.Since(t)
		}
		return percentiles(d)
	}
	first := list("?page=1")
	if first.Total != all || len(first.Credentials) != min(all, credential.DefaultOverviewPerPage) {
		b.Fatalf("first page: total %d (want %d), %d items", first.Total, all, len(first.Credentials))
	}
	p50, p99 := timed(cold, "?page=1", true)
	report(b, "%d tenants, overview first page through the gateway, cache expired: p50 %v, p99 %v of %d (goal p50 < 200 ms)", all, p50.Round(time.Millisecond), p99.Round(time.Millisecond), cold)
	p50, p99 = timed(50, "?page=1", false)
	report(b, "first page within the %v cache: p50 %v, p99 %v", ttl, p50.Round(time.Millisecond), p99.Round(time.Millisecond))
	// Bare: the documents the first page reads (summary, the set's layout
	// and leaves), fetched and not decoded.
	bare := make([]time.Duration, cold)
	for i := range bare {
		t := time.Now()
		if _, err := s.Vault.Root().KVv2(credential.DefaultIndexMount).Get(context.Background(), "summary"); err != nil {
			b.Fatal(err)
		}
		familySize(b, s.Vault.Root(), "hot")
		bare[i] = time.Since(t)
	}
	bp50, _ := percentiles(bare)
	report(b, "bare read of what the first page reads (summary, the set needing attention): p50 %v", bp50.Round(time.Millisecond))
	fp50, _ := timed(cold, "?status=due_soon&q=t0001", true)
	report(b, "filtered search (status=due_soon, q=t0001), cache expired: p50 %v", fp50.Round(time.Millisecond))
	sp50, _ := timed(max(cold/3, 1), "?q=t0001", true)
	report(b, "search with no status (q=t0001: every leaf read), cache expired: p50 %v", sp50.Round(time.Millisecond))
	t := time.Now()
	_, bytes, _ := familySize(b, s.Vault.Root(), "leaves")
	report(b, "bare read of every leaf of the index (%d bytes): %v", bytes, time.Since(t).Round(time.Millisecond))

	time.Sleep(ttl + 50*time.Millisecond)
	t = time.Now()
	seen := 0
	for page := 1; ; page++ {
		p := list("?status=overdue&per_page=100&page=" + strconv.Itoa(page))
		seen += len(p.Credentials)
		if seen >= p.Total {
			break
		}
	}
	report(b, "full listing of the overdue set from a cold cache: %d credentials in %d pages, %v", seen, (seen+99)/100, time.Since(t).Round(time.Millisecond))
}

func scaleSweep(b *testing.B, s *devenv.TestStack, svc *credential.Service, queued *countingQueue, all int) {
	ctx := context.Background()
	run := func(what string, n int, check func(credential.Summary) bool) {
		d := make([]time.Duration, n)
		for i := range d {
			queued.n.Store(0)
			t := time.Now()
			sum, err := svc.Sweep(ctx)
			d[i] = time.Since(t)
			if err != nil || !check(sum) {
				b.Fatalf("sweep, %s: %+v, %v", what, sum, err)
			}
			report(b, "%d tenants, sweep with %s, run %d of %d: %v (due %d, notified %d, queued %d, index re-read %d)",
				all, what, i+1, n, d[i].Round(time.Millisecond), sum.Due, sum.Notified, queued.n.Load(), sum.Index.Checked)
		}
		p50, _ := percentiles(d)
		report(b, "sweep with %s: p50 %v of %d", what, p50.Round(time.Millisecond), n)
	}
	// Ages are i%200 days: 18 days back, the tenants of 198 and 199 days
	// (1%) are due; 30 days back none is due or near.
	s.Clock.Shift(-18 * 24 * time.Hour)
	run("1% due (jobs queued, not run)", 2, func(sum credential.Summary) bool {
		return sum.Due > 0 && sum.Queued == sum.Due && sum.Failed == 0
	})
	s.Clock.Shift(-12 * 24 * time.Hour)
	run("nothing due", 3, func(sum credential.Summary) bool {
		return sum.Scanned == all && sum.Due+sum.Notified+sum.Failed+sum.Queued == 0
	})
	s.Clock.Shift(30 * 24 * time.Hour)
	t := time.Now()
	keys, err := s.App.Vault.List(ctx, "")
	if err != nil {
		b.Fatal(err)
	}
	list := time.Since(t)
	familySize(b, s.Vault.Root(), "leaves")
	report(b, "bare: list %d tenants %v, then every leaf read: %v in all", len(keys), list.Round(time.Millisecond), time.Since(t).Round(time.Millisecond))
}

func scaleBackup(b *testing.B, st *devenv.TestStack, all int) {
	ctx := context.Background()
	key := st.Vault.UnsealKey()
	unseal := func(ctx context.Context, v *vault.Client) error {
		_, err := v.Unseal(ctx, key)
		return err
	}
	addr, err := devenv.FreeAddr()
	if err != nil {
		b.Fatal(err)
	}
	fresh, err := devenv.StartVault(ctx, b.TempDir(), addr)
	if err != nil {
		b.Fatal(err)
	}
	defer fresh.Stop()
	bc := devenv.BackupConfig(b.TempDir(), time.Now)
	bc.RestoreTargets = []string{fresh.Addr} // named in the function's configuration
	bk, err := st.App.NewBackups(ctx, bc)
	if err != nil {
		b.Fatal(err)
	}
	t := time.Now()
	if err := st.Vault.Root().Sys().RaftSnapshotWithContext(ctx, io.Discard); err != nil {
		b.Fatal(err)
	}
	bare := time.Since(t)
	t0 := time.Now()
	res, err := bk.Service.Backup(ctx)
	if err != nil {
		b.Fatal(err)
	}
	t1 := time.Now()
	rep, _, err := bk.Restore(ctx, app.RestoreRequest{Backup: res.Backup.Name, TargetAddr: fresh.Addr, TargetToken: fresh.Root().Token(), RequestedBy: "bench"}, unseal, nil)
	if err != nil {
		b.Fatal(err)
	}
	t2 := time.Now()
	if v := rep.Verification; v == nil || v.Decrypted != all || len(v.Failed) != 0 {
		b.Fatalf("verification %+v", v)
	}
	report(b, "%d tenants: raft snapshot %.1f MiB (bare snapshot %v), backup %v, restore + unseal + check of every credential %v, total %v (goal < 5 min)",
		all, float64(res.Backup.SnapshotSize)/(1<<20), bare.Round(time.Millisecond), t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), t2.Sub(t0).Round(time.Millisecond))
}

// report logs a figure, and also prints it at once (a benchmark's log
// shows only when it ends, and at 100,000 tenants that is an hour away).
func report(b *testing.B, format string, args ...any) {
	b.Helper()
	b.Logf(format, args...)
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}
