package browsertest

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"smtp-vault/shared/audit"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
	"smtp-vault/shared/credential"
)

func getJSON(t *testing.T, url, bearer string, out any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func tenantPath(id string) string { return console.Prefix + "tenants/" + id + "/smtp-credentials" }

// hasEvent reports whether the trail holds event by user with details.field.
func hasEvent(events []map[string]any, event, user, field string) bool {
	for _, e := range events {
		d, _ := e["details"].(map[string]any)
		if e["event"] == event && e["user_id"] == user && d["field"] == field {
			return true
		}
	}
	return false
}

// TestSignInAndOverview: a bookmark of the overview leads to sign-in and
// back; the page has the console's CSP; the overview lists every tenant,
// filters them and reports Vault's health.
func TestSignInAndOverview(t *testing.T) {
	tb := newTab(t, stack)
	admin := stack.UserWithRole(auth.RolePlatformAdmin)
	tb.run("open the overview", chromedp.Navigate(stack.ConsoleURL()), chromedp.WaitVisible(chromedp.CSS("#sign-in-user")))
	var path string
	tb.eval(`location.pathname`, &path)
	if path != console.Prefix+"sign-in" {
		t.Errorf("signed out, the overview went to %s, want the sign-in page", path)
	}
	tb.shot("sign-in")
	tb.assertPage("sign-in")
	tb.mu.Lock()
	csp := tb.docs[stack.ConsoleURL()]
	tb.mu.Unlock()
	if csp != console.CSP {
		t.Errorf("the page's Content-Security-Policy %q, want %q", csp, console.CSP)
	}

	// A wrong password is refused on the page.
	tb.run("wrong password",
		chromedp.SendKeys(chromedp.CSS("#sign-in-user"), admin),
		chromedp.SendKeys(chromedp.CSS("#sign-in-password"), "not-the-password"),
		chromedp.Click(chromedp.CSS("#sign-in-submit")))
	tb.waitText("#sign-in-error", "wrong password", 10*time.Second)

	tb.signIn(console.Prefix+"smtp-credentials", admin)
	tb.eval(`location.pathname`, &path)
	if path != console.Prefix+"smtp-credentials" {
		t.Fatalf("after sign-in the page is %s, want the overview", path)
	}
	tb.waitText("#list-status", "3 credentials", 15*time.Second)
	for _, tn := range stack.Tenants {
		var n int
		tb.eval(`document.querySelectorAll('#tenant-rows tr[data-tenant="`+tn.TenantID+`"]').length`, &n)
		if n != 1 {
			t.Errorf("tenant %s: %d rows", tn.TenantID, n)
		}
	}
	tb.waitText("#health-seal", "Unsealed", 10*time.Second)
	tb.waitText("#health-backup", "None", 10*time.Second)
	tb.waitText("#page-info", "Page 1 of 1", 5*time.Second)
	tb.shot("overview")
	tb.assertPage("overview")

	// Filters: nothing is overdue or compromised on a fresh stack.
	tb.run("filter overdue", chromedp.Click(chromedp.CSS("#filter-overdue")))
	tb.waitText("#list-status", "0 credentials (overdue)", 10*time.Second)
	tb.waitText("#tenant-rows", "No credentials match.", 5*time.Second)
	tb.run("filter due soon", chromedp.Click(chromedp.CSS("#filter-due_soon")))
	tb.waitText("#list-status", "0 credentials (due within 7 days)", 10*time.Second)
	tb.run("filter all", chromedp.Click(chromedp.CSS("#filter-all")))
	tb.waitText("#list-status", "3 credentials.", 10*time.Second)
	tb.assertNoTokenStored()
}

// TestViewingPage: from the overview to a tenant's page keeps the session;
// the re-auth dialog comes first; reveal, hide and copy are audited and
// shown in the trail; the password is in the page only while revealed;
// a rotation within the cool-down says so (409); an emergency reset shows
// its password once and marks the credential compromised.
func TestViewingPage(t *testing.T) {
	tb := newTab(t, stack)
	admin := stack.UserWithRole(auth.RolePlatformAdmin)
	tn := stack.Tenants[0]
	tb.signIn(console.Prefix+"smtp-credentials", admin)
	tb.run("open the tenant from the overview",
		chromedp.WaitVisible(chromedp.CSS(`#tenant-rows a[href="`+tenantPath(tn.TenantID)+`"]`)),
		chromedp.Click(chromedp.CSS(`#tenant-rows a[href="`+tenantPath(tn.TenantID)+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#reauth-password")))
	if strings.Contains(tb.html(), `id="username"`) {
		t.Fatal("the credential is on the page before re-authentication")
	}
	tb.shot("reauth-dialog")
	tb.reauth(admin)
	tb.run("credential shown", chromedp.WaitVisible(chromedp.CSS("#reveal")))

	view, err := stack.App.API.Credentials.Retrieve(context.Background(), tn.TenantID, credential.Actor{UserID: "browsertest"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tb.html(), view.Password) {
		t.Fatal("the masked password is in the page")
	}
	if got := tb.text("#username"); got != view.Username {
		t.Errorf("username %q, want %q", got, view.Username)
	}
	var rel, href string
	tb.eval(`document.querySelector('#webmail').rel`, &rel)
	tb.eval(`document.querySelector('#webmail').href`, &href)
	if rel != "noopener noreferrer" || href != view.WebmailURL+"/" && href != view.WebmailURL {
		t.Errorf("webmail link %q rel %q", href, rel)
	}
	if cd := tb.text("#countdown"); !regexp.MustCompile(`^1[45]:[0-5][0-9]$`).MatchString(cd) {
		t.Errorf("countdown %q, want about 15:00", cd)
	}
	tb.waitText("#view-window", "15 minutes after you confirmed", time.Second)
	// The masked password is a field labelled Password, described as
	// hidden (an aria-label on a <code> may be skipped).
	if name, role, desc := tb.axNode("#password"); name != "Password" || role != "textbox" || desc != "Hidden" {
		t.Errorf("the masked password reads as %q, role %q, description %q; want Password, textbox, Hidden", name, role, desc)
	}
	for _, sel := range []string{"#last-rotated", "#next-rotation", "#rotation-state", "#compromise"} {
		if tb.text(sel) == "" {
			t.Errorf("%s is empty", sel)
		}
	}
	tb.shot("masked")
	tb.assertPage("viewing page")

	// Reveal: audited, then shown; hide: gone from the page.
	tb.run("reveal", chromedp.Click(chromedp.CSS("#reveal")), chromedp.WaitVisible(chromedp.CSS("#hide")))
	var got string
	tb.eval(`document.querySelector('#password').value`, &got)
	if got != view.Password {
		t.Errorf("revealed password differs")
	}
	if name, _, desc := tb.axNode("#password"); name != "Password" || desc != "Shown" {
		t.Errorf("the revealed password reads as %q, described %q", name, desc)
	}
	tb.run("hide", chromedp.Click(chromedp.CSS("#hide")), chromedp.WaitVisible(chromedp.CSS("#reveal")))
	if strings.Contains(tb.html(), view.Password) {
		t.Error("the hidden password is still in the page")
	}
	tb.run("copy password", chromedp.Click(chromedp.CSS("#copy-password")))
	tb.waitText("#copied-password", "Copied; the clipboard is cleared when the view closes.", 10*time.Second)
	if tb.clipboard() != view.Password {
		t.Error("the clipboard does not hold the copied password")
	}
	tb.run("copy username", chromedp.Click(chromedp.CSS("#copy-username")))
	tb.waitText("#copied-username", "Copied", 10*time.Second)
	if strings.Contains(tb.html(), view.Password) {
		t.Error("copying left the password in the page")
	}
	events := trail(t, stack, tn.TenantID)
	for _, want := range [][2]string{{audit.CredentialsViewed, "password"}, {audit.CredentialsCopied, "password"}, {audit.CredentialsCopied, "username"}} {
		if !hasEvent(events, want[0], admin, want[1]) {
			t.Errorf("the audit trail has no %s of the %s by %s", want[0], want[1], admin)
		}
	}
	// The page's own audit table shows them in words, and folds the reads
	// of the table itself (one per load) into one row per run.
	tb.waitText("#audit-rows", "Copied the username", 10*time.Second)
	tb.waitText("#audit-rows", "Copied the password", 10*time.Second)
	tb.waitText("#audit-rows", "Revealed the password", 10*time.Second)
	tb.waitText("#audit-rows", "Opened the credential", 10*time.Second)
	var head []string
	tb.eval(`[...document.querySelectorAll('#audit thead th')].map((th) => th.textContent)`, &head)
	if strings.Join(head, ",") != "Time,Admin,IP,Action,Details" {
		t.Errorf("the audit table's columns are %q", head)
	}

	// Enough events for a second page (each reveal adds two: the reveal
	// and the table's reload), then back: the reads of the table in a row
	// (the last reload, the older page) show as one row.
	for range 6 {
		tb.run("reveal again", chromedp.Click(chromedp.CSS("#reveal")), chromedp.WaitVisible(chromedp.CSS("#hide")),
			chromedp.Click(chromedp.CSS("#hide")), chromedp.WaitVisible(chromedp.CSS("#reveal")))
	}
	if n := len(trail(t, stack, tn.TenantID)); n <= 20 {
		t.Fatalf("the trail has %d events, too few for a second page", n)
	}
	tb.waitText("#audit-page", "Page 1 of", 5*time.Second)
	tb.run("older audit page", chromedp.Click(chromedp.CSS("#audit-next")))
	tb.waitText("#audit-page", "Page 2 of", 10*time.Second)
	tb.run("newer audit page", chromedp.Click(chromedp.CSS("#audit-prev")))
	tb.waitText("#audit-page", "Page 1 of", 10*time.Second)
	tb.assertTrailFolded()

	// A rotation moments after the seeding store: the cool-down (409).
	tb.run("rotate", chromedp.Click(chromedp.CSS("#rotate")), chromedp.WaitVisible(chromedp.CSS("#confirm-reason")),
		chromedp.SendKeys(chromedp.CSS("#confirm-reason"), "browser test"), chromedp.Click(chromedp.CSS("#confirm-submit")))
	tb.waitText("#action-error", "changed moments ago", 15*time.Second)

	// Emergency reset: confirmation, one-time password, then gone.
	tb.run("emergency reset", chromedp.Click(chromedp.CSS("#emergency-reset")), chromedp.WaitVisible(chromedp.CSS("#confirm-incident_id")),
		chromedp.SendKeys(chromedp.CSS("#confirm-incident_id"), "INC-2026-0042"),
		chromedp.SendKeys(chromedp.CSS("#confirm-reason"), "browser test"),
		chromedp.Click(chromedp.CSS("#confirm-submit")),
		chromedp.WaitVisible(chromedp.CSS("#one-time-password")))
	once := tb.text("#one-time-password")
	if len(once) < 32 {
		t.Fatalf("one-time password %q", once)
	}
	tb.waitText("#one-time-countdown", ":", 2*time.Second)
	tb.assertPage("one-time password dialog")
	// The view closed and reopened: the username copied last was left in
	// the clipboard (only the password is cleared).
	if got := tb.clipboard(); got != view.Username {
		t.Errorf("the clipboard holds %q, want the username copied last", got)
	}
	tb.run("copy the one-time password", chromedp.Click(chromedp.CSS("#copy-one-time")))
	tb.waitText("#copied-one-time", "Copied", 10*time.Second)
	if tb.clipboard() != once {
		t.Error("the clipboard does not hold the one-time password")
	}
	tb.run("dismiss", chromedp.Click(chromedp.CSS("#dismiss-password")), chromedp.WaitNotPresent(chromedp.CSS("#one-time-password")))
	if strings.Contains(tb.html(), once) {
		t.Error("the dismissed one-time password is still in the page")
	}
	tb.waitClipboard("", 5*time.Second)
	tb.waitText("#compromise", "INC-2026-0042", 15*time.Second)
	tb.waitText("#audit-rows", "Emergency reset", 10*time.Second)
	tb.waitText(`#audit-rows tr[data-event="smtp_credentials_emergency_reset"]`, "incident INC-2026-0042", 5*time.Second)
	tb.waitText(`#audit-rows tr[data-event="smtp_credentials_emergency_reset"]`, "reason: “browser test”", 5*time.Second)
	tb.assertNoTokenStored(view.Password, once)

	// Back to the overview in the same session: the tenant is compromised.
	// The overview answers from a read of the status index up to 2 s old
	// (INDEX_CACHE_TTL), so the filter is chosen again until it shows. The
	// page is let settle first (list and health loaded), so that the click
	// lands on the radio and not where it was before the layout grew.
	tb.run("back", chromedp.Click(chromedp.CSS(`a[href="`+console.Prefix+`smtp-credentials"][data-route]:not(#nav-overview)`)), chromedp.WaitVisible(chromedp.CSS("#filter-compromised")))
	tb.waitText("#list-status", "credentials.", 10*time.Second)
	tb.run("health", chromedp.WaitVisible(chromedp.CSS("#health-seal")))
	for deadline := time.Now().Add(10 * time.Second); ; {
		tb.run("filter", chromedp.Click(chromedp.CSS("#filter-all")), chromedp.Click(chromedp.CSS("#filter-compromised")))
		if tb.hasText("#list-status", "1 credential (compromised)", 2*time.Second) || time.Now().After(deadline) {
			break
		}
	}
	tb.waitText("#list-status", "1 credential (compromised)", time.Second)
	tb.waitText("#tenant-rows", tn.TenantID, 5*time.Second)
}

// TestSupportTeam: support-team sees no rotate or reset, may close the
// re-auth dialog with Escape, and at the overview's address gets one
// message that it is not for their role, with the way to a tenant.
func TestSupportTeam(t *testing.T) {
	tb := newTab(t, stack)
	support := stack.UserWithRole(auth.RoleSupport)
	tn := stack.Tenants[1]
	tb.signIn(console.Prefix+"sign-in", support)
	tb.run("open a tenant by id",
		chromedp.WaitVisible(chromedp.CSS("#open-tenant")),
		chromedp.SendKeys(chromedp.CSS("#open-tenant"), tn.TenantID+"\r"),
		chromedp.WaitVisible(chromedp.CSS("#reauth-password")))
	var actions, nav bool
	tb.eval(`!!document.querySelector('#actions, #rotate, #emergency-reset')`, &actions)
	tb.eval(`!document.querySelector('#nav').hidden`, &nav)
	if actions || nav {
		t.Errorf("support-team sees actions %v, the overview link %v", actions, nav)
	}
	tb.run("escape", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotPresent(chromedp.CSS("#reauth-form")), chromedp.WaitVisible(chromedp.CSS("#unlock")))
	tb.run("to the overview", chromedp.Evaluate[chromedp.Void](`performance.clearResourceTimings(); history.pushState({}, '', '/platform-admin/smtp-credentials'); dispatchEvent(new PopStateEvent('popstate'))`))
	tb.waitText("#not-for-role", "with the support-team role, which cannot list tenants", 10*time.Second)
	if h := tb.text("h1"); h != "The overview is for platform admins" {
		t.Errorf("the overview's address shows %q to support-team", h)
	}
	// One message and the tenant form: no half-built overview, no errors,
	// and no listing asked for.
	time.Sleep(500 * time.Millisecond)
	var shown struct {
		Overview, Errors int
		Listings         int
	}
	tb.eval(`({Overview: document.querySelectorAll('#filters, #search, #tenants, #rotate-overdue, #health').length,
		Errors: [...document.querySelectorAll('.error')].filter((e) => !e.hidden).length,
		Listings: performance.getEntriesByType('resource').filter((r) => r.name.includes('/api/v1/platform-admin/smtp-credentials') || r.name.includes('/vault/health')).length})`, &shown)
	if shown.Overview != 0 || shown.Errors != 0 || shown.Listings != 0 {
		t.Errorf("support-team at the overview: %d overview parts, %d errors, %d listing requests; want none", shown.Overview, shown.Errors, shown.Listings)
	}
	tb.run("open a tenant from there", chromedp.SendKeys(chromedp.CSS("#open-tenant"), tn.TenantID+"\r"), chromedp.WaitVisible(chromedp.CSS("#reauth-password")))
	tb.assertNoTokenStored()
}

// TestReauthDialogKeyboard: the re-auth dialog is used with the keyboard
// only; Tab and Shift-Tab stay inside it, Escape closes it and gives focus
// back.
func TestReauthDialogKeyboard(t *testing.T) {
	tb := newTab(t, stack)
	admin := stack.UserWithRole(auth.RolePlatformAdmin)
	u, _ := stack.User(admin)
	tn := stack.Tenants[2]
	tb.signIn(tenantPath(tn.TenantID), admin)
	tb.run("dialog", chromedp.WaitVisible(chromedp.CSS("#reauth-password")))
	focus := func() string {
		var id string
		tb.eval(`document.activeElement ? document.activeElement.id : ''`, &id)
		return id
	}
	if f := focus(); f != "reauth-password" {
		t.Fatalf("the dialog opened with focus on %q", f)
	}
	var order []string
	for range 4 {
		tb.run("tab", chromedp.KeyEvent(kb.Tab))
		order = append(order, focus())
	}
	if strings.Join(order, " ") != "reauth-code reauth-submit reauth-cancel reauth-password" {
		t.Errorf("Tab went %v; want it to cycle inside the dialog", order)
	}
	tb.run("shift-tab", chromedp.KeyEvent(kb.Tab, chromedp.KeyModifiers(chromedp.ModifierShift)))
	if f := focus(); f != "reauth-cancel" {
		t.Errorf("Shift-Tab from the first field went to %q, want the last button", f)
	}
	tb.run("escape", chromedp.KeyEvent(kb.Escape), chromedp.WaitNotPresent(chromedp.CSS("#reauth-form")))
	var tag string
	tb.eval(`document.activeElement ? document.activeElement.tagName : ''`, &tag)
	if tag == "" || tag == "BODY" {
		t.Errorf("closing the dialog left focus on %q, not where it was", tag)
	}
	// Tab to the unlock button and use the dialog with keys alone.
	for i := 0; focus() != "unlock"; i++ {
		if i > 15 {
			t.Fatal("Tab never reached the unlock button")
		}
		tb.run("tab", chromedp.KeyEvent(kb.Tab))
	}
	code, err := stack.TOTPCode(admin)
	if err != nil {
		t.Fatal(err)
	}
	tb.run("keyboard re-auth",
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#reauth-password")),
		chromedp.KeyEvent(u.Password),
		chromedp.KeyEvent(kb.Tab),
		chromedp.KeyEvent(code),
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#reveal")))
	var outline string
	tb.run("focus reveal", chromedp.Focus(chromedp.CSS("#reveal")))
	tb.eval(`getComputedStyle(document.activeElement).outlineStyle`, &outline)
	if outline == "none" || outline == "" {
		t.Errorf("a focused button shows no focus ring (outline %q)", outline)
	}
	tb.run("reveal by keyboard", chromedp.KeyEvent(kb.Enter), chromedp.WaitVisible(chromedp.CSS("#hide")))
	if f := focus(); f != "hide" {
		t.Errorf("after reveal focus is on %q, want the hide button", f)
	}
}

// TestNarrowLayout: at 390 px the overview and the viewing page fit the
// width (the table stacks), with no horizontal scrolling of the page.
func TestNarrowLayout(t *testing.T) {
	tb := newTab(t, stack)
	tb.run("390 px", chromedp.EmulateViewport(390, 844))
	tb.signIn(console.Prefix+"smtp-credentials", stack.UserWithRole(auth.RolePlatformAdmin))
	tb.waitText("#list-status", "credentials", 15*time.Second)
	overflow := func(where string) {
		var o struct{ Scroll, Client int }
		tb.eval(`({Scroll: document.documentElement.scrollWidth, Client: document.documentElement.clientWidth})`, &o)
		if o.Scroll > o.Client {
			t.Errorf("%s at 390 px: the page is %d px wide in a %d px window", where, o.Scroll, o.Client)
		}
	}
	overflow("overview")
	tb.shot("overview-390")
	tb.run("tenant", chromedp.Click(chromedp.CSS(`#tenant-rows a`)), chromedp.WaitVisible(chromedp.CSS("#reauth-password")))
	overflow("viewing page")
	tb.shot("viewing-390")
}

// assertTrailFolded: the audit table never shows two reads of itself in
// a row (a run is one row, "N times"), and its first row is such a run.
func (tb *tab) assertTrailFolded() {
	tb.t.Helper()
	var rows []struct{ Event, Details string }
	tb.eval(`[...document.querySelectorAll('#audit-rows tr')].map((tr) => ({Event: tr.dataset.event || '', Details: tr.cells[4] ? tr.cells[4].textContent : ''}))`, &rows)
	for i := 1; i < len(rows); i++ {
		if rows[i].Event == audit.AuditTrailQueried && rows[i-1].Event == audit.AuditTrailQueried {
			tb.t.Errorf("rows %d and %d are both reads of the trail, not folded into one", i-1, i)
		}
	}
	if len(rows) == 0 || rows[0].Event != audit.AuditTrailQueried || !strings.HasSuffix(rows[0].Details, " times") {
		tb.t.Errorf("the first row %+v is not the folded run of the table's last reads", rows[:min(1, len(rows))])
	}
	tb.waitText("#audit-rows", "Read this activity list", time.Second)
}
