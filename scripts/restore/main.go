// Command restore is the operator command for a lost Vault: it restores a
// backup from the backups bucket into a fresh Vault, unseals it with the
// original Vault's unseal keys, checks that every tenant's credential
// decrypts (and, with -login, logs in over SMTP), and prints a report.
// The backup is verified completely (checksum, key, every chunk) before
// the fresh Vault is touched. See docs/runbook.md.
//
//	VAULT_TARGET_TOKEN=<fresh Vault's root token> VAULT_UNSEAL_KEYS=<original key(s), comma-separated> \
//	  go run ./scripts/restore -target http://127.0.0.1:8300 [-backup latest] [-login]
//	go run ./scripts/restore -list
//
// The functions' settings (VAULT_AUTH_METHOD and its credentials, AUDIT_BUCKET,
// S3_*, BACKUP_BUCKET, BACKUP_KMS_KEY_ID or BACKUP_KEY_FILE) come from the
// environment as for the functions; the check logs in to the restored
// Vault as the functions do. With the local stack's .local/functions.env
// sourced (per-function AppRole logins) and no VAULT_ROLE_ID, it logs in
// as the rotate-sweep function, whose policy lists the tenants and
// decrypts, as the check must. The check shows count, rate and time left
// (a bar on a terminal, a line every ten seconds otherwise) and names each
// tenant that fails as it fails.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	"smtp-vault/scripts/progress"
	"smtp-vault/shared/app"
	"smtp-vault/shared/backup"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/vault"
)

func main() {
	name := flag.String("backup", "latest", "the backup to restore: its name (see -list) or latest")
	target := flag.String("target", "", "address of the fresh Vault to restore into")
	login := flag.Bool("login", false, "also log in over SMTP with every restored credential")
	list := flag.Bool("list", false, "list the complete backups and exit")
	by := flag.String("by", "operator:restore", "who runs the restore, for the audit trail")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *name, *target, *login, *list, *by); err != nil {
		fmt.Fprintln(os.Stderr, "restore:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, name, target string, login, list bool, by string) error {
	app.UseFunctionLogin("rotate-sweep")
	a, err := app.FromEnvironment(ctx)
	if err != nil {
		return err
	}
	bc, err := app.BackupConfigFromEnv()
	if err != nil {
		return err
	}
	// The operator names the target on the command line: that is the
	// restore target this run is configured for.
	if target != "" {
		bc.RestoreTargets = append(bc.RestoreTargets, target)
	}
	b, err := a.NewBackups(ctx, bc)
	if err != nil {
		return err
	}
	if list {
		all, err := b.Service.List(ctx)
		if err != nil {
			return err
		}
		for _, i := range all {
			fmt.Printf("%s  %s  %d bytes  vault %s  key %s\n", i.Name, i.Time.Format(time.RFC3339), i.Size, i.VaultVersion, i.KeyID)
		}
		fmt.Printf("%d complete backups\n", len(all))
		return nil
	}
	var unseal func(context.Context, *vault.Client) error
	if keys := os.Getenv("VAULT_UNSEAL_KEYS"); keys != "" {
		unseal = func(ctx context.Context, v *vault.Client) error {
			for _, k := range strings.Split(keys, ",") {
				sealed, err := v.Unseal(ctx, strings.TrimSpace(k))
				if err != nil {
					return err
				}
				if !sealed {
					fmt.Println("unsealed with the original unseal key")
					return nil
				}
			}
			return fmt.Errorf("still sealed after %d key shares", len(strings.Split(keys, ",")))
		}
	}
	start := time.Now()
	var bar *progress.Bar
	checked := func(c credential.TenantCheck, done, total int) {
		if bar == nil {
			bar = progress.New(os.Stdout, "check", total)
		}
		if failed(c) {
			bar.Fail(1)
			bar.Printf("tenant   %s FAILED %s", c.TenantID, c.Error)
			return
		}
		bar.Add(1)
	}
	rep, checks, err := b.Restore(ctx, app.RestoreRequest{
		Backup: name, TargetAddr: target, TargetToken: os.Getenv("VAULT_TARGET_TOKEN"), SMTPLogin: login, RequestedBy: by,
		Checked: checked,
	}, unseal, func(p backup.Progress) {
		pct := 100.0
		if p.Total > 0 {
			pct = 100 * float64(p.Done) / float64(p.Total)
		}
		fmt.Printf("%-8s %10d / %d bytes (%5.1f%%)\n", p.Phase, p.Done, p.Total, pct)
	})
	if bar != nil {
		bar.Finish()
	}
	if rep.Backup.Name != "" {
		fmt.Printf("backup   %s (taken %s, vault %s, sha256 %s, key %s)\n", rep.Backup.Name, rep.Backup.Time.Format(time.RFC3339), rep.Backup.VaultVersion, rep.Backup.SHA256, rep.Backup.KeyID)
	}
	for _, c := range checks {
		if failed(c) {
			fmt.Printf("tenant   %s FAILED %s\n", c.TenantID, c.Error)
		}
	}
	if v := rep.Verification; v != nil {
		fmt.Printf("verified %d of %d tenants' credentials decrypt", v.Decrypted, v.Tenants)
		if login {
			fmt.Print(" and log in")
		}
		fmt.Printf("; %d failed; %s in all\n", len(v.Failed), time.Since(start).Round(time.Millisecond))
		if len(v.Failed) > 0 && err == nil {
			err = fmt.Errorf("%d tenants failed the check", len(v.Failed))
		}
	}
	return err
}

// failed is a tenant whose credential did not decrypt or, when asked,
// did not log in.
func failed(c credential.TenantCheck) bool {
	return !c.Decrypted || (c.LoggedIn != nil && !*c.LoggedIn)
}
