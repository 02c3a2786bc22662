package browsertest

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
)

// TestOverviewSearchAndFailing: the search box finds a tenant by domain
// as you type and by tenant id on Enter, and the failing filter lists no
// tenant on a healthy stack.
func TestOverviewSearchAndFailing(t *testing.T) {
	tb := newTab(t, stack)
	tb.signIn(console.Prefix+"smtp-credentials", stack.UserWithRole(auth.RolePlatformAdmin))
	tb.waitText("#list-status", "3 credentials", 15*time.Second)
	tn := stack.Tenants[1]
	// As you type, without Enter: one listing once typing pauses, not one
	// a key.
	tb.eval(`(() => { performance.clearResourceTimings(); return 0; })()`, new(int))
	tb.run("search by domain", chromedp.SendKeys(chromedp.CSS("#search"), tn.Domain))
	tb.waitText("#list-status", "1 credential matching “"+tn.Domain+"”", 10*time.Second)
	var listings int
	tb.eval(`performance.getEntriesByType('resource').filter((r) => r.name.includes('/smtp-credentials?') && r.name.includes('q=')).length`, &listings)
	// One a key would be len(tn.Domain); a slow machine may pause now and
	// then between keys, so allow a few.
	if listings < 1 || listings > len(tn.Domain)/3 {
		t.Errorf("typing %d characters sent %d searches, want one per pause", len(tn.Domain), listings)
	}
	tb.waitText("#tenant-rows", tn.Domain, 5*time.Second)
	tb.waitText("#tenant-rows", tn.TenantID, 5*time.Second)
	// Part of a tenant id, typed after selecting what the box held.
	tb.run("search by id", chromedp.Click(chromedp.CSS("#search")), chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.KeyEvent(stack.Tenants[2].TenantID[9:23]+"\r"))
	tb.waitText("#list-status", "1 credential matching", 10*time.Second)
	tb.waitText("#tenant-rows", stack.Tenants[2].TenantID, 10*time.Second)
	tb.run("clear", chromedp.Click(chromedp.CSS("#search")), chromedp.KeyEvent("a", chromedp.KeyModifiers(chromedp.ModifierCtrl)),
		chromedp.KeyEvent("\b\r"))
	tb.waitText("#list-status", "3 credentials.", 10*time.Second)
	tb.run("failing", chromedp.Click(chromedp.CSS("#filter-failing")))
	tb.waitText("#list-status", "0 credentials (rotation failing)", 10*time.Second)
}
