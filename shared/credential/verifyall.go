package credential

import (
	"context"
	"fmt"
	"sort"
)

// TenantCheck says whether one tenant's stored credential opens (and, when
// asked, logs in over SMTP). It never holds the password.
type TenantCheck struct {
	TenantID  string `json:"tenant_id"`
	Decrypted bool   `json:"decrypted"`
	LoggedIn  *bool  `json:"logged_in,omitempty"` // nil when no login was tried
	Error     string `json:"error,omitempty"`
}

// VerifyAll opens the stored credential of every tenant in the KV mount:
// after a restore it proves that the records and the Transit key came back
// together. With login it also tries each password over SMTP AUTH. It
// returns one result per tenant, sorted by tenant id; an error only when
// the tenants cannot be listed. Nothing is audited or changed. each (may
// be nil) hears of every tenant as its check finishes, with the count so
// far: the check is most of a restore's time, and an operator watches it.
func (s *Service) VerifyAll(ctx context.Context, login bool, each func(c TenantCheck, done, total int)) ([]TenantCheck, error) {
	ids, err := s.tenantIDs(ctx)
	if err != nil {
		return nil, err
	}
	sort.Strings(ids)
	out := make([]TenantCheck, len(ids))
	t := tally[TenantCheck]{total: len(ids), report: each}
	s.forEach(len(ids), func(i int) {
		out[i] = s.verifyOne(ctx, ids[i], login)
		t.finish(out[i])
	})
	return out, nil
}

func (s *Service) verifyOne(ctx context.Context, tenantID string, login bool) TenantCheck {
	c := TenantCheck{TenantID: tenantID}
	rec, err := s.readRecord(ctx, tenantID)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	if rec.Password == "" {
		c.Error = "no password stored yet"
		return c
	}
	pw, err := s.open(ctx, tenantID, passwordField, rec.Password, rec.DataKey)
	if err != nil {
		c.Error = err.Error()
		return c
	}
	c.Decrypted = true
	if rec.Pending() {
		if _, err := s.open(ctx, tenantID, passwordField, rec.PendingPassword, rec.PendingDataKey); err != nil {
			c.Decrypted, c.Error = false, fmt.Sprintf("pending password: %v", err)
			return c
		}
	}
	if login {
		err := s.cfg.VerifyLogin(ctx, rec.SMTPAddr, rec.Username, pw)
		ok := err == nil
		c.LoggedIn = &ok
		if err != nil {
			c.Error = fmt.Sprintf("smtp login: %v", err)
		}
	}
	return c
}
