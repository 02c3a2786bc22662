// Command staff adds, lists, disables, enables and removes the members of
// staff who re-authenticate in Vault, and resets their TOTP:
//
//	staff add -role support-team <sub>   userpass user, entity, TOTP: prints the password once,
//	                                     the otpauth:// URI and a QR code to scan
//	staff list
//	staff disable <sub> | enable <sub>
//	staff reset-totp <sub>               a new TOTP secret; the old one stops working at once
//	staff remove <sub>
//	staff unlock <sub>                   lift the hold of too many failed re-authentications in a day
//
// <sub> is the subject of the member's bearer tokens; their roles come from
// the identity provider's token, the one given here is recorded for the
// operator's eyes (docs/access.md, "Staff"). It talks to $VAULT_ADDR with
// $VAULT_TOKEN (the smtp-vault-staff-admin policy) and audits every action
// where the functions do (AUDIT_BUCKET and the S3 settings, as for
// scripts/rekey; locally `source .local/dev.env`).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	vaultapi "github.com/hashicorp/vault/api"
	"github.com/skip2/go-qrcode"

	"smtp-vault/scripts/vaultsetup"
	"smtp-vault/shared/app"
	"smtp-vault/shared/auth"
)

const (
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

const usage = `usage: staff <command> [flags] [name]

commands:
  add -role <role> [-password-stdin] <sub>   add a member of staff and enrol their TOTP
  list                                       every member: role, disabled, TOTP enrolment
  disable <sub>                              refuse their re-authentication (keeps everything)
  enable <sub>                               undo disable
  reset-totp <sub>                           enrol a new TOTP secret; the old one stops working
  remove <sub>                               delete their userpass user, entity and TOTP secret
  unlock <sub>                               lift the hold of more than 10 failed re-authentications in 24 hours

<sub> is the subject (sub) of the member's bearer tokens. Roles: support-team, platform-admin.
Environment: VAULT_ADDR, VAULT_TOKEN (smtp-vault-staff-admin), AUDIT_BUCKET and the S3 settings
of the audit trail (as for the functions; locally: source .local/dev.env).
Exit 0: done; 1: failed (or done but not audited: the message says which); 2: usage.
`

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return 0
	}
	cmd, rest := args[0], args[1:]
	fs := flag.NewFlagSet("staff "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	role := fs.String("role", "", "add: the member's role, as their identity provider grants it (support-team or platform-admin)")
	passwordStdin := fs.Bool("password-stdin", false, "add: read the member's password from the first line of stdin instead of generating one")
	if err := fs.Parse(rest); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return exitUsage
	}
	wantName := cmd != "list"
	if (wantName && fs.NArg() != 1) || (!wantName && fs.NArg() != 0) {
		fmt.Fprintf(stderr, "staff %s: wrong arguments %v\n\n%s", cmd, fs.Args(), usage)
		return exitUsage
	}
	name := fs.Arg(0)
	switch cmd {
	case "add", "list", "disable", "enable", "reset-totp", "remove", "unlock":
	default:
		fmt.Fprintf(stderr, "staff: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	if cmd == "add" && *role == "" {
		fmt.Fprintln(stderr, "staff add: -role is required (support-team or platform-admin)")
		return exitUsage
	}
	staff, err := connect(ctx, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "staff:", err)
		return exitError
	}
	if err := do(ctx, staff, cmd, name, auth.Role(*role), *passwordStdin, stdin, stdout); err != nil {
		fmt.Fprintf(stderr, "staff %s: %v\n", cmd, err)
		return exitError
	}
	return 0
}

