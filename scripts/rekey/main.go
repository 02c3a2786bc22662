// Command rekey is the operator command for Transit master key rotation:
// it rotates the key (with -rotate) and rewraps every tenant's data keys
// under the newest key version, 16 tenants at a time
// (credential.Service.RewrapAll), without any password or data key
// leaving Vault. Run it with a token holding the smtp-vault-rekey policy:
//
//	VAULT_ADDR=... VAULT_AUTH_METHOD=token VAULT_TOKEN=... go run ./scripts/rekey -rotate
//
// It shows count, rate and time left (a bar on a terminal, a line every
// ten seconds otherwise), names each tenant that fails as it fails, and
// exits 1 if any did. It is safe to re-run: a tenant already on the
// newest version is left alone, and each tenant is rewrapped under its
// change lock with check-and-set.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"smtp-vault/scripts/progress"
	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
)

func main() {
	rotate := flag.Bool("rotate", false, "rotate the Transit key before rewrapping")
	only := flag.String("tenant", "", "rewrap only this tenant")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stderr, *rotate, *only); err != nil {
		fmt.Fprintln(os.Stderr, "rekey:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, out io.Writer, rotate bool, only string) error {
	a, err := app.FromEnvironment(ctx)
	if err != nil {
		return err
	}
	if rotate {
		if err := a.Vault.RotateKey(ctx, a.Config.TransitKey); err != nil {
			return err
		}
		a.Log.Info("transit key rotated", "key", a.Config.TransitKey)
	}
	var ids []string
	if only != "" {
		ids = []string{only}
	}
	bar := progress.New(out, "rewrap", len(ids))
	results, err := a.API.Credentials.RewrapAll(ctx, ids, credential.Actor{UserID: "operator:rekey"},
		func(r credential.RewrapResult, done, total int) {
			bar.SetTotal(total)
			if r.Err != nil {
				bar.Fail(1)
				bar.Printf("failed %s: %v", r.TenantID, r.Err)
				return
			}
			bar.Add(1)
		})
	if err != nil {
		return err
	}
	bar.Finish()
	var rewrapped, unchanged, failed int
	for _, r := range results {
		switch {
		case r.Err != nil:
			failed++
			a.Log.Error("rewrap failed", "tenant_id", r.TenantID, "error", r.Err)
		case r.Changed:
			rewrapped++
		default:
			unchanged++
		}
	}
	a.Log.Info("rekey done", "tenants", len(results), "rewrapped", rewrapped, "unchanged", unchanged, "failed", failed)
	if failed > 0 {
		return fmt.Errorf("%d tenants failed; re-run to finish them", failed)
	}
	return nil
}
