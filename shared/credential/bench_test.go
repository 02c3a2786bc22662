package credential_test

import (
	"context"
	"io"
	"testing"
	"time"

	vaultapi "github.com/hashicorp/vault/api"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
)

// BenchmarkSweep seeds 10,000 tenants (SWEEP_BENCH_TENANTS changes it) in
// the local Vault, none of them due, builds the status index, and times a
// sweep beside the bare read of every tenant's metadata (what the sweep
// did before the index: devenv's ReadEveryMetadata). The goal is a sweep
// at most 2x that bare read (docs/measurements.md).
func BenchmarkSweep(b *testing.B) {
	tenants := devenv.EnvCount(b, "SWEEP_BENCH_TENANTS", 10_000)
	s := devenv.StartTestStack(b, 1)
	ctx := context.Background()
	start := time.Now()
	last := time.Now().Add(-10 * 24 * time.Hour) // none due or near
	s.SeedPlaceholderTenants(b, tenants, func(int) time.Time { return last })
	// The stores that made them would have indexed them; so does a rebuild.
	for {
		rep, err := s.App.API.Credentials.RebuildIndex(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Done {
			break
		}
	}
	b.Logf("seeded and indexed %d tenants in %v", tenants, time.Since(start).Round(time.Millisecond))

	var bare, sweep time.Duration
	b.Run("bare-list-and-metadata", func(b *testing.B) {
		for range b.N {
			s.ReadEveryMetadata(b)
		}
		bare = b.Elapsed() / time.Duration(b.N)
	})
	b.Run("sweep-none-due", func(b *testing.B) {
		sw := s.App.API.Credentials
		for range b.N {
			sum, err := sw.Sweep(ctx)
			if err != nil {
				b.Fatal(err)
			}
			if sum.Scanned != tenants+1 || sum.Due+sum.Notified+sum.Failed+sum.Queued != 0 {
				b.Fatalf("sweep: %+v", sum)
			}
		}
		sweep = b.Elapsed() / time.Duration(b.N)
	})
	if bare > 0 && sweep > 0 {
		b.Logf("%d tenants: bare list + metadata %v, sweep %v: %.2fx (goal at most 2x)", tenants, bare.Round(time.Millisecond), sweep.Round(time.Millisecond), float64(sweep)/float64(bare))
	}
}

// BenchmarkRekey seeds REKEY_BENCH_TENANTS tenants (default 10,000), each
// password sealed under its own Transit data key, then times what
// scripts/rekey -rotate does: rotate the master key and rewrap every
// tenant's data key through RewrapAll, as the command does (16 at a time), each under its
// lock with check-and-set and an audit record (docs/runbook.md).
func BenchmarkRekey(b *testing.B) {
	tenants := devenv.EnvCount(b, "REKEY_BENCH_TENANTS", 10_000)
	s := devenv.StartTestStack(b, 1)
	ctx := context.Background()
	s.SeedSealedTenants(b, tenants)
	tok, err := s.Vault.Root().Auth().Token().CreateWithContext(ctx, &vaultapi.TokenCreateRequest{Policies: []string{devenv.RekeyPolicy}, NoParent: true})
	if err != nil {
		b.Fatal(err)
	}
	cfg := s.App.Config
	cfg.VaultAuthMethod, cfg.VaultToken, cfg.VaultRoleID, cfg.VaultSecretID = "token", tok.Auth.ClientToken, "", ""
	op, err := app.New(ctx, cfg, app.Options{AuditOut: io.Discard, LogOut: io.Discard, Verifier: s.Verifier})
	if err != nil {
		b.Fatal(err)
	}
	for range b.N {
		t0 := time.Now()
		if err := op.Vault.RotateKey(ctx, cfg.TransitKey); err != nil {
			b.Fatal(err)
		}
		// The command's own path: scripts/rekey lists the tenants (the
		// seeded ones and the stack's demo tenant) and rewraps them with
		// RewrapAll.
		results, err := op.API.Credentials.RewrapAll(ctx, nil, credential.Actor{UserID: "operator:bench"}, nil)
		if err != nil {
			b.Fatal(err)
		}
		failed := 0
		for _, r := range results {
			if r.Err != nil || !r.Changed {
				failed++
			}
		}
		if failed != 0 || len(results) < tenants {
			b.Fatalf("%d of %d tenants not rewrapped (%d listed)", failed, tenants, len(results))
		}
		b.ReportMetric(time.Since(t0).Seconds(), "wall-s")
		b.Logf("rotated the master key and rewrapped %d tenants in %v", tenants, time.Since(t0).Round(time.Millisecond))
	}
}
