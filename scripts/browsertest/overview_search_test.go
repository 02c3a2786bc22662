package browsertest

import (
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
)

// TestOverviewSearchAndFailing: the search box finds a tenant by domain
// and by tenant id, and the failing filter lists no tenant on a healthy
// stack.
func TestOverviewSearchAndFailing(t *testing.T) {
	tb := newTab(t, stack)
	tb.signIn(console.Prefix+"smtp-credentials", stack.UserWithRole(auth.RolePlatformAdmin))
	tb.waitText("#list-status", "3 credentials", 15*time.Second)
	tn := stack.Tenants[1]
	tb.run("search by domain", chromedp.SendKeys(chromedp.CSS("#search"), tn.Domain+"\r"))
	tb.waitText("#list-status", "1 credential matching", 10*time.Second)
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
