package api_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
)

// jobQueue keeps a compromise response's jobs for the benchmark to run.
type jobQueue struct {
	mu   sync.Mutex
	jobs []credential.ResetJob
}

func (q *jobQueue) Send(_ context.Context, jobs []credential.ResetJob) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, jobs...)
	return len(jobs), nil
}

func (q *jobQueue) take() []credential.ResetJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	jobs := q.jobs
	q.jobs = nil
	return jobs
}

// BenchmarkCompromiseResponse stores RESET_BENCH_TENANTS tenants (default
// 10,000) on the MailU stand-in against the local Vault, then runs one
// compromise response for them through its jobs as the emergency-reset
// worker does: the chunks,
// RESET_BENCH_WORKERS (default 4) at a time as ResetQueue's mapping runs
// invocations in parallel, each resetting Config.Concurrency tenants at
// once. It reports the wall time, the tenants reset per second, and each
// chunk's p50/p99. Goal (SPEC section 6, docs/measurements.md): 10,000
// tenants in under 5 minutes on the 2-core machine.
func BenchmarkCompromiseResponse(b *testing.B) {
	tenants := devenv.EnvCount(b, "RESET_BENCH_TENANTS", 10_000)
	workers := devenv.EnvCount(b, "RESET_BENCH_WORKERS", 4)
	s := devenv.StartTestStack(b, 1)
	ctx := context.Background()
	q := &jobQueue{}
	// Each part runs as its function does in AWS, with its own Vault
	// identity and policy only: store seeds, emergency-reset responds.
	// (Stack.App's token carries all ten policies and Vault's templated
	// default one, which Vault parses again on every request.)
	wire := func(function string) *app.App {
		cfg, err := s.Vault.FunctionConfig(s.App.Config, function)
		if err != nil {
			b.Fatal(err)
		}
		a, err := app.New(ctx, cfg, app.Options{AuditOut: io.Discard, LogOut: io.Discard, Now: s.Clock.Now, ResetQueue: q, Verifier: s.Verifier, Notifier: s.Notifications})
		if err != nil {
			b.Fatal(err)
		}
		return a
	}
	svc := wire("emergency-reset").API.Credentials
	start := time.Now()
	ids := seedMailUTenants(b, s, wire("store").API.Credentials, tenants)
	b.Logf("stored %d tenants on the MailU stand-in in %v", tenants, time.Since(start).Round(time.Millisecond))

	for i := range b.N {
		incident := fmt.Sprintf("BENCH-%d-%d", time.Now().Unix(), i)
		cpu := devenv.SampleCPU()
		mark, err := s.Vault.MarkVaultRequests()
		if err != nil {
			b.Fatal(err)
		}
		profiled := profileVault(b, s.Vault, os.Getenv("RESET_BENCH_VAULT_PROFILE"))
		t0 := time.Now()
		st, err := svc.StartCompromiseResponse(ctx, credential.CompromiseRequest{IncidentID: incident, TenantIDs: ids, Reason: "benchmark", Actor: credential.Actor{UserID: "bench"}})
		if err != nil {
			b.Fatal(err)
		}
		answered := time.Since(t0)
		var (
			mu        sync.Mutex
			durations []time.Duration
		)
		for jobs := q.take(); len(jobs) > 0; jobs = q.take() {
			next := make(chan credential.ResetJob)
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					for j := range next {
						t := time.Now()
						if _, err := svc.RunResetJob(ctx, j); err != nil {
							b.Errorf("job %+v: %v", j, err)
						}
						mu.Lock()
						durations = append(durations, time.Since(t))
						mu.Unlock()
					}
				})
			}
			for _, j := range jobs {
				next <- j
			}
			close(next)
			wg.Wait()
		}
		wall := time.Since(t0)
		used := devenv.SampleCPU().Since(cpu)
		if err := <-profiled; err != nil {
			b.Error(err)
		}
		st, err = svc.CompromiseResponse(ctx, incident, 1, 1)
		if err != nil || st.State != credential.StateFinished || st.Reset != tenants || st.Total != tenants {
			b.Fatalf("response %s: state %s, reset %d of %d (total %d), failed %d, %v", st.ResponseID, st.State, st.Reset, tenants, st.Total, st.Failed, err)
		}
		slices.Sort(durations)
		b.ReportMetric(wall.Seconds(), "wall-s")
		b.ReportMetric(float64(tenants)/wall.Seconds(), "tenants/s")
		b.ReportMetric(answered.Seconds()*1000, "start-ms")
		b.ReportMetric(float64(durations[len(durations)/2].Milliseconds()), "job-p50-ms")
		b.ReportMetric(float64(durations[len(durations)*99/100].Milliseconds()), "job-p99-ms")
		b.Logf("%d tenants reset in %v (%.1f/s; goal 10,000 in under 5 min) with %d workers: the start answered in %v; %d jobs, p50 %v, p99 %v",
			tenants, wall.Round(time.Millisecond), float64(tenants)/wall.Seconds(), workers, answered.Round(time.Millisecond), len(durations),
			durations[len(durations)/2].Round(time.Millisecond), durations[len(durations)*99/100].Round(time.Millisecond))
		var total time.Duration
		for _, d := range used {
			total += d
		}
		b.ReportMetric(total.Seconds()/wall.Seconds(), "cores-busy")
		b.Logf("CPU time during the response (%.2f of the machine's cores busy on average): %v", total.Seconds()/wall.Seconds(), used)
		asked, err := mark.Since()
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(asked.Total())/float64(tenants), "vault-requests/tenant")
		if vcpu := used["vault"]; vcpu > 0 {
			b.ReportMetric(float64(vcpu.Microseconds())/float64(asked.Total()), "vault-cpu-us/request")
		}
		b.Logf("Vault requests during the response, per tenant: %s", asked.PerUnit(tenants, 25))
	}
}

