// Command rekey is the operator command for Transit master key rotation:
// it rotates the key (with -rotate) and rewraps every tenant's data keys
// under the newest key version, without any password or data key leaving
// Vault. Run it with a token holding the smtp-vault-rekey policy:
//
//	VAULT_ADDR=... VAULT_AUTH_METHOD=token VAULT_TOKEN=... go run ./scripts/rekey -rotate
//
// It is safe to re-run: a tenant already on the newest version is left
// alone, and each tenant is rewrapped under its change lock with
// check-and-set.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"

	"smtp-vault/scripts/progress"
	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
)

func main() {
	rotate := flag.Bool("rotate", false, "rotate the Transit key before rewrapping")
	only := flag.String("tenant", "", "rewrap only this tenant")
	flag.Parse()
	if err := run(*rotate, *only); err != nil {
		fmt.Fprintln(os.Stderr, "rekey:", err)
		os.Exit(1)
	}
}

func run(rotate bool, only string) error {
	ctx := context.Background()
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
	tenants := []string{only}
	if only == "" {
		keys, err := a.Vault.List(ctx, "")
		if err != nil {
			return err
		}
		tenants = tenants[:0]
		for _, k := range keys {
			if id := strings.TrimSuffix(k, "/"); credential.ValidateTenantID(id) == nil {
				tenants = append(tenants, id)
			}
		}
	}
	actor := credential.Actor{UserID: "operator:rekey"}
	var rewrapped, unchanged, failed int
	bar := progress.New(os.Stderr, "rewrap", len(tenants))
	defer bar.Finish()
	for _, id := range tenants {
		bar.Add(1)
		changed, err := a.API.Credentials.Rewrap(ctx, id, actor)
		switch {
		case err != nil:
			failed++
			a.Log.Error("rewrap failed", "tenant_id", id, "error", err)
		case changed:
			rewrapped++
		default:
			unchanged++
		}
	}
	a.Log.Info("rekey done", "tenants", len(tenants), "rewrapped", rewrapped, "unchanged", unchanged, "failed", failed)
	if failed > 0 {
		return fmt.Errorf("%d tenants failed; re-run to finish them", failed)
	}
	return nil
}
