package backup_test

import (
	"context"
	"testing"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/app"
	"smtp-vault/shared/vault"
)

// BenchmarkBackupRestoreVerify seeds 10,000 tenants (BACKUP_BENCH_TENANTS
// changes it), each with a password sealed under its own Transit data key,
// then times one backup into the local bucket, and one restore into a
// fresh Vault with the check that every credential decrypts: the work of
// a Vault-loss recovery, minus starting the fresh Vault. Goal: under 5
// minutes on the 2-core machine (the seed's RTO is 30 minutes).
func BenchmarkBackupRestoreVerify(b *testing.B) {
	tenants := devenv.EnvCount(b, "BACKUP_BENCH_TENANTS", 10_000)
	st := devenv.StartTestStack(b, 1)
	ctx := context.Background()
	start := time.Now()
	st.SeedSealedTenants(b, tenants)
	b.Logf("seeded %d tenants in %v", tenants, time.Since(start).Round(time.Millisecond))
	bc := devenv.BackupConfig(b.TempDir(), time.Now)
	key := st.Vault.UnsealKey()
	unseal := func(ctx context.Context, v *vault.Client) error {
		_, err := v.Unseal(ctx, key)
		return err
	}
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		addr, err := devenv.FreeAddr()
		if err != nil {
			b.Fatal(err)
		}
		fresh, err := devenv.StartVault(ctx, b.TempDir(), addr)
		if err != nil {
			b.Fatal(err)
		}
		bc.RestoreTargets = []string{fresh.Addr} // named in the function's configuration
		bk, err := st.App.NewBackups(ctx, bc)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
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
		b.StopTimer()
		fresh.Stop()
		if v := rep.Verification; v == nil || v.Decrypted != tenants+1 || len(v.Failed) != 0 {
			b.Fatalf("verification %+v", v)
		}
		b.Logf("%d tenants: snapshot %.1f MiB, backup %v, restore + unseal + verify %v, total %v",
			tenants, float64(res.Backup.SnapshotSize)/(1<<20), t1.Sub(t0).Round(time.Millisecond), t2.Sub(t1).Round(time.Millisecond), t2.Sub(t0).Round(time.Millisecond))
		b.StartTimer()
	}
}
