// Command gateway runs smtp-vault locally with no AWS account.
//
//	gateway run                      start Vault, MailU stand-ins, their Dovecot front and the API (make run)
//	gateway invoke <function> <file> invoke one function with an event, like sam local invoke
//	gateway token -user <name>       print a bearer token for a demo admin (make token)
//
// It serves the same Lambda handlers that run in AWS, behind a stand-in for
// API Gateway's HTTP API and JWT authorizer, and fires the 02:00 UTC
// schedule.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"smtp-vault/scripts/devenv/devissuer"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"smtp-vault/infra/vault/policies"
	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/app"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/notify"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = run(log, os.Args[2:])
	case "invoke":
		err = invoke(os.Args[2:])
	case "token":
		err = token(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gateway:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: gateway run | invoke <function> <event.json> | token -user <name>")
	os.Exit(2)
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func run(log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	port := fs.String("port", envOr("PORT", "8080"), "gateway port on 127.0.0.1")
	vaultPort := fs.String("vault-port", envOr("VAULT_PORT", "8200"), "Vault port on 127.0.0.1")
	s3Port := fs.String("s3-port", envOr("S3_PORT", "7070"), "S3 server (audit bucket) port on 127.0.0.1")
	controlPort := fs.String("mailu-control-port", envOr("MAILU_CONTROL_PORT", "8025"), "MailU stand-in control port on 127.0.0.1")
	smtpPort := fs.String("smtp-port", envOr("SMTP_PORT", "8587"), "the Dovecot front's STARTTLS submission port (MailU's 587) on 127.0.0.1")
	smtpsPort := fs.String("smtps-port", envOr("SMTPS_PORT", "8465"), "the Dovecot front's implicit-TLS submission port (MailU's 465) on 127.0.0.1")
	fs.Parse(args)

	dir, err := devenv.LocalDir()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	mailu, err := devenv.StartProcessMailU(ctx, filepath.Join(filepath.Dir(self), "mailu-standin"), filepath.Join(dir, "mailu"), "127.0.0.1:"+*controlPort,
		devenv.FrontAddrs{Submission: "127.0.0.1:" + *smtpPort, Submissions: "127.0.0.1:" + *smtpsPort})
	if err != nil {
		return err
	}
	// As the backup function in AWS, the local one restores only to the
	// Vaults BACKUP_RESTORE_TARGETS names.
	targets, err := app.RestoreTargetsFromEnv()
	if err != nil {
		mailu.Close()
		return err
	}
	stack, err := devenv.StartStack(ctx, devenv.StackOptions{
		Dir:            dir,
		VaultAddr:      "127.0.0.1:" + *vaultPort,
		S3Addr:         "127.0.0.1:" + *s3Port,
		APIAddr:        "127.0.0.1:" + *port,
		MailU:          mailu,
		RestoreTargets: targets,
	})
	if err != nil {
		mailu.Close()
		return err
	}
	defer stack.Close()
	if err := stack.WriteDevEnv(filepath.Join(dir, "dev.env")); err != nil {
		return err
	}
	if err := stack.WriteFunctionsEnv(filepath.Join(dir, "functions.env")); err != nil {
		return err
	}
	printBanner(stack, dir)
	go schedule(ctx, log, stack)
	<-ctx.Done()
	fmt.Fprintln(os.Stderr, "stopping: gateway, Dovecot, MailU stand-ins, Vault, S3")
	return nil
}

func printBanner(s *devenv.Stack, dir string) {
	var b strings.Builder
	fmt.Fprintf(&b, "\nsmtp-vault is running\n")
	fmt.Fprintf(&b, "  API          %s\n", s.APIURL)
	fmt.Fprintf(&b, "  console      %s\n", s.ConsoleURL())
	fmt.Fprintf(&b, "               sign in as $ADMIN_USER with $ADMIN_PASSWORD (or $SUPPORT_USER); confirm with the password and `go run ./scripts/totp $ADMIN_TOTP_SECRET`\n")
	fmt.Fprintf(&b, "  Vault        %s (operator token in %s)\n", s.Vault.Addr, filepath.Join(dir, "dev.env"))
	fmt.Fprintf(&b, "  audit bucket %s/%s (Object Lock; S3 keys in dev.env)\n", s.S3.Endpoint, devenv.AuditBucket)
	fmt.Fprintf(&b, "  demo tenants\n")
	for _, t := range s.Tenants {
		fmt.Fprintf(&b, "    %s  %s  smtp %s (STARTTLS), smtps %s (implicit TLS)\n", t.TenantID, t.Domain, t.MailU.SMTPAddr, t.MailU.SMTPSAddr)
	}
	if len(s.Tenants) > 0 {
		fmt.Fprintf(&b, "  SMTP front   Dovecot (MailU 2024.06's submission front) before the MailU stand-in; its CA: %s\n", s.Tenants[0].MailU.CAFile)
	}
	fmt.Fprintf(&b, "  demo admins  %s (platform-admin), %s (support-team); passwords and TOTP secrets in %s\n", s.UserWithRole(auth.RolePlatformAdmin), s.UserWithRole(auth.RoleSupport), filepath.Join(dir, "dev.env"))
	fmt.Fprintf(&b, "  re-auth      tokens live %v (REAUTH_TTL)\n", s.App.API.Reauthenticator.TTL())
	fmt.Fprintf(&b, "\n  source %s\n", filepath.Join(dir, "dev.env"))
	fmt.Fprintf(&b, "  TOKEN=$(make -s token USER=$ADMIN_USER)\n")
	fmt.Fprintf(&b, "  curl -s -H \"Authorization: Bearer $TOKEN\" -H 'Content-Type: application/json' \\\n")
	fmt.Fprintf(&b, "    -d \"{\\\"password\\\":\\\"$ADMIN_PASSWORD\\\",\\\"totp_code\\\":\\\"$(go run ./scripts/totp $ADMIN_TOTP_SECRET)\\\"}\" %s/api/v1/platform-admin/reauth\n", s.APIURL)
	if len(s.Tenants) > 0 {
		fmt.Fprintf(&b, "  curl -s -H \"Authorization: Bearer $TOKEN\" -H \"X-Reauth-Token: <reauth_token>\" %s/api/v1/platform-admin/tenants/%s/smtp-credentials\n", s.APIURL, s.Tenants[0].TenantID)
	}
	fmt.Fprintf(&b, "  (scripts/access-demo.sh does all of it)\n")
	fmt.Fprintf(&b, "\n  Ctrl-C stops everything; data stays in %s\n\n", dir)
	fmt.Fprint(os.Stderr, b.String())
}

// schedule fires the EventBridge rule cron(0 2 * * ? *) locally: the
// rotation sweep and the backup, every day at 02:00 UTC.
func schedule(ctx context.Context, log *slog.Logger, s *devenv.Stack) {
	for {
		now := time.Now().UTC()
		next := time.Date(now.Year(), now.Month(), now.Day(), 2, 0, 0, 0, time.UTC)
		if !next.After(now) {
			next = next.Add(24 * time.Hour)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(next.Sub(now)):
		}
		for _, fn := range []string{"rotate-sweep", "backup"} {
			ev, _ := json.Marshal(map[string]any{
				"version": "0", "id": fn + "-" + next.Format("20060102"), "detail-type": "Scheduled Event",
				"source": "aws.events", "time": next.Format(time.RFC3339), "region": "local",
				"resources": []string{"arn:aws:events:local:000000000000:rule/" + fn}, "detail": map[string]any{},
			})
			out, err := s.Gateway.Invoke(ctx, fn, ev)
			log.Info("scheduled invocation", "function", fn, "result", string(out), "error", err)
		}
	}
}

func invoke(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: gateway invoke <function> <event.json>")
	}
	event, err := os.ReadFile(args[1])
	if err != nil {
		return err
	}
	dir, err := devenv.LocalDir()
	if err != nil {
		return err
	}
	if err := loadEnvFile(filepath.Join(dir, "functions.env")); err != nil {
		return fmt.Errorf("read the functions' settings (is make run up?): %w", err)
	}
	ctx := context.Background()
	fn := args[0]
	if !slices.Contains(policies.Functions, fn) {
		return fmt.Errorf("no function %q (have: %s)", fn, strings.Join(policies.Functions, ", "))
	}
	// The function's own Vault login.
	roleVar, secretVar := app.FunctionLoginVars(fn)
	os.Setenv("VAULT_ROLE_ID", os.Getenv(roleVar))
	os.Setenv("VAULT_SECRET_ID", os.Getenv(secretVar))
	cfg, err := app.FromEnv()
	if err != nil {
		return err
	}
	// What SNS would receive (rotation notices) goes where make run's
	// functions write it.
	lines, f, err := notify.OpenFile(filepath.Join(dir, "notifications.jsonl"), nil)
	if err != nil {
		return err
	}
	defer f.Close()
	a, err := app.New(ctx, cfg, app.Options{Notifier: lines})
	if err != nil {
		return err
	}
	h := a.Handlers()[fn]
	out, err := lambda.NewHandler(h).Invoke(ctx, event)
	if err != nil {
		b, _ := json.Marshal(map[string]string{"errorMessage": err.Error(), "errorType": fmt.Sprintf("%T", err)})
		fmt.Println(string(b))
		return errors.New("the function returned an error")
	}
	fmt.Println(string(out))
	return nil
}