// profileVault writes a CPU profile of Vault to path (sys/pprof/profile,
// with the root token), taken over 45 seconds from 30 seconds into the
// response; with path empty it does nothing. The returned channel carries
// the outcome.
func profileVault(b *testing.B, v *devenv.Vault, path string) <-chan error {
	done := make(chan error, 1)
	if path == "" {
		done <- nil
		return done
	}
	go func() {
		time.Sleep(30 * time.Second)
		req := v.Root().NewRequest(http.MethodGet, "/v1/sys/pprof/profile")
		req.Params.Set("seconds", "45") // under the root client's 60-second timeout
		resp, err := v.Root().RawRequestWithContext(context.Background(), req)
		if err != nil {
			done <- fmt.Errorf("profile Vault: %w", err)
			return
		}
		defer resp.Body.Close()
		f, err := os.Create(path)
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			err = errors.Join(err, f.Close())
		}
		if err == nil {
			b.Logf("Vault's CPU profile (45 s from 30 s into the response) is in %s", path)
		}
		done <- err
	}()
	return done
}

// seedMailUTenants creates n tenants, each with its own domain on the
// stack's first MailU stand-in instance, and stores them through the
// domain (a real admin user, a real SMTP login).
func seedMailUTenants(b *testing.B, s *devenv.TestStack, svc *credential.Service, n int) []string {
	ctx := context.Background()
	host := s.Tenants[0]
	hc := &http.Client{Timeout: 10 * time.Second}
	ids := make([]string, n)
	var wg sync.WaitGroup
	next := make(chan int)
	errs := make(chan error, 1)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				id := uuid.NewString()
				domain := "t" + strings.ReplaceAll(id[:13], "-", "") + ".bench.test"
				err := createDomain(ctx, hc, host.MailU.APIURL, host.MailUToken, domain)
				if err == nil {
					in := s.StoreEvent(host)
					in.TenantID, in.Domain, in.WebmailURL = id, domain, "https://mail."+domain
					_, err = svc.Store(ctx, in, credential.Actor{UserID: "bench"})
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("seed tenant %d: %w", i, err):
					default:
					}
				}
				ids[i] = id
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	return ids
}

func createDomain(ctx context.Context, hc *http.Client, apiURL, token, domain string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, apiURL+"/domain", strings.NewReader(`{"name":"`+domain+`"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		body, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("create domain %s: %d %s", domain, resp.StatusCode, body)
	}
	return nil
}
