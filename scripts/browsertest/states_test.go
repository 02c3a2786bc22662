package browsertest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"smtp-vault/scripts/devenv/mailustandin"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
	"smtp-vault/shared/credential"
)

// The overview pages through more tenants than fit a page, and its
// failing filter and badge show a tenant whose rotation failed; then a
// locked-out re-authentication shows its retry time (429), and a sealed
// Vault shows as unavailable (503). They run in this order on stateStack,
// which each leaves worse than it found it.
func TestOverviewPagingFailingAndErrorStates(t *testing.T) {
	ctx := context.Background()
	s := stateStack
	svc := s.App.API.Credentials
	now := s.Clock.Now()
	s.SeedPlaceholderTenants(t, 44, func(i int) time.Time { return now.Add(-time.Duration(i) * 24 * time.Hour) })
	if _, err := svc.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	// The demo tenant's rotation fails: its MailU is down.
	tn := s.Tenants[0]
	if err := s.MailU.SetFaults(ctx, tn.Domain, mailustandin.Faults{Down: true}); err != nil {
		t.Fatal(err)
	}
	s.Clock.Shift(11 * time.Minute) // past the cool-down since it was stored
	if _, err := svc.Rotate(ctx, credential.Request{TenantID: tn.TenantID, Trigger: credential.TriggerManual, Reason: "browser test"}); err == nil {
		t.Fatal("a rotation with MailU down succeeded")
	}

	tb := newTab(t, s)
	admin := s.UserWithRole(auth.RolePlatformAdmin)
	tb.signIn(console.Prefix+"smtp-credentials", admin)
	tb.waitText("#list-status", "45 credentials.", 15*time.Second)
	tb.waitText("#page-info", "Page 1 of 3", 5*time.Second)
	tb.run("next page", chromedp.Click(chromedp.CSS("#page-next")))
	tb.waitText("#page-info", "Page 2 of 3", 10*time.Second)
	tb.run("last page", chromedp.Click(chromedp.CSS("#page-next")))
	tb.waitText("#page-info", "Page 3 of 3", 10*time.Second)
	var nextDisabled bool
	tb.eval(`document.querySelector('#page-next').disabled`, &nextDisabled)
	if !nextDisabled {
		t.Error("Next is enabled on the last page")
	}
	tb.run("health", chromedp.WaitVisible(chromedp.CSS("#health-seal")))
	tb.run("failing", chromedp.Click(chromedp.CSS("#filter-failing")))
	tb.waitText("#list-status", "1 credential (rotation failing)", 10*time.Second)
	tb.waitText("#tenant-rows", tn.TenantID, 5*time.Second)
	tb.waitText("#tenant-rows", "Rotation failing", 5*time.Second)
	tb.shot("failing")
	tb.assertPage("overview with a failing tenant")
	// The check itself finds light grey on white.
	var found []string
	tb.eval(`(() => { const p = document.createElement('p'); p.id = 'probe'; p.textContent = 'grey probe'; p.style.color = '#bbbbbb'; p.style.background = '#ffffff'; document.querySelector('main').append(p); return 0; })()`, new(int))
	tb.eval(contrastJS, &found)
	tb.eval(`(() => { document.querySelector('#probe').remove(); return 0; })()`, new(int))
	if len(found) != 1 || !strings.HasPrefix(found[0], "grey probe") {
		t.Errorf("the contrast check found %q, want the grey probe only", found)
	}

	// 429: wrong codes until re-authentication locks; the dialog says when
	// to try again.
	tb.run("open the tenant", chromedp.Click(chromedp.CSS(`#tenant-rows a[href="`+tenantPath(tn.TenantID)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#reauth-password")))
	u, _ := s.User(admin)
	locked := false
	for i := 0; i < 6 && !locked; i++ {
		tb.run("wrong code", chromedp.Clear(chromedp.CSS("#reauth-password")), chromedp.SendKeys(chromedp.CSS("#reauth-password"), u.Password),
			chromedp.SendKeys(chromedp.CSS("#reauth-code"), "000000"), chromedp.Click(chromedp.CSS("#reauth-submit")))
		locked = tb.hasText("#reauth-form", "Too many attempts. Try again in ", 3*time.Second)
	}
	if !locked {
		tb.shot("failed")
		t.Fatal("no 429 message with a retry time after repeated wrong codes")
	}
	tb.waitText("#reauth-form", " seconds.", time.Second)
	tb.shot("locked")
	tb.assertPage("re-auth dialog with an error")
	tb.run("cancel", chromedp.Click(chromedp.CSS("#reauth-cancel")))

	// 503: Vault sealed. Once the overview's index cache has expired the
	// listing fails, and the page says what is unavailable.
	if err := s.Vault.Root().Sys().SealWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(s.Apps["console"].Config.IndexCacheTTL + 100*time.Millisecond)
	tb.run("overview", chromedp.Click(chromedp.CSS("#nav-overview")))
	tb.waitText("#list-error", "is unavailable; nothing was changed", 15*time.Second)
	tb.waitText("#health-seal", "Sealed", 15*time.Second)
	tb.shot("sealed")
	tb.assertPage("overview with Vault sealed")
}
