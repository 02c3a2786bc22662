package browsertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"encoding/json"

	"github.com/chromedp/cdproto/accessibility"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/auth"
)

// shortTTL is the re-auth lifetime of the second stack, whose tests
// watch the viewing page's countdown run out.
const shortTTL = 25 * time.Second

// One stack (15-minute re-auth) for most tests, one with shortTTL whose
// clock the later tests move forward, and one browser: a tab per test.
var (
	stack, shortStack *devenv.TestStack
	// stateStack is for the tests that damage it: many tenants, a failing
	// rotation, a locked-out admin, a sealed Vault (states_test.go).
	stateStack *devenv.TestStack
	// hostedStack signs the console in as in AWS: authorization code
	// with PKCE at the local identity provider stand-in (hosted_test.go).
	hostedStack *devenv.TestStack
	browserCtx  context.Context
	chromiumErr error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	tmp, err := os.MkdirTemp("", "browsertest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(tmp)

	var wg sync.WaitGroup
	var errA, errB, errC, errD, errAxe error
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	wg.Go(func() { stack, errA = devenv.NewTestStack(ctx, filepath.Join(tmp, "a"), 3, nil) })
	wg.Go(func() {
		shortStack, errB = devenv.NewTestStack(ctx, filepath.Join(tmp, "b"), 2, func(o *devenv.StackOptions) { o.ReauthTTL = shortTTL })
	})
	wg.Go(func() { stateStack, errC = devenv.NewTestStack(ctx, filepath.Join(tmp, "c"), 1, nil) })
	wg.Go(func() {
		hostedStack, errD = devenv.NewTestStack(ctx, filepath.Join(tmp, "d"), 1, func(o *devenv.StackOptions) { o.HostedSignIn = true })
	})
	wg.Go(func() { axeJS, errAxe = installAxe() })
	var closeBrowser func()
	browserCtx, closeBrowser, chromiumErr = startBrowser(filepath.Join(tmp, "chromium"))
	wg.Wait()
	for _, s := range []*devenv.TestStack{stack, shortStack, stateStack, hostedStack} {
		if s != nil {
			defer s.Close()
		}
	}
	if closeBrowser != nil {
		defer closeBrowser()
	}
	if err := errors.Join(errA, errB, errC, errD, errAxe); err != nil {
		fmt.Fprintf(os.Stderr, "browsertest: start the stacks: %v\n", err)
		return 1
	}
	return m.Run()
}

// chromiumPath is $CHROMIUM, else Debian's chromium.
func chromiumPath() (string, error) {
	p := os.Getenv("CHROMIUM")
	if p == "" {
		p = "/usr/bin/chromium"
	}
	if _, err := exec.LookPath(p); err != nil {
		return "", fmt.Errorf("no Chromium at %s (set CHROMIUM, or run `make chromium` as root to install Debian's chromium): %w", p, err)
	}
	return p, nil
}

func startBrowser(userData string) (context.Context, func(), error) {
	path, err := chromiumPath()
	if err != nil {
		return nil, nil, err
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(userData),
		chromedp.WindowSize(1280, 900),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
	)
	ctx, cancelBrowser := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		return nil, nil, fmt.Errorf("start Chromium %s: %w", path, err)
	}
	return ctx, func() { cancelBrowser(); cancelAlloc() }, nil
}

// tab is one browser tab of a test, with what the page reported.
type tab struct {
	ctx    context.Context
	t      *testing.T
	s      *devenv.TestStack
	mu     sync.Mutex
	errors []string          // exceptions and CSP violations
	docs   map[string]string // document URL -> its Content-Security-Policy
}

