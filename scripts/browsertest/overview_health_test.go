package browsertest

import (
	"context"
	"testing"
	"time"

	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
)

// TestHealthPanelAges: the Vault health panel says a backup's age in the
// unit that fits (not "0 hours ago" minutes after one), and prints no
// stray text when the health check reports no error. It moves stack's
// clock by minutes.
func TestHealthPanelAges(t *testing.T) {
	if _, err := stack.Gateway.Invoke(context.Background(), "backup", []byte(`{"source":"aws.events","detail-type":"Scheduled Event"}`)); err != nil {
		t.Fatalf("backup: %v", err)
	}
	tb := newTab(t, stack)
	tb.signIn(console.Prefix+"smtp-credentials", stack.UserWithRole(auth.RolePlatformAdmin))
	tb.waitText("#health-backup", "Green less than a minute ago (", 15*time.Second)
	var errs int
	tb.eval(`document.querySelectorAll('#health-errors').length`, &errs)
	if errs != 0 {
		t.Fatalf("the health check reports errors: %s", tb.text("#health-errors"))
	}
	tb.assertNoStrayText("overview with a healthy Vault")
	for _, c := range []struct {
		shift time.Duration
		want  string
	}{
		{time.Minute, "1 minute ago"},
		{6 * time.Minute, "7 minutes ago"},
		{53 * time.Minute, "1 hour ago"},
		{2 * time.Hour, "3 hours ago"},
	} {
		stack.Clock.Shift(c.shift)
		// Signed in afresh: the bearer token lives an hour of that clock.
		tb.signIn(console.Prefix+"smtp-credentials", stack.UserWithRole(auth.RolePlatformAdmin))
		tb.waitText("#health-backup", c.want, 15*time.Second)
	}
	tb.assertNoStrayText("overview with an older backup")
}
