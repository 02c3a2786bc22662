package credential

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/mailu"
	"smtp-vault/shared/notify"
)

// Which password MailU holds is decided from its own answer, never from
// failed logins: MailU 2024.06's SMTP front answers the same 535 for a
// wrong password, a rate-limited user or client network, and
// AUTH_REQUIRE_TOKENS (SPEC section 12), and anyone can rate-limit the
// guessable admin@<domain>. The admin API's GET /user/{email} returns the
// password hash; checking a candidate against it spends no login. The
// SMTP login then only proves the login path: when it is refused while
// the hash says the password is right, nothing is overwritten, a change
// stays pending for the next run, and the tenant is marked failing.

// holds says whether MailU's admin user username has password pw, from
// the hash its admin API returns. A user MailU does not have holds none.
func (s *Service) holds(ctx context.Context, admin MailU, username, pw string) (bool, error) {
	h, err := admin.PasswordHash(ctx, username)
	if errors.Is(err, mailu.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, upstream("read the MailU admin's password hash", err)
	}
	ok, err := h.Matches(pw)
	if err != nil {
		return false, upstream("check the MailU admin's password hash", err)
	}
	return ok, nil
}

// proveLogin logs in over SMTP AUTH with a password MailU's hash says it
// holds. A 535 then is MailU refusing a right password (a rate limit,
// AUTH_REQUIRE_TOKENS, a disabled user): ErrLoginRefused, never a reason
// to set another password.
func (s *Service) proveLogin(ctx context.Context, addr, username, pw string) error {
	err := s.cfg.VerifyLogin(ctx, addr, username, pw)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, mailu.ErrAuthFailed):
		return fmt.Errorf("%w: MailU's hash says the password is right, but its SMTP login was refused (a rate limit of the user or of this service's network, AUTH_REQUIRE_TOKENS, or a disabled user); nothing was overwritten: %w", ErrLoginRefused, err)
	default:
		return upstream("log in over SMTP AUTH", err)
	}
}

// alertedClasses are the failures that need someone at the tenant's
// MailU (its settings or an attack on its admin), not just time: the
// first run that meets one sends a security alert; runs that meet it
// again do not.
var alertedClasses = []string{"smtp_login_refused", "mailu_rate_limited", "mailu_misconfigured", "mailu_domain_full"}

// alertFailing sends the security alert of a failing tenant once per
// cause: prev is the failure mark the tenant had before this run.
func (s *Service) alertFailing(ctx context.Context, tenantID, prev, class string) {
	if !slices.Contains(alertedClasses, class) {
		return
	}
	if _, prevClass, _ := strings.Cut(prev, " "); prevClass == class {
		return
	}
	if s.cfg.Notifier == nil {
		s.log.WarnContext(ctx, "rotation failing: no notifier configured for the alert", "tenant_id", tenantID, "code", class)
		return
	}
	err := s.cfg.Notifier.Notify(ctx, notify.Message{
		Kind:     notify.KindSecurityAlert,
		Subject:  fmt.Sprintf("smtp-vault: tenant %s waits on its MailU (%s)", tenantID, class),
		Body:     fmt.Sprintf("A change of the MailU admin credential of tenant %s cannot finish: %s. Nothing was overwritten; the change stays pending and the next run retries it. See docs/deploy.md, \"What a tenant's MailU must be set to\".", tenantID, failingCauses[class]),
		TenantID: tenantID,
		Attrs:    map[string]string{"rule": "rotation_failing", "code": class, "severity": string(audit.Warning)},
	})
	if err != nil {
		s.log.ErrorContext(ctx, "rotation failing: alert not sent", "tenant_id", tenantID, "error", err)
	}
}

var failingCauses = map[string]string{
	"smtp_login_refused":  "MailU holds the password (its hash says so) but refuses it over SMTP AUTH: the admin user or this service's network is rate-limited (add the service's egress addresses to AUTH_RATELIMIT_EXEMPTION), AUTH_REQUIRE_TOKENS is on, or the user is disabled",
	"mailu_rate_limited":  "MailU's admin API answers 429: this service's network is over AUTH_RATELIMIT_IP (add its egress addresses to AUTH_RATELIMIT_EXEMPTION)",
	"mailu_misconfigured": "MailU's admin API is not configured (API=true and API_TOKEN are required)",
	"mailu_domain_full":   "MailU refuses to create the admin user: the domain has its maximum of users",
}