// newTab opens a tab on stack s; the test fails if the page throws or
// breaks its CSP.
func newTab(t *testing.T, s *devenv.TestStack) *tab {
	t.Helper()
	if chromiumErr != nil {
		t.Fatalf("browser tests need Chromium: %v", chromiumErr)
	}
	ctx, cancel := chromedp.NewContext(browserCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 2*time.Minute)
	tb := &tab{ctx: ctx, t: t, s: s, docs: map[string]string{}}
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
	})
	err := chromedp.Listen(ctx, func(ev any) {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventExceptionThrown:
			msg := e.ExceptionDetails.Text
			if e.ExceptionDetails.Exception != nil {
				msg += " " + e.ExceptionDetails.Exception.Description
			}
			tb.errors = append(tb.errors, "exception: "+msg)
		case *log.EventEntryAdded:
			if strings.Contains(e.Entry.Text, "Content Security Policy") {
				tb.errors = append(tb.errors, "CSP: "+e.Entry.Text)
			}
		case *runtime.EventConsoleAPICalled:
			for _, a := range e.Args {
				if strings.Contains(string(a.Value), "Content Security Policy") {
					tb.errors = append(tb.errors, "CSP: "+string(a.Value))
				}
			}
		case *network.EventResponseReceived:
			if e.Type == network.ResourceTypeDocument {
				csp, _ := e.Response.Headers["Content-Security-Policy"].(string)
				if csp == "" {
					csp, _ = e.Response.Headers["content-security-policy"].(string)
				}
				tb.docs[e.Response.URL] = csp
			}
		}
	})
	if err == nil {
		_, err = chromedp.Call(ctx, log.Enable, cdp.Empty{})
	}
	if err == nil {
		_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	}
	// Copy buttons use the asynchronous clipboard where allowed; reading
	// lets the tests (and the console, before it clears it) see what it
	// holds.
	for _, perm := range []string{"clipboard-write", "clipboard-read"} {
		if err == nil {
			_, err = chromedp.CallBrowser(ctx, browser.SetPermission, browser.SetPermissionParams{
				Permission: &browser.PermissionDescriptor{Name: perm}, Setting: browser.PermissionSettingGranted,
				Origin: strings.TrimSuffix(s.APIURL, "/"),
			})
		}
	}
	if err != nil {
		t.Fatalf("open a tab: %v", err)
	}
	t.Cleanup(func() {
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.errors {
			t.Errorf("the page reported %s", e)
		}
	})
	return tb
}

// run runs actions in the tab and fails the test on error.
func (tb *tab) run(what string, actions ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, actions...); err != nil {
		tb.shot("failed")
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression into out.
func (tb *tab) eval(expr string, out any) {
	tb.t.Helper()
	raw, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]byte](expr))
	if err == nil {
		err = json.Unmarshal(raw, out)
	}
	if err != nil {
		tb.shot("failed")
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
}

// text is the text of the visible element sel.
func (tb *tab) text(sel string) string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		tb.shot("failed")
		tb.t.Fatalf("read %s: %v", sel, err)
	}
	return s
}

