// Command compromise runs a compromise response (SPEC section 6): it
// resets, in one incident, the SMTP admin credential of every tenant
// listed in a file (or on one MailU host, or all), shows the progress, and
// prints each tenant's outcome. It exits 1 when any tenant failed; those
// stay untouched (their old password still works), and running the
// command again for the same incident finishes them without resetting any
// tenant twice.
//
//	go run ./scripts/compromise -incident INC-2026-0042 -reason "mail-7 breached" -requested-by alice tenants.txt
//	go run ./scripts/compromise -incident INC-2026-0042 -reason ... -requested-by alice -mailu-host mail-7.example.net
//	go run ./scripts/compromise -incident INC-2026-0042 -reason ... -requested-by alice -all
//
// The file holds one tenant id per line; blank lines and '#' comments are
// ignored. Every id is checked before anything starts: a bad line is an
// error naming its line number, and no tenant is reset.
//
// It runs the domain's compromise response in this process, with the
// emergency-reset function's Vault identity (docs/runbook.md, "Compromise
// response"): locally its AppRole from .local/functions.env
// (VAULT_ROLE_ID=$VAULT_ROLE_ID_EMERGENCY_RESET and the same for
// VAULT_SECRET_ID); elsewhere VAULT_AUTH_METHOD=token with a VAULT_TOKEN
// holding the smtp-vault-emergency-reset policy; plus VAULT_ADDR,
// AUDIT_BUCKET and the S3 settings of the audit trail, as for the
// functions. Settings of a running `make run` stack not in the
// environment are read from .local/dev.env (never its Vault token: the
// operator policy does not decrypt), and alerts go to its notifications
// file. In AWS an operator would rather invoke the emergency-reset
// function with events/emergency-reset-compromise-response.json, which
// fans the tenants out over its SQS queue, and follow GET
// /api/v1/platform-admin/incidents/{incident_id}/compromise-response.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"time"

	"smtp-vault/scripts/devenv"
	"smtp-vault/scripts/progress"
	"smtp-vault/shared/app"
	"smtp-vault/shared/credential"
	"smtp-vault/shared/notify"
)

const (
	exitFailed = 1 // a tenant failed, or the response could not run
	exitUsage  = 2 // bad flags or a bad tenant file: nothing started
)

