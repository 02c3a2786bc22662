package backup_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/crypto"
	"smtp-vault/shared/vault"
)

// BenchmarkBackupRestoreVerify seeds 10,000 tenants (BACKUP_BENCH_TENANTS
// changes it), each with a password sealed under its own Transit data key,
// then times one backup into the local bucket, and one restore into a
// fresh Vault with the check that every credential decrypts: the work of
// a Vault-loss recovery, minus starting the fresh Vault. Goal: under 5
// minutes on the 2-core machine (the seed's RTO is 30 minutes).
func BenchmarkBackupRestoreVerify(b *testing.B) {
	tenants := 10_000
	if v := os.Getenv("BACKUP_BENCH_TENANTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			b.Fatalf("BACKUP_BENCH_TENANTS=%q", v)
		}
		tenants = n
	}
	st := devenv.StartTestStack(b, 1)
	ctx := context.Background()
	start := time.Now()
	seedSealed(b, st, tenants)
	b.Logf("seeded %d tenants in %v", tenants, time.Since(start).Round(time.Millisecond))
	bk, err := st.App.NewBackups(ctx, devenv.BackupConfig(b.TempDir(), time.Now))
	if err != nil {
		b.Fatal(err)
	}
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

// seedSealed writes n tenants' admin records with passwords sealed as the
// store function seals them, 32 writes in flight.
func seedSealed(b *testing.B, st *devenv.TestStack, n int) {
	ctx := context.Background()
	v := st.App.Vault
	last := credential.FormatTime(time.Now().Add(-24 * time.Hour))
	var wg sync.WaitGroup
	ids := make(chan string)
	errs := make(chan error, 1)
	for range 32 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				// Sealed as the store function seals: a data key of the
				// tenant's derived Transit key, AAD <tenant>/password.
				dk, wrapped, err := v.DataKey(ctx, st.App.Config.TransitKey, id)
				var sealed string
				if err == nil {
					sealed, err = crypto.Seal(dk, []byte("bench-"+id), crypto.AAD(id, "password"))
				}
				if err == nil {
					_, err = v.WriteCAS(ctx, credential.AdminPath(id), map[string]string{
						"username": "admin@" + id[:8] + ".example.test", "password": sealed, "data_key": wrapped,
						"webmail_url": "https://mail." + id[:8] + ".example.test", "created_at": last, "last_rotated": last,
						"rotation_policy": credential.RotationPolicy, "smtp_addr": "127.0.0.1:1",
					}, 0)
				}
				if err != nil {
					select {
					case errs <- fmt.Errorf("seed %s: %w", id, err):
					default:
					}
				}
			}
		}()
	}
	for range n {
		ids <- uuid.NewString()
	}
	close(ids)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}
