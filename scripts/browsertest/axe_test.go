package browsertest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
)

// axeJS is axe-core's script, read once by TestMain (installAxe).
var axeJS string

// installAxe returns axe-core's script, pinned by axe/package-lock.json.
// The first run installs it with `npm ci` into the tools cache
// (SMTP_VAULT_CACHE, git-ignored), in a folder named by the lockfile's
// hash, so a new pin installs afresh and node_modules is never in the
// repository.
func installAxe() (string, error) {
	root, err := devenv.RepoRoot()
	if err != nil {
		return "", err
	}
	src := filepath.Join(root, "scripts", "browsertest", "axe")
	lock, err := os.ReadFile(filepath.Join(src, "package-lock.json"))
	if err != nil {
		return "", err
	}
	cache, err := devenv.CacheDir()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(lock)
	dir := filepath.Join(cache, "axe-"+hex.EncodeToString(sum[:8]))
	script := filepath.Join(dir, "node_modules", "axe-core", "axe.min.js")
	if _, err := os.Stat(script); err != nil {
		if err := os.MkdirAll(cache, 0o755); err != nil {
			return "", err
		}
		tmp, err := os.MkdirTemp(cache, "axe-install-")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(tmp)
		for _, f := range []string{"package.json", "package-lock.json"} {
			b, err := os.ReadFile(filepath.Join(src, f))
			if err == nil {
				err = os.WriteFile(filepath.Join(tmp, f), b, 0o644)
			}
			if err != nil {
				return "", err
			}
		}
		cmd := exec.Command("npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
		cmd.Dir = tmp
		if out, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("install axe-core (npm ci, needs Node and the npm registry): %v\n%s", err, out)
		}
		// Another test run may have installed it meanwhile: either copy will do.
		if err := os.Rename(tmp, dir); err != nil {
			if _, statErr := os.Stat(script); statErr != nil {
				return "", fmt.Errorf("install axe-core: %w", err)
			}
		}
	}
	b, err := os.ReadFile(script)
	return string(b), err
}

// axeRunJS runs axe-core on the document (WCAG 2.x A and AA, and best
// practice) and lists its serious and critical findings.
const axeRunJS = `axe.run(document, {
  runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']},
  resultTypes: ['violations'],
}).then((r) => r.violations
  .filter((v) => v.impact === 'serious' || v.impact === 'critical')
  .map((v) => v.impact + ' ' + v.id + ': ' + v.help + ' (' + v.nodes.map((n) => n.target.join(' ')).join(', ') + ')'))`

// axeFindings injects axe-core into the page (through DevTools, which the
// page's CSP does not govern) and returns its serious and critical
// findings.
func (tb *tab) axeFindings() []string {
	tb.t.Helper()
	if axeJS == "" {
		tb.t.Fatal("axe-core is not loaded")
	}
	loaded, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`typeof axe === 'object'`))
	if err == nil && !loaded {
		_, err = chromedp.Run(tb.ctx, chromedp.Evaluate[chromedp.Void](axeJS+"\n;undefined"))
	}
	var found []string
	if err == nil {
		found, err = chromedp.Run(tb.ctx, chromedp.Evaluate[[]string](axeRunJS, chromedp.EvalAwaitPromise))
	}
	if err != nil {
		tb.shot("failed")
		tb.t.Fatalf("run axe-core: %v", err)
	}
	return found
}

// assertAxe fails the test on axe-core's serious and critical findings.
func (tb *tab) assertAxe(page string) {
	tb.t.Helper()
	for _, f := range tb.axeFindings() {
		tb.t.Errorf("%s: axe-core: %s", page, f)
	}
}

// assertPage: no serious or critical axe-core finding, no text under AA
// contrast, no stray text.
func (tb *tab) assertPage(page string) {
	tb.t.Helper()
	tb.assertAxe(page)
	tb.assertContrast(page)
	tb.assertNoStrayText(page)
}

