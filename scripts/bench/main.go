// Command bench reports, for every function, the size of the linux/arm64
// binary its SAM build target makes (`make build-<LogicalId>`, what
// deploys) and its cold init time: from the exec of a fresh process (built
// the same way for this host) to its answer to the first invocation,
// served by a local Lambda Runtime API. Then what one binary is made of,
// by module and package. It is a report: it exits 0 whether or not the
// goals are met, and non-zero only when a function does not build or never
// answers. -smoke does one cold start per function, so `make test` finds a
// broken harness in seconds.
//
//	go run ./scripts/bench [-n 10] [-json bench.json] [-functions store,retrieve] [-symbols store] [-smoke]
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"
)

// The goals the functions are held to.
const (
	maxSizeBytes = 20_000_000            // the linux/arm64 artifact, 20 MB (issue 15)
	maxColdInit  = 50 * time.Millisecond // median cold init
)

type options struct {
	runs      int
	jsonPath  string
	only      string
	timeout   time.Duration
	vaultAuth string
	vault     string
	xray      bool
	symbols   string
	smoke     bool
}

// report is what -json writes.
type report struct {
	GOOS      string         `json:"goos"`
	GOARCH    string         `json:"goarch"` // of the cold starts; sizes are linux/arm64
	SizeArch  string         `json:"size_arch"`
	GoVersion string         `json:"go_version"`
	Runs      int            `json:"runs"`
	VaultAuth string         `json:"vault_auth"`
	Vault     string         `json:"vault"`
	XRay      bool           `json:"xray"`
	Goals     goals          `json:"goals"`
	Functions []result       `json:"functions"`
	Symbols   []symbolReport `json:"symbols,omitempty"`
}

type goals struct {
	MaxSizeBytes  int64   `json:"max_size_bytes"`
	MaxColdInitMS float64 `json:"max_cold_init_ms"` // compared with the median
}

type result struct {
	Function string `json:"function"`
	// SizeBytes is the bootstrap `make build-<LogicalId>` writes
	// (linux/arm64, stripped): what SAM deploys.
	SizeBytes int64 `json:"size_bytes,omitempty"`
	// ReadyMS is exec → the first request for an event (init done).
	ReadyMS *stats `json:"ready_ms,omitempty"`
	// ColdInitMS is exec → the answer to the first invocation.
	ColdInitMS      *stats `json:"cold_init_ms,omitempty"`
	FirstInvocation string `json:"first_invocation,omitempty"`
	SizeOK          bool   `json:"size_ok"`
	ColdInitOK      bool   `json:"cold_init_ok"`
	Error           string `json:"error,omitempty"`
}

type stats struct {
	Median float64 `json:"median"`
	Max    float64 `json:"max"`
}

func main() {
	var o options
	flag.IntVar(&o.runs, "n", 10, "cold starts per function")
	flag.StringVar(&o.jsonPath, "json", "", "also write the numbers as JSON to this file (- for stdout, the table then goes to stderr)")
	flag.StringVar(&o.only, "functions", "", "comma-separated functions to measure (default: every folder under functions/)")
	flag.DurationVar(&o.timeout, "timeout", 10*time.Second, "how long one cold start may take to answer")
	flag.StringVar(&o.vaultAuth, "vault-auth", "token", "Vault auth method the functions are configured with: token, or aws (loads the AWS SDK config at init as in Lambda, with placeholder credentials)")
	flag.StringVar(&o.vault, "vault", "deny", "what answers at VAULT_ADDR: deny (a local endpoint refusing every request with 403 at once) or closed (nothing listens; the Vault client's retry backoff then dominates the first answer)")
	flag.BoolVar(&o.xray, "xray", true, "run with TRACING=xray as in AWS (segments go to a local UDP sink; the SDK touches /tmp/.aws-xray as it does in Lambda)")
	flag.StringVar(&o.symbols, "symbols", "store", "comma-separated functions whose arm64 binary is broken down by module and package (\"\" for none)")
	flag.BoolVar(&o.smoke, "smoke", false, "check the harness quickly: one cold start per function (the symbol report as asked)")
	flag.Parse()
	if o.smoke {
		o.runs = 1
	}
	if o.runs < 1 || (o.vaultAuth != "token" && o.vaultAuth != "aws") || (o.vault != "deny" && o.vault != "closed") {
		flag.Usage()
		os.Exit(2)
	}
	os.Exit(run(o))
}

