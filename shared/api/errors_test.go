package api

import (
	"fmt"
	"net/http"
	"testing"

	"smtp-vault/shared/credential"
	"smtp-vault/shared/mailu"
)

// TestMailUCausesHaveTheirOwnCodes: what MailU 2024.06 really answers
// reaches the caller as its own cause, not as "unavailable" or "someone
// else created it": a refused login of the password MailU holds and the
// API's rate limit are "later" (503); a MailU without API token and a
// full domain are for an operator (422).
func TestMailUCausesHaveTheirOwnCodes(t *testing.T) {
	cases := []struct {
		err    error
		status int
		code   string
	}{
		{fmt.Errorf("store: %w: %w", credential.ErrLoginRefused, mailu.ErrAuthFailed), http.StatusServiceUnavailable, "smtp_login_refused"},
		{fmt.Errorf("read the hash: %w: %w", credential.ErrMailURateLimited, mailu.ErrRateLimited), http.StatusServiceUnavailable, "mailu_rate_limited"},
		{fmt.Errorf("set: %w: %w", credential.ErrMailUMisconfigured, mailu.ErrMisconfigured), http.StatusUnprocessableEntity, "mailu_misconfigured"},
		{fmt.Errorf("create: %w: %w", credential.ErrDomainFull, mailu.ErrDomainFull), http.StatusUnprocessableEntity, "mailu_domain_full"},
		{fmt.Errorf("x: %w", credential.ErrUnavailable), http.StatusServiceUnavailable, "upstream_unavailable"},
	}
	for _, c := range cases {
		e := toError(c.err)
		if e.Status != c.status || e.Code != c.code {
			t.Errorf("%v -> %d %s, want %d %s", c.err, e.Status, e.Code, c.status, c.code)
		}
		if e.Message == "" || e.Message == c.err.Error() {
			t.Errorf("%s: the message must be the table's, not the upstream text: %q", c.code, e.Message)
		}
	}
}