// waitText waits until sel's text contains want.
// hasText reports whether the element sel contains want within timeout.
func (tb *tab) hasText(sel, want string, timeout time.Duration) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(150 * time.Millisecond) {
		if ok, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => { const e = document.querySelector(%q); return !!e && e.textContent.includes(%q); })()`, sel, want))); ok {
			return true
		}
	}
	return false
}

func (tb *tab) waitText(sel, want string, timeout time.Duration) string {
	tb.t.Helper()
	if tb.hasText(sel, want, timeout) {
		return want
	}
	got, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](fmt.Sprintf(`(document.querySelector(%q) || {}).textContent || ""`, sel)))
	tb.shot("failed")
	tb.t.Fatalf("%s: text %q does not contain %q after %v", sel, got, want, timeout)
	return ""
}

// html is the document's whole markup.
func (tb *tab) html() string {
	tb.t.Helper()
	var s string
	tb.eval(`document.documentElement.outerHTML`, &s)
	return s
}

// shot saves a JPEG screenshot under .local/screenshots (git-ignored).
func (tb *tab) shot(name string) {
	root, err := devenv.RepoRoot()
	if err != nil {
		tb.t.Log(err)
		return
	}
	dir := filepath.Join(root, ".local", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		tb.t.Log(err)
		return
	}
	png, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(90))
	if err != nil {
		tb.t.Logf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(dir, strings.ReplaceAll(tb.t.Name(), "/", "_")+"-"+name+".jpg")
	if err := os.WriteFile(file, png, 0o644); err != nil {
		tb.t.Log(err)
	}
}

// signIn signs in at the console's sign-in page as user, starting from
// path (a full page load, as a bookmark would).
func (tb *tab) signIn(path, user string) {
	tb.t.Helper()
	u, ok := tb.s.User(user)
	if !ok {
		tb.t.Fatalf("no demo user %q", user)
	}
	tb.run("open "+path, chromedp.Navigate(tb.s.APIURL+path), chromedp.WaitVisible(chromedp.CSS("#sign-in-user")))
	tb.run("sign in as "+user,
		chromedp.SendKeys(chromedp.CSS("#sign-in-user"), user),
		chromedp.SendKeys(chromedp.CSS("#sign-in-password"), u.Password),
		chromedp.Click(chromedp.CSS("#sign-in-submit")),
		chromedp.WaitNotPresent(chromedp.CSS("#sign-in-form")))
}

// reauth fills in the re-auth dialog with user's password and a fresh code.
func (tb *tab) reauth(user string) {
	tb.t.Helper()
	u, _ := tb.s.User(user)
	code, err := tb.s.TOTPCode(user)
	if err != nil {
		tb.t.Fatal(err)
	}
	tb.run("re-authenticate",
		chromedp.WaitVisible(chromedp.CSS("#reauth-password")),
		chromedp.SendKeys(chromedp.CSS("#reauth-password"), u.Password),
		chromedp.SendKeys(chromedp.CSS("#reauth-code"), code),
		chromedp.Click(chromedp.CSS("#reauth-submit")),
		chromedp.WaitNotPresent(chromedp.CSS("#reauth-form")))
}

// assertNoTokenStored: no token or secret in the URL, web storage or
// cookies; secrets lists more strings that must appear nowhere.
func (tb *tab) assertNoTokenStored(secrets ...string) {
	tb.t.Helper()
	var got struct {
		URL, Cookie    string
		Local, Session int
		Stored         string
	}
	tb.eval(`(() => { let s = ''; for (const st of [localStorage, sessionStorage]) for (let i = 0; i < st.length; i++) s += st.key(i) + '=' + st.getItem(st.key(i)); return {URL: location.href, Cookie: document.cookie, Local: localStorage.length, Session: sessionStorage.length, Stored: s}; })()`, &got)
	if got.Local != 0 || got.Session != 0 || got.Cookie != "" {
		tb.t.Errorf("the console stored something: localStorage %d, sessionStorage %d, cookie %q", got.Local, got.Session, got.Cookie)
	}
	if strings.Contains(got.URL, "token") || strings.Contains(got.URL, "eyJ") || strings.Contains(got.URL, "#") || strings.Contains(got.URL, "?") {
		tb.t.Errorf("the URL %s holds more than a path", got.URL)
	}
	for _, s := range secrets {
		if s != "" && (strings.Contains(got.URL, s) || strings.Contains(got.Stored, s) || strings.Contains(got.Cookie, s)) {
			t := tb.t
			t.Errorf("a secret is in the URL, web storage or cookies")
		}
	}
}

// trail reads the tenant's audit trail through the API, newest first.
func trail(t *testing.T, s *devenv.TestStack, tenant string) []map[string]any {
	t.Helper()
	tok, err := s.Token(s.UserWithRole(auth.RolePlatformAdmin))
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Events []map[string]any `json:"events"`
	}
	getJSON(t, s.APIURL+"/api/v1/platform-admin/tenants/"+tenant+"/smtp-credentials/audit?per_page=50", tok, &page)
	return page.Events
}

// contrastJS lists the text of the page whose contrast with its
// background is under WCAG 2.1 AA: 4.5:1, or 3:1 for large text (24 px,
// or 18.66 px bold). The background is the nearest opaque one up the tree.
const contrastJS = `(() => {
  const rgb = (c) => { const m = c.match(/rgba?\(([^)]+)\)/); if (!m) return null; const p = m[1].split(',').map(Number); return {r: p[0], g: p[1], b: p[2], a: p.length > 3 ? p[3] : 1}; };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); }; return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); };
  const bg = (el) => { for (; el; el = el.parentElement) { const c = rgb(getComputedStyle(el).backgroundColor); if (c && c.a > 0.5) return c; } return {r: 255, g: 255, b: 255, a: 1}; };
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!n.textContent.trim() || !el || !el.getClientRects().length) continue;
    const st = getComputedStyle(el);
    if (st.visibility === 'hidden' || el.closest('.sr-only')) continue;
    const fg = rgb(st.color); if (!fg) continue;
    const b = bg(el);
    const l1 = lum(fg), l2 = lum(b);
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    const size = parseFloat(st.fontSize), bold = parseInt(st.fontWeight, 10) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    if (ratio < need) bad.push(n.textContent.trim().slice(0, 40) + ' (' + ratio.toFixed(2) + ':1, ' + st.color + ' on ' + JSON.stringify(b) + ')');
  }
  return bad;
})()`

// assertContrast fails the test on text under WCAG AA contrast.
func (tb *tab) assertContrast(page string) {
	tb.t.Helper()
	var bad []string
	tb.eval(contrastJS, &bad)
	for _, b := range bad {
		tb.t.Errorf("%s: low contrast: %s", page, b)
	}
}

// strayTextJS lists visible texts that are a script's value printed by
// mistake: null, undefined, NaN, [object Object].
const strayTextJS = `(() => {
  const bad = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (/\b(null|undefined|NaN)\b|\[object /.test(n.textContent)) bad.push(n.textContent.trim().slice(0, 60));
  }
  return bad;
})()`

// assertNoStrayText fails the test on a script value printed as text.
func (tb *tab) assertNoStrayText(page string) {
	tb.t.Helper()
	var bad []string
	tb.eval(strayTextJS, &bad)
	for _, b := range bad {
		tb.t.Errorf("%s: stray text %q", page, b)
	}
}

// clipboard is what the clipboard holds, as the page reads it.
func (tb *tab) clipboard() string {
	tb.t.Helper()
	s, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("read the clipboard: %v", err)
	}
	return s
}

// waitClipboard waits until the clipboard holds want.
func (tb *tab) waitClipboard(want string, timeout time.Duration) {
	tb.t.Helper()
	got := ""
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(150 * time.Millisecond) {
		if got = tb.clipboard(); got == want {
			return
		}
	}
	tb.t.Errorf("the clipboard holds %d characters, want %q", len(got), want)
}

// axNode is the accessible name, role and description Chromium gives the
// element sel: what a screen reader announces.
func (tb *tab) axNode(sel string) (name, role, description string) {
	tb.t.Helper()
	obj, err := chromedp.Call(tb.ctx, runtime.Evaluate, runtime.EvaluateParams{Expression: fmt.Sprintf(`document.querySelector(%q)`, sel)})
	if err == nil && (obj.Result == nil || obj.Result.ObjectID == "") {
		err = fmt.Errorf("no element %s", sel)
	}
	var tree accessibility.GetPartialAXTreeResult
	if err == nil {
		tree, err = chromedp.Call(tb.ctx, accessibility.GetPartialAXTree, accessibility.GetPartialAXTreeParams{ObjectID: obj.Result.ObjectID, FetchRelatives: new(false)})
	}
	if err == nil && len(tree.Nodes) == 0 {
		err = fmt.Errorf("%s has no accessibility node", sel)
	}
	if err != nil {
		tb.t.Fatalf("accessibility node of %s: %v", sel, err)
	}
	str := func(v *accessibility.Value) string {
		var s string
		if v != nil {
			_ = json.Unmarshal([]byte(v.Value), &s)
		}
		return s
	}
	n := tree.Nodes[0]
	return str(n.Name), str(n.Role), str(n.Description)
}