func run(o options) int {
	root, err := repoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	names, err := functionNames(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	if o.only != "" {
		want := strings.Split(o.only, ",")
		for _, w := range want {
			if !slices.Contains(names, w) {
				fmt.Fprintf(os.Stderr, "bench: no function %q under functions/\n", w)
				return 2
			}
		}
		names = want
	}
	tmp, err := os.MkdirTemp("", "smtp-vault-bench-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer os.RemoveAll(tmp)

	env, stopSink, err := baseEnv(o, tmp)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	defer stopSink()

	ids, err := logicalIDs(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}

	rep := report{
		GOOS: "linux", GOARCH: runtime.GOARCH, SizeArch: "linux/arm64", GoVersion: runtime.Version(), Runs: o.runs,
		VaultAuth: o.vaultAuth, Vault: o.vault, XRay: o.xray,
		Goals: goals{MaxSizeBytes: maxSizeBytes, MaxColdInitMS: ms(maxColdInit)},
	}
	failed := false
	for _, fn := range names {
		fmt.Fprintf(os.Stderr, "bench: %s: building and starting %d times\n", fn, o.runs)
		r := measure(root, tmp, fn, ids[fn], env, o)
		if r.Error != "" {
			failed = true
			fmt.Fprintf(os.Stderr, "bench: %s: %s\n", fn, r.Error)
		}
		rep.Functions = append(rep.Functions, r)
	}

	if o.symbols != "" {
		for _, fn := range strings.Split(o.symbols, ",") {
			sr, err := symbols(root, fn, tmp)
			if err != nil {
				failed = true
				fmt.Fprintf(os.Stderr, "bench: symbols of %s: %v\n", fn, err)
				continue
			}
			rep.Symbols = append(rep.Symbols, sr)
		}
	}

	table := io.Writer(os.Stdout)
	if o.jsonPath == "-" {
		table = os.Stderr
	}
	printTable(table, rep)
	for _, sr := range rep.Symbols {
		printSymbols(table, sr, 15)
	}
	if o.jsonPath != "" {
		if err := writeJSON(o.jsonPath, rep); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			return 1
		}
	}
	if failed {
		return 1
	}
	return 0
}

// measure builds one function's deployed artifact for its size, and the
// same function for this host to cold-start it o.runs times.
func measure(root, tmp, fn, logicalID string, env []string, o options) result {
	r := result{Function: fn}
	event, err := os.ReadFile(filepath.Join(root, "events", fn+".json"))
	if err != nil {
		r.Error = fmt.Sprintf("no sample event: %v", err)
		return r
	}
	if logicalID == "" {
		r.Error = "no AWS::Serverless::Function with CodeUri functions/" + fn + "/ in template.yaml"
		return r
	}
	artifact, err := buildArtifact(root, logicalID, tmp)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	fi, err := os.Stat(artifact)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.SizeBytes = fi.Size()
	r.SizeOK = r.SizeBytes <= maxSizeBytes
	bin := artifact
	if runtime.GOOS != "linux" || runtime.GOARCH != "arm64" {
		if bin, err = build(root, fn, runtime.GOOS, tmp); err != nil {
			r.Error = err.Error()
			return r
		}
	}

	fnEnv := append(env[:len(env):len(env)],
		"AWS_LAMBDA_FUNCTION_NAME=smtp-vault-"+fn,
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/smtp-vault-"+fn,
		"LAMBDA_TASK_ROOT="+filepath.Dir(bin),
		"VAULT_AWS_ROLE=smtp-vault-"+fn,
	)
	var ready, cold []time.Duration
	outcomes := map[string]int{}
	for i := 0; i < o.runs; i++ {
		a, err := coldStart(bin, fn, event, fnEnv, o.timeout)
		if err != nil {
			r.Error = fmt.Sprintf("cold start %d of %d: %v", i+1, o.runs, err)
			return r
		}
		ready = append(ready, a.ready)
		cold = append(cold, a.at)
		outcomes[a.describe()]++
	}
	r.ReadyMS, r.ColdInitMS = summarise(ready), summarise(cold)
	r.ColdInitOK = r.ColdInitMS.Median < ms(maxColdInit)
	r.FirstInvocation = describeOutcomes(outcomes)
	return r
}

// baseEnv is the environment every function gets: what Lambda sets, and
// the configuration template.yaml gives, with no real secret. Vault is not
// there: the functions contact it lazily, so the first invocation that
// needs it fails, and that answer is what is timed. The default -vault
// deny makes that failure immediate (a 403 is not retried), so the number
// is the function's own start-up and not the Vault client's retry backoff.
func baseEnv(o options, home string) (env []string, stop func(), err error) {
	var stops []func()
	stop = func() {
		for _, f := range stops {
			f()
		}
	}
	// One endpoint refuses everything at once: Vault with -vault deny, and
	// always S3, SNS and SQS, so no request of a function leaves the host.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, fmt.Errorf("listen for the denying endpoint: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(deny), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	stops = append(stops, func() { srv.Close() })
	denyURL := "http://" + l.Addr().String()
	vaultAddr := l.Addr().String()
	if o.vault == "closed" {
		if vaultAddr, err = unusedAddr(); err != nil {
			stop()
			return nil, nil, err
		}
	}
	env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"HOME=" + home, // empty: no ~/.aws of the user's
		"_HANDLER=bootstrap",
		"AWS_REGION=eu-central-1",
		"AWS_DEFAULT_REGION=eu-central-1",
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE=256",
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
		"AWS_LAMBDA_LOG_STREAM_NAME=2026/01/01/[$LATEST]0123456789abcdef0123456789abcdef",
		"LOG_LEVEL=info",
		"ROLES_CLAIM=roles",
		"VAULT_ADDR=http://" + vaultAddr,
		"VAULT_KV_MOUNT=smtp",
		"VAULT_TRANSIT_MOUNT=transit",
		"VAULT_TRANSIT_KEY=smtp-credentials",
		"VAULT_TIMEOUT=5s",
		"SMTP_TIMEOUT=10s",
		"MAILU_TIMEOUT=10s",
		// What template.yaml sets beside Vault: the audit bucket and the
		// alert counters (without AUDIT_BUCKET a function exits at start),
		// the notification topic, and the rotate queue. The AWS clients
		// are built at init as in Lambda, from the placeholder credentials
		// below, and every request they make is refused locally.
		"AUDIT_BUCKET=smtp-vault-audit-bench",
		"AUDIT_RETENTION_YEARS=7",
		"ALERT_STATE_BUCKET=smtp-vault-alert-state-bench",
		"S3_ENDPOINT=" + denyURL,
		"NOTIFY_TOPIC_ARN=arn:aws:sns:eu-central-1:000000000000:smtp-vault-bench",
		"ROTATE_QUEUE_URL=" + denyURL + "/000000000000/smtp-vault-bench",
		"AWS_ENDPOINT_URL=" + denyURL,
		// Placeholders in the shape Lambda provides; nothing reaches AWS.
		"AWS_ACCESS_KEY_ID=ASIAEXAMPLEBENCH0000",
		"AWS_SECRET_ACCESS_KEY=bench/placeholder/not/a/real/secret/key00",
		"AWS_SESSION_TOKEN=bench-placeholder-session-token",
	}
	switch o.vaultAuth {
	case "token":
		env = append(env, "VAULT_AUTH_METHOD=token", "VAULT_TOKEN=bench")
	case "aws":
		// Placeholders in the shape Lambda provides; nothing is sent to AWS
		// (Vault, which would forward the signed request, is not there).
		env = append(env, "VAULT_AUTH_METHOD=aws", // VAULT_AWS_ROLE: per function, as in template.yaml
			"AWS_ACCESS_KEY_ID=ASIAEXAMPLEBENCH0000",
			"AWS_SECRET_ACCESS_KEY=bench/placeholder/not/a/real/secret/key00",
			"AWS_SESSION_TOKEN=bench-placeholder-session-token")
	}
	if o.xray {
		sink, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			stop()
			return nil, nil, fmt.Errorf("listen for X-Ray segments: %w", err)
		}
		go func() {
			buf := make([]byte, 64<<10)
			for {
				if _, _, err := sink.ReadFrom(buf); err != nil {
					return
				}
			}
		}()
		stops = append(stops, func() { sink.Close() })
		env = append(env, "TRACING=xray", "AWS_XRAY_CONTEXT_MISSING=LOG_ERROR",
			"AWS_XRAY_DAEMON_ADDRESS="+sink.LocalAddr().String())
	}
	return env, stop, nil
}