const usage = `usage: compromise -incident <id> -reason <text> -requested-by <who> [flags] <tenant-file>
       compromise -incident <id> -reason <text> -requested-by <who> [flags] -mailu-host <host> | -all

Resets, in one incident, the SMTP admin credential of every tenant in <tenant-file>
(one tenant id per line; blank lines and '#' comments ignored), of every tenant on
one MailU host, or of all tenants, and prints each tenant's outcome. Running it again
for the same incident resets no tenant twice and finishes the ones that failed.

Environment: the emergency-reset function's Vault identity (locally: source
.local/functions.env and set VAULT_ROLE_ID/VAULT_SECRET_ID to its _EMERGENCY_RESET
values; else VAULT_AUTH_METHOD=token and a VAULT_TOKEN with the
smtp-vault-emergency-reset policy), VAULT_ADDR, AUDIT_BUCKET and the S3 settings of
the audit trail (as for the functions; locally read from .local/dev.env when unset).
In AWS, invoke the emergency-reset function with
events/emergency-reset-compromise-response.json instead (docs/runbook.md).
Exit 0: every tenant reset (or already reset, or without a credential);
1: some failed (re-run to finish them) or the response could not run; 2: usage.

flags:
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr, appFromEnvironment))
}

// newApp wires the App the response runs in, with the options run needs
// (its own reset queue, its log writer); tests wire one on a test stack.
type newApp func(ctx context.Context, opts app.Options) (*app.App, error)

// options are the command's flags.
type options struct {
	incident, reason, requestedBy string
	mailuHost                     string
	all                           bool
	file                          string
	workers                       int
	wait                          time.Duration
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, wire newApp) int {
	o, tenants, err := parseArgs(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "compromise:", err)
		return exitUsage
	}
	st, err := respond(ctx, o, tenants, stderr, wire)
	if err != nil {
		fmt.Fprintln(stderr, "compromise:", err)
		return exitFailed
	}
	report(stdout, st)
	if st.Failed > 0 || st.State != "finished" {
		return exitFailed
	}
	return 0
}

// parseArgs reads the flags and the tenant file; every input is checked
// here, before anything is started.
func parseArgs(args []string, stderr io.Writer) (options, []string, error) {
	var o options
	fs := flag.NewFlagSet("compromise", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	fs.StringVar(&o.incident, "incident", "", "the incident id (required): 3 to 64 letters, digits, '.', '_', ':' or '-'")
	fs.StringVar(&o.reason, "reason", "", "why the credentials are reset, for the audit trail (required)")
	fs.StringVar(&o.requestedBy, "requested-by", "", "who requests the response, for the audit trail (required)")
	fs.StringVar(&o.mailuHost, "mailu-host", "", "reset every tenant whose MailU (SMTP or API) is on this host, instead of a file")
	fs.BoolVar(&o.all, "all", false, "reset every tenant, instead of a file")
	fs.IntVar(&o.workers, "workers", 4, "chunks of tenants worked at once (each resets up to 16 tenants at once)")
	fs.DurationVar(&o.wait, "wait", time.Minute, "how long to wait for the response to be recorded as finished after the last reset")
	if err := fs.Parse(args); err != nil {
		return o, nil, err
	}
	switch fs.NArg() {
	case 0:
	case 1:
		o.file = fs.Arg(0)
	default:
		return o, nil, fmt.Errorf("one tenant file at most, got %d arguments", fs.NArg())
	}
	var missing []string
	for _, f := range []struct{ name, value string }{{"-incident", o.incident}, {"-reason", o.reason}, {"-requested-by", o.requestedBy}} {
		if strings.TrimSpace(f.value) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return o, nil, fmt.Errorf("%s required (-h for usage)", strings.Join(missing, ", "))
	}
	if err := credential.ValidateIncidentID(o.incident); err != nil {
		return o, nil, err
	}
	if _, err := credential.ValidateReason(o.reason, true); err != nil {
		return o, nil, err
	}
	selectors := 0
	for _, set := range []bool{o.file != "", o.mailuHost != "", o.all} {
		if set {
			selectors++
		}
	}
	if selectors != 1 {
		return o, nil, errors.New("give exactly one of a tenant file, -mailu-host or -all (-h for usage)")
	}
	if o.workers < 1 {
		return o, nil, fmt.Errorf("-workers %d: at least 1", o.workers)
	}
	if o.file == "" {
		return o, nil, nil
	}
	tenants, err := readTenantFile(o.file)
	return o, tenants, err
}

// readTenantFile reads one tenant id a line; blank lines and everything
// from a '#' on are ignored. A bad id is an error naming its line.
func readTenantFile(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids []string
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line, _, _ := strings.Cut(sc.Text(), "#")
		id := strings.TrimSpace(line)
		if id == "" {
			continue
		}
		if err := credential.ValidateTenantID(id); err != nil {
			return nil, fmt.Errorf("%s:%d: %q: %w; no tenant was reset", path, n, truncate(id, 40), err)
		}
		ids = append(ids, id)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("%s: no tenant ids", path)
	}
	return ids, nil
}

// resetJobs is the App's reset queue: it keeps the response's jobs for
// this process to run, so that the progress moves tenant by tenant (without
// a queue the domain runs every job before it returns).
type resetJobs struct {
	mu   sync.Mutex
	jobs []credential.ResetJob
}

func (q *resetJobs) Send(_ context.Context, jobs []credential.ResetJob) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.jobs = append(q.jobs, jobs...)
	return len(jobs), nil
}

// take removes and returns the queued jobs.
func (q *resetJobs) take() []credential.ResetJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	jobs := q.jobs
	q.jobs = nil
	return jobs
}

// respond starts the response, runs its jobs (the selection of all
// tenants or a host, then each chunk of tenants) o.workers chunks at a
// time with a progress bar of the tenants on stderr, and returns the
// recorded result.
func respond(ctx context.Context, o options, tenants []string, stderr io.Writer, wire newApp) (credential.CompromiseStatus, error) {
	q := &resetJobs{}
	logs := &logLines{w: stderr}
	a, err := wire(ctx, app.Options{
		ResetQueue: q,
		LogOut:     logs,
		// The audit records go to the Object Lock bucket (AUDIT_BUCKET);
		// the copy a function writes to CloudWatch would only bury the
		// report here.
		AuditOut: io.Discard,
	})
	if err != nil {
		return credential.CompromiseStatus{}, err
	}
	svc := a.API.Credentials
	st, err := svc.StartCompromiseResponse(ctx, credential.CompromiseRequest{
		IncidentID: o.incident, TenantIDs: tenants, MailUHost: o.mailuHost, All: o.all, Reason: o.reason,
		Actor: credential.Actor{UserID: o.requestedBy, UserAgent: "scripts/compromise"},
	})
	if err != nil {
		return st, err
	}
	jobs := q.take()
	for _, j := range jobs {
		if j.Plan { // select the tenants here; it queues the chunks
			if _, err := svc.RunResetJob(ctx, j); err != nil {
				return st, err
			}
		}
	}
	jobs = slices.DeleteFunc(append(jobs, q.take()...), func(j credential.ResetJob) bool { return j.Plan })
	if st, err = svc.CompromiseResponse(ctx, o.incident, 1, 1); err != nil {
		return st, err
	}
	// A host's candidates count until checked; those on another host are
	// not part of the response.
	bar := progress.New(stderr, "compromise response "+o.incident, st.Total)
	logs.to(bar)
	for len(jobs) > 0 && ctx.Err() == nil {
		next := make(chan credential.ResetJob)
		var wg sync.WaitGroup
		for range min(o.workers, len(jobs)) {
			wg.Go(func() {
				for j := range next {
					outs, err := svc.RunResetJob(ctx, j)
					for _, out := range outs {
						switch out.Outcome {
						case credential.OutcomeFailed:
							bar.Printf("tenant %s failed: %s", out.TenantID, out.Code)
							bar.Fail(1)
						default:
							bar.Add(1)
						}
					}
					if err != nil {
						bar.Printf("chunk %d: %v (run the command again to finish it)", j.Chunk, err)
					}
				}
			})
		}
	feed:
		for _, j := range jobs {
			select {
			case next <- j:
			case <-ctx.Done():
				break feed
			}
		}
		close(next)
		wg.Wait()
		jobs = q.take() // continuations of chunks cut off
	}
	bar.Finish()
	logs.to(nil)
	return waitFinished(ctx, svc, o.incident, o.wait)
}

// waitFinished polls the response every second until it is recorded as
// finished (the last chunk finishes it), or for at most wait, and returns
// it with every tenant's outcome.
func waitFinished(ctx context.Context, svc *credential.Service, incident string, wait time.Duration) (credential.CompromiseStatus, error) {
	if ctx.Err() != nil {
		// Interrupted: report what is recorded; the rest is pending.
		return allResults(context.WithoutCancel(ctx), svc, incident)
	}
	deadline := time.Now().Add(wait)
	for {
		st, err := svc.CompromiseResponse(ctx, incident, 1, 1)
		if err != nil {
			return st, err
		}
		if st.State == credential.StateFinished || !time.Now().Before(deadline) {
			return allResults(ctx, svc, incident)
		}
		select {
		case <-ctx.Done():
			return allResults(context.WithoutCancel(ctx), svc, incident)
		case <-time.After(time.Second):
		}
	}
}

// allResults reads the response with the outcomes of every page.
func allResults(ctx context.Context, svc *credential.Service, incident string) (credential.CompromiseStatus, error) {
	st, err := svc.CompromiseResponse(ctx, incident, 1, credential.MaxResultsPerPage)
	for page := 2; err == nil && len(st.Results) < st.Total; page++ {
		next, nerr := svc.CompromiseResponse(ctx, incident, page, credential.MaxResultsPerPage)
		if nerr != nil || len(next.Results) == 0 {
			return st, nerr
		}
		st.Results = append(st.Results, next.Results...)
	}
	return st, err
}

// report prints the counts and every tenant that was not reset.
func report(w io.Writer, st credential.CompromiseStatus) {
	fmt.Fprintf(w, "compromise response %s for incident %s, requested by %s: %s\n", st.ResponseID, st.IncidentID, st.RequestedBy, st.State)
	fmt.Fprintf(w, "tenants %d: reset %d, already_reset %d, failed %d, skipped %d, pending %d\n",
		st.Total, st.Reset, st.AlreadyReset, st.Failed, st.Skipped, st.Total-st.Done)
	for _, kind := range []string{credential.OutcomeFailed, credential.OutcomeSkipped} {
		for _, r := range st.Results {
			if r.Outcome == kind {
				fmt.Fprintf(w, "%-8s %s %s\n", kind, r.TenantID, r.Code)
			}
		}
	}
	switch {
	case st.State != "finished":
		fmt.Fprintf(w, "not finished: run the same command again to finish the pending tenants\n")
	case st.Failed > 0:
		fmt.Fprintf(w, "the failed tenants are untouched: run the same command again to finish them\n")
	}
}

// logLines passes the App's log lines to stderr, through the progress bar
// while there is one so they do not tear it.
type logLines struct {
	mu  sync.Mutex
	w   io.Writer
	bar *progress.Bar
}

func (l *logLines) to(bar *progress.Bar) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.bar = bar
}

func (l *logLines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bar != nil {
		l.bar.Printf("%s", strings.TrimSuffix(string(p), "\n"))
		return len(p), nil
	}
	return l.w.Write(p)
}

// appFromEnvironment wires the App from the environment, as a function is
// wired, filling what is unset from a local stack's dev.env.
func appFromEnvironment(ctx context.Context, opts app.Options) (*app.App, error) {
	loadDevEnv()
	cfg, err := app.FromEnv()
	if err != nil {
		return nil, err
	}
	if os.Getenv("LOG_LEVEL") == "" {
		// A line per tenant reset would bury the progress; the failures
		// are warnings, and the report lists every tenant not reset.
		cfg.LogLevel = "warn"
	}
	if cfg.AuditBucket == "" {
		return nil, errors.New("AUDIT_BUCKET is not set (and no .local/dev.env was found): every reset must be audited")
	}
	if path := os.Getenv("NOTIFICATIONS_FILE"); path != "" && cfg.NotifyTopicARN == "" {
		// The local stack's SNS stand-in; the file stays open until the
		// command exits.
		lines, _, err := notify.OpenFile(path, nil)
		if err != nil {
			return nil, err
		}
		opts.Notifier = lines
	}
	return app.New(ctx, cfg, opts)
}

// loadDevEnv fills unset variables from the local stack's dev.env, and
// keeps the alert counters where the stack keeps them.
func loadDevEnv() {
	fromDevEnv := os.Getenv("S3_ENDPOINT") == ""
	devenv.LoadDevEnv("VAULT_ADDR", "S3_ENDPOINT", "S3_REGION", "S3_ACCESS_KEY", "S3_SECRET_KEY", "AUDIT_BUCKET", "NOTIFICATIONS_FILE")
	if fromDevEnv && os.Getenv("S3_ENDPOINT") != "" && os.Getenv("ALERT_STATE_BUCKET") == "" {
		os.Setenv("ALERT_STATE_BUCKET", devenv.AlertStateBucket)
	}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
