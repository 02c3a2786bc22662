package devenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"smtp-vault/scripts/devenv/dovecot"
	"smtp-vault/scripts/devenv/mailustandin"
)

// MailUHost runs MailU stand-in instances, one per tenant: in this process
// (tests) or in a separate mailu-standin process (make run).
type MailUHost interface {
	// AddInstance returns the instance for domain, creating it if needed.
	AddInstance(ctx context.Context, domain, apiToken string) (MailUInstance, error)
	// SetFaults injects faults into one instance.
	SetFaults(ctx context.Context, domain string, f mailustandin.Faults) error
	Close() error
}

// MailUInstance is how to reach one tenant's MailU: the stand-in's admin
// API, and the real Dovecot in front of it for SMTP.
type MailUInstance struct {
	Domain string `json:"domain"`
	APIURL string `json:"api_url"`
	// SMTPAddr is the front's STARTTLS submission listener (MailU's 587
	// role) and SMTPSAddr its implicit-TLS one (MailU's 465 role); both
	// serve every tenant of the stack. CAFile is the PEM of the local CA
	// that signs the front's certificate (for 127.0.0.1 and localhost).
	SMTPAddr  string `json:"smtp_addr"`
	SMTPSAddr string `json:"smtps_addr"`
	CAFile    string `json:"ca_file"`
}

// InProcessMailU hosts the stand-in inside the calling process, with its
// Dovecot front as a child process.
type InProcessMailU struct {
	Server *mailustandin.Server
	Front  *dovecot.Server

	mu        sync.Mutex
	instances map[string]*mailustandin.Instance
}

// StartInProcessMailU starts an empty in-process stand-in, its internal
// auth endpoint and relay, and a Dovecot front keeping its files in dir,
// with failureDelay as its auth_failure_delay (dovecot.Config). Options
// left zero get the tests' settings: bcrypt's least cost, since tests log
// in thousands of times (the rotation fault and reader tests); the
// behaviour is the same.
func StartInProcessMailU(ctx context.Context, dir string, opts mailustandin.Options, failureDelay time.Duration) (*InProcessMailU, error) {
	if opts.BcryptCost == 0 {
		opts.BcryptCost = bcrypt.MinCost
	}
	srv := mailustandin.NewServer(opts)
	internal, err := srv.StartInternal()
	if err != nil {
		srv.Close()
		return nil, err
	}
	front, err := dovecot.Start(ctx, dovecot.Config{Dir: filepath.Join(dir, "dovecot"), AuthURL: internal.AuthURL, RelayAddr: internal.RelayAddr, FailureDelay: failureDelay})
	if err != nil {
		srv.Close()
		return nil, err
	}
	return &InProcessMailU{Server: srv, Front: front, instances: map[string]*mailustandin.Instance{}}, nil
}

