package browsertest

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
	"smtp-vault/shared/credential"
)

// These tests use shortStack, whose re-auth tokens live shortTTL. They
// run in this order: the last two move its clock forward.

// TestCountdownExpiry: a bookmark of a tenant's page returns there after
// sign-in; the page names the real window (25 seconds here, not a
// constant 15 minutes); the countdown warns (role=alert) in its last two
// minutes, and at zero the password is removed from the document and
// from the clipboard, and the re-auth dialog returns.
func TestCountdownExpiry(t *testing.T) {
	s := shortStack
	tb := newTab(t, s)
	admin := s.UserWithRole(auth.RolePlatformAdmin)
	tn := s.Tenants[0]
	tb.signIn(tenantPath(tn.TenantID), admin)
	var path string
	tb.eval(`location.pathname`, &path)
	if path != tenantPath(tn.TenantID) {
		t.Fatalf("after sign-in the page is %s, want the tenant's page", path)
	}
	tb.reauth(admin)
	tb.run("reveal", chromedp.WaitVisible(chromedp.CSS("#reveal")), chromedp.Click(chromedp.CSS("#reveal")), chromedp.WaitVisible(chromedp.CSS("#hide")))
	var pw string
	tb.eval(`document.querySelector('#password').value`, &pw)
	if len(pw) < 16 {
		t.Fatalf("revealed password %q", pw)
	}
	tb.waitText("#view-window", "25 seconds after you confirmed", time.Second)
	tb.run("copy", chromedp.Click(chromedp.CSS("#copy-password")))
	tb.waitText("#copied-password", "Copied", 5*time.Second)
	if tb.clipboard() != pw {
		t.Error("the clipboard does not hold the copied password")
	}
	tb.waitText("#expiry-warning", "less than 2 minutes", 5*time.Second)
	var role string
	tb.eval(`document.querySelector('#expiry-warning').getAttribute('role')`, &role)
	if role != "alert" {
		t.Errorf("the warning's role %q, want alert", role)
	}
	tb.shot("warning")
	tb.run("expiry", chromedp.WaitVisible(chromedp.CSSAll("#reauth-password")))
	if html := tb.html(); strings.Contains(html, pw) || strings.Contains(html, `id="password"`) {
		t.Error("the password is still in the document after the view closed")
	}
	tb.waitClipboard("", 5*time.Second)
	tb.waitText("#secret", "The view closed after its 25 seconds; the password was removed", time.Second)
	tb.waitText("#reauth-why", "The view closes after 25 seconds.", time.Second)
	if strings.Contains(tb.html(), "15 minutes") {
		t.Error("a 25-second window is called 15 minutes")
	}
	tb.shot("expired")
	tb.assertNoTokenStored(pw)
}

// TestSessionExpiry: when the API answers 401 for the bearer token, the
// console goes to sign-in and, after it, back to the same page.
func TestSessionExpiry(t *testing.T) {
	s := shortStack
	tb := newTab(t, s)
	admin := s.UserWithRole(auth.RolePlatformAdmin)
	tb.signIn(console.Prefix+"smtp-credentials", admin)
	tb.waitText("#list-status", "2 credentials", 15*time.Second)
	s.Clock.Shift(2 * time.Hour) // the bearer token (1 hour) has expired
	tb.run("filter", chromedp.Click(chromedp.CSS("#filter-overdue")), chromedp.WaitVisible(chromedp.CSS("#sign-in-user")))
	tb.waitText("main", "Your session has ended", 5*time.Second)
	u, _ := s.User(admin)
	tb.run("sign in again",
		chromedp.SendKeys(chromedp.CSS("#sign-in-user"), admin),
		chromedp.SendKeys(chromedp.CSS("#sign-in-password"), u.Password),
		chromedp.Click(chromedp.CSS("#sign-in-submit")),
		chromedp.WaitVisible(chromedp.CSS("#filters")))
	var path string
	tb.eval(`location.pathname`, &path)
	if path != console.Prefix+"smtp-credentials" {
		t.Errorf("after signing in again the page is %s", path)
	}
	tb.waitText("#list-status", "2 credentials", 15*time.Second)
}