func token(args []string) error {
	fs := flag.NewFlagSet("token", flag.ExitOnError)
	user := fs.String("user", "", "demo admin name")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	fs.Parse(args)
	dir, err := devenv.LocalDir()
	if err != nil {
		return err
	}
	env, err := devenv.ReadEnvFile(filepath.Join(dir, "dev.env"))
	if err != nil {
		return fmt.Errorf("no local stack found (run make run first): %w", err)
	}
	keyPath := filepath.Join(dir, "jwt-issuer.jwk")
	if _, err := os.Stat(keyPath); err != nil {
		return fmt.Errorf("no local issuer key (run make run first): %w", err)
	}
	iss, err := devissuer.LoadOrCreateDevIssuer(keyPath, env["API_URL"], devenv.Audience)
	if err != nil {
		return err
	}
	var st struct {
		Users []devenv.DemoUser `json:"users"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "demo.json"))
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return err
	}
	var names []string
	for _, u := range st.Users {
		if u.Name == *user {
			tok, err := iss.Sign(u.Name, u.Roles, *ttl)
			if err != nil {
				return err
			}
			fmt.Println(tok)
			return nil
		}
		names = append(names, u.Name)
	}
	return fmt.Errorf("no demo admin %q: use USER=<name> with one of: %s", *user, strings.Join(names, ", "))
}

func loadEnvFile(path string) error {
	env, err := devenv.ReadEnvFile(path)
	if err != nil {
		return err
	}
	for k, v := range env {
		os.Setenv(k, v)
	}
	return nil
}