// StartTestMailU is StartInProcessMailU for one test, in its temporary
// folder, stopped when the test ends, with Dovecot's default failure delay
// of 2 seconds, as in MailU.
func StartTestMailU(t testing.TB, opts mailustandin.Options) *InProcessMailU {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	m, err := StartInProcessMailU(ctx, t.TempDir(), opts, 0)
	if err != nil {
		t.Fatalf("start the MailU stand-in and its Dovecot front: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// AddInstance implements MailUHost.
func (m *InProcessMailU) AddInstance(ctx context.Context, domain, token string) (MailUInstance, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	in, ok := m.instances[domain]
	if !ok {
		var err error
		in, err = m.Server.AddInstance(ctx, mailustandin.InstanceConfig{Domain: domain, APIToken: token})
		if err != nil {
			return MailUInstance{}, err
		}
		m.instances[domain] = in
	}
	return frontInstance(in.Domain(), in.APIURL(), m.Front), nil
}

func frontInstance(domain, apiURL string, front *dovecot.Server) MailUInstance {
	return MailUInstance{Domain: domain, APIURL: apiURL, SMTPAddr: front.SubmissionAddr(), SMTPSAddr: front.SubmissionsAddr(), CAFile: front.CAFile()}
}

// Instance returns the stand-in instance of a domain, for tests.
func (m *InProcessMailU) Instance(domain string) *mailustandin.Instance {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.instances[domain]
}

// SetFaults implements MailUHost.
func (m *InProcessMailU) SetFaults(_ context.Context, domain string, f mailustandin.Faults) error {
	in := m.Instance(domain)
	if in == nil {
		return fmt.Errorf("devenv: no MailU instance for %s", domain)
	}
	return in.SetFaults(f)
}

// Close implements MailUHost: Dovecot first, then the stand-in.
func (m *InProcessMailU) Close() error {
	m.Front.Close()
	return m.Server.Close()
}

// ProcessMailU is a mailu-standin process driven through its control API,
// with its Dovecot front.
type ProcessMailU struct {
	control string // http://host:port
	proc    *process
	hc      *http.Client
	Front   *dovecot.Server
}

// FrontAddrs are the loopback host:ports of the Dovecot front's STARTTLS
// and implicit-TLS listeners; empty picks free ports.
type FrontAddrs struct {
	Submission  string
	Submissions string
}

// StartProcessMailU starts bin (the mailu-standin command) with its
// control API on controlAddr and its state in dir, waits until it
// answers, and starts its Dovecot front on front's addresses.
func StartProcessMailU(ctx context.Context, bin, dir, controlAddr string, front FrontAddrs) (*ProcessMailU, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(dir, "mailustandin.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, err
	}
	proc, err := startProcess(logf, bin, os.Environ(), "-control", controlAddr, "-state", filepath.Join(dir, "state.json"))
	if err != nil {
		logf.Close()
		return nil, err
	}
	go func() { <-proc.done; logf.Close() }()
	p := &ProcessMailU{control: "http://" + controlAddr, proc: proc, hc: &http.Client{Timeout: 10 * time.Second}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := p.hc.Get(p.control + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				if err := p.startFront(ctx, dir, front); err != nil {
					p.Close()
					return nil, err
				}
				return p, nil
			}
		}
		select {
		case <-proc.done:
			return nil, fmt.Errorf("devenv: mailu-standin exited during start:\n%s", logTail(logf.Name(), 20))
		case <-ctx.Done():
			p.Close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			p.Close()
			return nil, fmt.Errorf("devenv: mailu-standin did not answer on %s", controlAddr)
		}
	}
}

// startFront starts Dovecot before the stand-in's internal endpoint.
func (p *ProcessMailU) startFront(ctx context.Context, dir string, front FrontAddrs) error {
	var internal mailustandin.Internal
	if err := p.do(ctx, http.MethodGet, "/internal", nil, &internal); err != nil {
		return err
	}
	var err error
	p.Front, err = dovecot.Start(ctx, dovecot.Config{Dir: filepath.Join(dir, "dovecot"), AuthURL: internal.AuthURL, RelayAddr: internal.RelayAddr,
		SubmissionAddr: front.Submission, SubmissionsAddr: front.Submissions})
	return err
}

// AddInstance implements MailUHost.
func (p *ProcessMailU) AddInstance(ctx context.Context, domain, token string) (MailUInstance, error) {
	var out mailustandin.InstanceInfo
	if err := p.do(ctx, http.MethodPost, "/instances", map[string]string{"domain": domain, "api_token": token}, &out); err != nil {
		return MailUInstance{}, err
	}
	return frontInstance(out.Domain, out.APIURL, p.Front), nil
}

// SetFaults implements MailUHost.
func (p *ProcessMailU) SetFaults(ctx context.Context, domain string, f mailustandin.Faults) error {
	return p.do(ctx, http.MethodPut, "/instances/"+domain+"/faults", f, nil)
}

func (p *ProcessMailU) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, p.control+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("devenv: mailu-standin %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("devenv: mailu-standin %s %s: status %d", method, path, resp.StatusCode)
	}
	if out != nil {
		return json.NewDecoder(resp.Body).Decode(out)
	}
	return nil
}

// Close stops Dovecot, then the process.
func (p *ProcessMailU) Close() error {
	p.Front.Close()
	p.proc.stop(10 * time.Second)
	return nil
}