// connect builds the Staff from the environment: the Vault client from
// VAULT_ADDR and VAULT_TOKEN, the audit recorder the functions use.
func connect(ctx context.Context, stderr io.Writer) (*vaultsetup.Staff, error) {
	addr, token := os.Getenv("VAULT_ADDR"), os.Getenv("VAULT_TOKEN")
	if addr == "" || token == "" {
		return nil, errors.New("set VAULT_ADDR and VAULT_TOKEN (a token with the smtp-vault-staff-admin policy)")
	}
	vc := vaultapi.DefaultConfig()
	vc.Address = addr
	vc.Timeout = 30 * time.Second
	c, err := vaultapi.NewClient(vc)
	if err != nil {
		return nil, err
	}
	c.SetToken(token)
	by := "operator"
	if s, err := c.Auth().Token().LookupSelfWithContext(ctx); err == nil && s != nil {
		if n, _ := s.Data["display_name"].(string); n != "" {
			by = "operator:" + n
		}
	} else {
		return nil, fmt.Errorf("look up the Vault token: %w", err)
	}
	methodID, err := vaultsetup.TOTPMethodID(ctx, c)
	if err != nil {
		return nil, err
	}
	// The audit trail is the functions': same bucket, same chain, same
	// fail-closed recorder. The command's own Vault use is c above.
	cfg, err := app.FromEnv()
	if err != nil {
		return nil, err
	}
	if cfg.AuditBucket == "" {
		return nil, errors.New("AUDIT_BUCKET is required: every staff action is audited (locally: source .local/dev.env)")
	}
	cfg.VaultAddr, cfg.VaultAuthMethod, cfg.VaultToken = addr, "token", token
	a, err := app.New(ctx, cfg, app.Options{AuditOut: stderr, LogOut: stderr})
	if err != nil {
		return nil, err
	}
	return &vaultsetup.Staff{Vault: c, TOTPMethodID: methodID, Audit: a.Audit, Attempts: a.Vault, AttemptsMount: cfg.AccessMount, By: by}, nil
}

func do(ctx context.Context, s *vaultsetup.Staff, cmd, name string, role auth.Role, passwordStdin bool, stdin io.Reader, stdout io.Writer) error {
	switch cmd {
	case "add":
		password, generated := "", false
		if passwordStdin {
			line, err := bufio.NewReader(stdin).ReadString('\n')
			if err != nil && !errors.Is(err, io.EOF) {
				return fmt.Errorf("read the password: %w", err)
			}
			if password = strings.TrimRight(line, "\r\n"); len(password) < 12 {
				return errors.New("the password from stdin is shorter than 12 characters")
			}
		} else {
			password, generated = rand.Text(), true
		}
		enr, err := s.Add(ctx, name, role, password)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "added %s (%s)\n", strings.ToLower(name), role)
		if generated {
			fmt.Fprintf(stdout, "password (shown once; hand it over in person or through your password manager): %s\n", password)
		}
		return printEnrolment(stdout, enr)
	case "reset-totp":
		enr, err := s.ResetTOTP(ctx, name)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "new TOTP secret for %s; the old one no longer works\n", strings.ToLower(name))
		return printEnrolment(stdout, enr)
	case "disable":
		if err := s.Disable(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "disabled %s: Vault refuses their logins\n", strings.ToLower(name))
	case "enable":
		if err := s.Enable(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "enabled %s\n", strings.ToLower(name))
	case "unlock":
		held, err := s.Unlock(ctx, name)
		if err != nil {
			return err
		}
		if held {
			fmt.Fprintf(stdout, "lifted the re-authentication hold of %s\n", strings.ToLower(name))
		} else {
			fmt.Fprintf(stdout, "%s was not held; their failed attempts are forgotten\n", strings.ToLower(name))
		}
	case "remove":
		if err := s.Remove(ctx, name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s (their audit trail stays)\n", strings.ToLower(name))
	case "list":
		ms, err := s.List(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "NAME\tROLE\tSTATE\tTOTP ENROLLED")
		for _, m := range ms {
			state, totp := "active", "never (cannot re-authenticate)"
			if m.Disabled {
				state = "disabled"
			}
			if !m.TOTPEnrolled.IsZero() {
				totp = m.TOTPEnrolled.Format(time.RFC3339)
			}
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", m.Name, m.Role, state, totp)
		}
		return w.Flush()
	}
	return nil
}

// printEnrolment shows the member's TOTP secret as an otpauth:// URI and a
// QR code for the terminal.
func printEnrolment(w io.Writer, enr vaultsetup.Enrolment) error {
	qr, err := qrcode.New(enr.URL, qrcode.Medium)
	if err != nil {
		return fmt.Errorf("draw the QR code: %w", err)
	}
	fmt.Fprintf(w, "TOTP: scan the QR code with an authenticator app, or enter this URI:\n%s\n\n%s\n", enr.URL, qr.ToSmallString(false))
	return nil
}
