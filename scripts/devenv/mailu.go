package devenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/crypto/bcrypt"

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

// MailUInstance is how to reach one tenant's MailU stand-in.
type MailUInstance struct {
	Domain   string `json:"domain"`
	APIURL   string `json:"api_url"`
	SMTPAddr string `json:"smtp_addr"`
}

// InProcessMailU hosts the stand-in inside the calling process.
type InProcessMailU struct {
	Server    *mailustandin.Server
	instances map[string]*mailustandin.Instance
}

// NewInProcessMailU starts an empty in-process stand-in.
func NewInProcessMailU() *InProcessMailU {
	// Tests log in thousands of times (the rotation fault and reader
	// tests): bcrypt's least cost keeps each check cheap; the behaviour is
	// the same.
	return &InProcessMailU{Server: mailustandin.NewServer(mailustandin.Options{BcryptCost: bcrypt.MinCost}), instances: map[string]*mailustandin.Instance{}}
}

// AddInstance implements MailUHost.
func (m *InProcessMailU) AddInstance(ctx context.Context, domain, token string) (MailUInstance, error) {
	in, ok := m.instances[domain]
	if !ok {
		var err error
		in, err = m.Server.AddInstance(ctx, mailustandin.InstanceConfig{Domain: domain, APIToken: token})
		if err != nil {
			return MailUInstance{}, err
		}
		m.instances[domain] = in
	}
	return MailUInstance{Domain: domain, APIURL: in.APIURL(), SMTPAddr: in.SMTPAddr()}, nil
}

// Instance returns the stand-in instance of a domain, for tests.
func (m *InProcessMailU) Instance(domain string) *mailustandin.Instance { return m.instances[domain] }

// SetFaults implements MailUHost.
func (m *InProcessMailU) SetFaults(_ context.Context, domain string, f mailustandin.Faults) error {
	in, ok := m.instances[domain]
	if !ok {
		return fmt.Errorf("devenv: no MailU instance for %s", domain)
	}
	in.SetFaults(f)
	return nil
}

// Close implements MailUHost.
func (m *InProcessMailU) Close() error { return m.Server.Close() }

// ProcessMailU is a mailu-standin process driven through its control API.
type ProcessMailU struct {
	control string // http://host:port
	proc    *process
	hc      *http.Client
}

// StartProcessMailU starts bin (the mailu-standin command) with its
// control API on controlAddr and its state in dir, and waits until it
// answers.
func StartProcessMailU(ctx context.Context, bin, dir, controlAddr string) (*ProcessMailU, error) {
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

// AddInstance implements MailUHost.
func (p *ProcessMailU) AddInstance(ctx context.Context, domain, token string) (MailUInstance, error) {
	var out MailUInstance
	err := p.do(ctx, http.MethodPost, "/instances", map[string]string{"domain": domain, "api_token": token}, &out)
	return out, err
}

// SetFaults implements MailUHost.
func (p *ProcessMailU) SetFaults(ctx context.Context, domain string, f mailustandin.Faults) error {
	return p.do(ctx, http.MethodPut, "/instances/"+domain+"/faults", f, nil)
}

func (p *ProcessMailU) do(ctx context.Context, method, path string, in, out any) error {
	b, err := json.Marshal(in)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, p.control+path, bytes.NewReader(b))
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

// Close stops the process.
func (p *ProcessMailU) Close() error {
	p.proc.stop(10 * time.Second)
	return nil
}
