//go:build leadoverview

// These tests need the overview API's `q` parameter, `status=failing` and
// the items' `domain` and `rotation_failing` fields, which land in a
// parallel change; until then the API refuses them (400). Run them with
// -tags leadoverview; remove this constraint once that change is merged.

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
	tb.run("search by id", chromedp.Clear(chromedp.CSS("#search")), chromedp.SendKeys(chromedp.CSS("#search"), stack.Tenants[2].TenantID+"\r"))
	tb.waitText("#tenant-rows", stack.Tenants[2].TenantID, 10*time.Second)
	tb.run("clear", chromedp.Clear(chromedp.CSS("#search")), chromedp.SendKeys(chromedp.CSS("#search"), "\r"))
	tb.waitText("#list-status", "3 credentials.", 10*time.Second)
	tb.run("failing", chromedp.Click(chromedp.CSS("#filter-failing")))
	tb.waitText("#list-status", "0 credentials (rotation failing)", 10*time.Second)
}