// deny answers every request as Vault does a token without the policy for
// it; the AWS clients take it as an access error.
func deny(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusForbidden)
	_, _ = w.Write([]byte(`{"errors":["permission denied"]}`))
}

// unusedAddr is a loopback address where nothing listens.
func unusedAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func summarise(ds []time.Duration) *stats {
	s := slices.Clone(ds)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return &stats{Median: round(ms(med)), Max: round(ms(s[len(s)-1]))}
}

func describeOutcomes(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 1 {
		return keys[0]
	}
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%d× %s", m[k], k)
	}
	return strings.Join(parts, "; ")
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func round(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func printTable(w io.Writer, rep report) {
	fmt.Fprintf(w, "smtp-vault functions: size of the %s artifact `make build-<LogicalId>` writes (what SAM deploys); cold init on %s/%s; %s\n", rep.SizeArch, rep.GOOS, rep.GOARCH, rep.GoVersion)
	fmt.Fprintf(w, "%d cold starts each against a local Lambda Runtime API (Vault %s, auth %s; X-Ray %v)\n",
		rep.Runs, rep.Vault, rep.VaultAuth, rep.XRay)
	fmt.Fprintf(w, "goals: size <= %.0f MB, median cold init < %.0f ms (ready = exec to first event request; cold init = exec to first answer)\n\n",
		float64(rep.Goals.MaxSizeBytes)/1e6, rep.Goals.MaxColdInitMS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FUNCTION\tSIZE\tREADY MED\tCOLD INIT MED\tCOLD INIT MAX\tGOALS\tFIRST INVOCATION")
	for _, r := range rep.Functions {
		size := "-"
		if r.SizeBytes > 0 {
			size = fmt.Sprintf("%.1f MB", float64(r.SizeBytes)/1e6)
		}
		if r.Error != "" || r.ColdInitMS == nil {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\tFAILED\t%s\n", r.Function, size, firstLine(r.Error))
			continue
		}
		var over []string
		if !r.SizeOK {
			over = append(over, "size")
		}
		if !r.ColdInitOK {
			over = append(over, "init")
		}
		verdict := "ok"
		if len(over) > 0 {
			verdict = "over (" + strings.Join(over, ", ") + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f ms\t%.1f ms\t%.1f ms\t%s\t%s\n", r.Function, size,
			r.ReadyMS.Median, r.ColdInitMS.Median, r.ColdInitMS.Max, verdict, r.FirstInvocation)
	}
	tw.Flush()
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}

func writeJSON(path string, rep report) error {
	b, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if path == "-" {
		_, err = os.Stdout.Write(b)
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
