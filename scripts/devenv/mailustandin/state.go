package mailustandin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// The state file keeps what a restarted MailU would still have: its
// instances (domain, API token, ports) and their domains and users (with
// password hashes, never passwords). Faults are not kept: a restarted
// stand-in comes back healthy.

const stateVersion = 1

type stateFile struct {
	Version   int             `json:"version"`
	Instances []instanceState `json:"instances"`
}

type instanceState struct {
	Domain   string          `json:"domain"`
	APIToken string          `json:"api_token"`
	HTTPAddr string          `json:"http_addr"`
	SMTPAddr string          `json:"smtp_addr"`
	Domains  []*domainRecord `json:"domains"`
	Users    []*userRecord   `json:"users"`
}

// Restore starts the instances recorded in Options.StatePath on their
// recorded ports, with their users. A missing file is an empty state. An
// instance whose port is taken is reported in the error; the others start.
func (s *Server) Restore(ctx context.Context) error {
	if s.opts.StatePath == "" {
		return nil
	}
	raw, err := os.ReadFile(s.opts.StatePath)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("standin: read state: %w", err)
	}
	var st stateFile
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("standin: parse state %s: %w", s.opts.StatePath, err)
	}
	if st.Version != stateVersion {
		return fmt.Errorf("standin: state %s has version %d, want %d", s.opts.StatePath, st.Version, stateVersion)
	}
	var errs []error
	for _, is := range st.Instances {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := s.restoreInstance(is); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (s *Server) restoreInstance(is instanceState) error {
	cfg := InstanceConfig{Domain: strings.ToLower(is.Domain), APIToken: is.APIToken, HTTPAddr: is.HTTPAddr, SMTPAddr: is.SMTPAddr}
	if err := checkConfig(cfg); err != nil {
		return fmt.Errorf("standin: restore %s: %w", is.Domain, err)
	}
	in := newInstance(s, cfg)
	for _, d := range is.Domains {
		if d.Alternatives == nil {
			d.Alternatives = []string{}
		}
		in.domains[d.Name] = d
	}
	if _, ok := in.domains[cfg.Domain]; !ok {
		in.domains[cfg.Domain] = newDomain(cfg.Domain)
	}
	for _, u := range is.Users {
		if u.ForwardDestination == nil {
			u.ForwardDestination = []string{}
		}
		in.users[strings.ToLower(u.Email)] = u
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.instances[cfg.Domain]; ok {
		return nil
	}
	if err := in.start(); err != nil {
		return fmt.Errorf("standin: restore %s: %w", cfg.Domain, err)
	}
	s.instances[cfg.Domain] = in
	s.log.Info("mailu instance restored", "domain", in.domain, "api_url", in.APIURL(), "smtp_addr", in.SMTPAddr(), "users", len(in.users))
	return nil
}

// persist writes the state file after a change, before the change is
// acknowledged. Concurrent callers share one write: a write that started
// after a caller's change covers it.
func (s *Server) persist() error {
	if s.opts.StatePath == "" {
		return nil
	}
	want := s.changes.Add(1)
	s.saveMu.Lock()
	defer s.saveMu.Unlock()
	if s.saved >= want {
		return nil
	}
	upTo := s.changes.Load()
	if err := writeAtomic(s.opts.StatePath, s.snapshot()); err != nil {
		return err
	}
	s.saved = upTo
	return nil
}

func (s *Server) snapshot() stateFile {
	st := stateFile{Version: stateVersion, Instances: []instanceState{}}
	for _, in := range s.Instances() {
		is := instanceState{Domain: in.domain, APIToken: in.token, HTTPAddr: in.httpAddr, SMTPAddr: in.smtpAddr}
		in.mu.Lock()
		for _, d := range in.domains {
			c := *d
			c.Alternatives = slices.Clone(d.Alternatives)
			is.Domains = append(is.Domains, &c)
		}
		for _, u := range in.users {
			c := userRecord{User: u.view(), PasswordHash: u.PasswordHash}
			is.Users = append(is.Users, &c)
		}
		in.mu.Unlock()
		slices.SortFunc(is.Domains, func(a, b *domainRecord) int { return strings.Compare(a.Name, b.Name) })
		slices.SortFunc(is.Users, func(a, b *userRecord) int { return strings.Compare(a.Email, b.Email) })
		st.Instances = append(st.Instances, is)
	}
	return st
}

// writeAtomic replaces path with v as JSON so that a crash leaves either
// the old file or the new one: write a temporary file beside it, sync,
// rename over. The file holds API tokens, so it is private to the user.
func writeAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("standin: encode state: %w", err)
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("standin: write state: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("standin: write state: %w", err)
	}
	if _, err := tmp.Write(append(b, '\n')); err != nil {
		tmp.Close()
		return fmt.Errorf("standin: write state: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("standin: sync state: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("standin: write state: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("standin: replace state: %w", err)
	}
	// Make the rename itself durable; not every platform can sync a dir.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