// TestBulkRotation: half a year later every credential is overdue; the
// bulk rotation asks for a reason, a confirmation and re-auth, then
// follows each queued tenant until it left the overdue list.
func TestBulkRotation(t *testing.T) {
	s := shortStack
	s.Clock.Shift(credential.RotationInterval + 24*time.Hour)
	tb := newTab(t, s)
	admin := s.UserWithRole(auth.RolePlatformAdmin)
	tb.signIn(console.Prefix+"smtp-credentials", admin)
	tb.run("overdue", chromedp.WaitVisible(chromedp.CSS("#filter-overdue")), chromedp.Click(chromedp.CSS("#filter-overdue")))
	tb.waitText("#list-status", "2 credentials (overdue)", 15*time.Second)
	tb.waitText("#tenant-rows", "overdue by", 5*time.Second)
	tb.run("rotate overdue", chromedp.Click(chromedp.CSS("#rotate-overdue")), chromedp.WaitVisible(chromedp.CSS("#confirm-reason")))
	if title := tb.text("#confirm-title"); !strings.Contains(title, "Rotate 2 overdue credentials") {
		t.Errorf("confirmation %q", title)
	}
	tb.run("confirm", chromedp.SendKeys(chromedp.CSS("#confirm-reason"), "browser test: overdue"), chromedp.Click(chromedp.CSS("#confirm-submit")))
	tb.reauth(admin)
	tb.waitText("#bulk-summary", "of 2 rotated", 15*time.Second)
	tb.waitText("#bulk-summary", "2 of 2 rotated", 90*time.Second)
	for _, tn := range s.Tenants {
		tb.waitText(`#bulk-results li[data-tenant="`+tn.TenantID+`"]`, "rotated", 5*time.Second)
	}
	tb.waitText("#list-status", "0 credentials (overdue)", 15*time.Second)
	tb.shot("bulk-done")
}

// TestOneTimePasswordWipedWithTheWindow: the one-time password of an
// emergency reset obeys the re-auth window like the view: when it ends,
// the dialog closes and the password leaves the page and the clipboard.
// It runs after the clock moved half a year: the page times the window
// from the token's own lifetime, not from the server's clock.
func TestOneTimePasswordWipedWithTheWindow(t *testing.T) {
	s := shortStack
	tb := newTab(t, s)
	admin := s.UserWithRole(auth.RolePlatformAdmin)
	tn := s.Tenants[1]
	tb.signIn(tenantPath(tn.TenantID), admin)
	tb.reauth(admin)
	tb.run("emergency reset", chromedp.WaitVisible(chromedp.CSS("#reveal")),
		chromedp.Click(chromedp.CSS("#emergency-reset")), chromedp.WaitVisible(chromedp.CSS("#confirm-incident_id")),
		chromedp.SendKeys(chromedp.CSS("#confirm-incident_id"), "INC-2026-0099"),
		chromedp.Click(chromedp.CSS("#confirm-submit")),
		chromedp.WaitVisible(chromedp.CSS("#one-time-password")))
	once := tb.text("#one-time-password")
	if len(once) < 32 {
		t.Fatalf("one-time password %q", once)
	}
	if left := tb.text("#one-time-countdown"); left < "00:10" || left > "00:25" {
		t.Errorf("the dialog closes in %q, want the rest of the 25-second window", left)
	}
	tb.run("copy", chromedp.Click(chromedp.CSS("#copy-one-time")))
	tb.waitText("#copied-one-time", "Copied", 5*time.Second)
	if tb.clipboard() != once {
		t.Error("the clipboard does not hold the one-time password")
	}
	tb.shot("one-time")
	tb.run("window ends", chromedp.WaitNotPresent(chromedp.CSS("#one-time-password")))
	if strings.Contains(tb.html(), once) {
		t.Error("the one-time password is still in the page after the window ended")
	}
	tb.waitClipboard("", 5*time.Second)
	tb.waitText("#one-time-expired", "removed from the page when your confirmation ran out, after 25 seconds", 5*time.Second)
	tb.assertNoTokenStored(once)
}