// TestAccessibilityChecksFindFaults: the page checks find what they are
// for, so a clean page means something: a button without a name (axe-core,
// critical), an image without a text alternative (serious), a null
// printed as text.
func TestAccessibilityChecksFindFaults(t *testing.T) {
	tb := newTab(t, stack)
	tb.run("open the sign-in page", chromedp.Navigate(stack.ConsoleURL()), chromedp.WaitVisible(chromedp.CSS("#sign-in-user")))
	if found := tb.axeFindings(); len(found) != 0 {
		t.Fatalf("the sign-in page has findings before the probes: %q", found)
	}
	tb.eval(`(() => { const m = document.querySelector('main');
		const b = document.createElement('button'); b.id = 'probe-button'; m.append(b);
		const i = document.createElement('img'); i.id = 'probe-img'; i.src = 'data:image/gif;base64,R0lGODlhAQABAAAAACw='; m.append(i);
		const p = document.createElement('p'); p.id = 'probe-text'; p.append('Last backup ', String(null)); m.append(p);
		return 0; })()`, new(int))
	found := strings.Join(tb.axeFindings(), "\n")
	for _, want := range []string{"critical button-name", "#probe-button", "image-alt", "#probe-img"} {
		if !strings.Contains(found, want) {
			t.Errorf("axe-core did not report %q; it found:\n%s", want, found)
		}
	}
	var stray []string
	tb.eval(strayTextJS, &stray)
	if len(stray) != 1 || stray[0] != "null" {
		t.Errorf("the stray-text check found %q, want the null probe", stray)
	}
}

// TestAccessibilityOfEveryPage: axe-core finds nothing serious or critical
// on the sign-in pages (local and hosted), the error pages (an unknown address; the overview
// opened by a role that cannot use it), the overview, and the viewing page
// with its re-auth dialog, its credential masked and revealed.
func TestAccessibilityOfEveryPage(t *testing.T) {
	tb := newTab(t, stack)
	tb.run("sign-in page", chromedp.Navigate(stack.ConsoleURL()), chromedp.WaitVisible(chromedp.CSS("#sign-in-user")))
	tb.assertPage("sign-in page")
	tb.run("wrong password",
		chromedp.SendKeys(chromedp.CSS("#sign-in-user"), "nobody"),
		chromedp.SendKeys(chromedp.CSS("#sign-in-password"), "not-the-password"),
		chromedp.Click(chromedp.CSS("#sign-in-submit")),
		chromedp.WaitVisible(chromedp.CSS("#sign-in-error")))
	tb.assertPage("sign-in page with an error")
	tb.run("an unknown address", chromedp.Navigate(stack.APIURL+console.Prefix+"no-such-page"), chromedp.WaitVisible(chromedp.CSS("h1")))
	if h := tb.text("h1"); h != "Page not found" {
		t.Errorf("the unknown address shows %q", h)
	}
	tb.assertPage("not-found page")

	tb.signIn(console.Prefix+"smtp-credentials", stack.UserWithRole(auth.RoleSupport))
	tb.run("not for the role", chromedp.WaitVisible(chromedp.CSS("#not-for-role")))
	tb.assertPage("overview opened by support-team")

	tb.signIn(console.Prefix+"smtp-credentials", stack.UserWithRole(auth.RolePlatformAdmin))
	tb.waitText("#list-status", "credentials", 15*time.Second)
	tb.run("health", chromedp.WaitVisible(chromedp.CSS("#health-seal")))
	tb.assertPage("overview")

	admin := stack.UserWithRole(auth.RolePlatformAdmin)
	tn := stack.Tenants[2]
	tb.run("a tenant", chromedp.Click(chromedp.CSS(`#tenant-rows a[href="`+tenantPath(tn.TenantID)+`"]`)), chromedp.WaitVisible(chromedp.CSS("#reauth-password")))
	tb.assertPage("viewing page with the re-auth dialog")
	tb.reauth(admin)
	tb.run("credential shown", chromedp.WaitVisible(chromedp.CSS("#reveal")))
	tb.waitText("#audit-rows", "Opened the credential", 10*time.Second)
	tb.assertPage("viewing page, password masked")
	tb.run("reveal", chromedp.Click(chromedp.CSS("#reveal")), chromedp.WaitVisible(chromedp.CSS("#hide")))
	tb.assertPage("viewing page, password revealed")

	// The sign-in page as in AWS: the identity provider's hosted login.
	hosted := newTab(t, hostedStack)
	hosted.run("hosted sign-in page", chromedp.Navigate(hostedStack.ConsoleURL()), chromedp.WaitVisible(chromedp.CSS("#sign-in-hosted")))
	hosted.assertPage("hosted sign-in page")
}
