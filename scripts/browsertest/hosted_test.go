package browsertest

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"

	"smtp-vault/scripts/devenv"
	"smtp-vault/shared/auth"
	"smtp-vault/shared/console"
)

// TestHostedSignIn signs in as in AWS: the console opens the identity
// provider's login in a pop-up (the local stand-in), the admin signs in
// there, the pop-up hands the code back and closes, and the console
// redeems it with its PKCE verifier. No token is in a URL or in storage
// at any point, and the console lands on the page that asked.
func TestHostedSignIn(t *testing.T) {
	s := hostedStack
	tb := newTab(t, s)
	admin := s.UserWithRole(auth.RolePlatformAdmin)
	u, _ := s.User(admin)
	tb.run("open the overview", chromedp.Navigate(s.APIURL+console.Prefix+"smtp-credentials"), chromedp.WaitVisible(chromedp.CSS("#sign-in-hosted")))
	tb.shot("hosted-sign-in")

	popup := chromedp.WaitNewTarget(tb.ctx, func(i *target.Info) bool { return i.Type == "page" && i.OpenerID != "" })
	tb.run("sign in with the identity provider", chromedp.Click(chromedp.CSS("#sign-in-hosted")))
	var id target.ID
	select {
	case id = <-popup:
	case <-time.After(15 * time.Second):
		t.Fatal("no sign-in pop-up opened")
	}
	pctx, cancel := chromedp.NewContext(tb.ctx, chromedp.WithTargetID(id))
	defer cancel()
	if err := chromedp.Do(pctx, chromedp.WaitVisible(chromedp.CSS("#idp-user"))); err != nil {
		t.Fatalf("the identity provider's page: %v", err)
	}
	authorizeURL, err := chromedp.Run(pctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	q, _ := url.Parse(authorizeURL)
	if q.Path != devenv.OAuthAuthorizePath || q.Query().Get("code_challenge_method") != "S256" || len(q.Query().Get("code_challenge")) != 43 ||
		q.Query().Get("redirect_uri") != s.APIURL+console.Prefix+"callback" || q.Query().Get("state") == "" {
		t.Fatalf("authorization request %s", authorizeURL)
	}
	// A wrong password first: the provider says so and nothing reaches the console.
	if err := chromedp.Do(pctx, chromedp.SendKeys(chromedp.CSS("#idp-user"), admin), chromedp.SendKeys(chromedp.CSS("#idp-password"), "wrong"),
		chromedp.Click(chromedp.CSS("#idp-submit")), chromedp.WaitVisible(chromedp.CSS("#idp-error"))); err != nil {
		t.Fatalf("a wrong password at the provider: %v", err)
	}
	// The pop-up closes itself once it handed the code over, so this
	// action may end with its target gone.
	_ = chromedp.Do(pctx, chromedp.SendKeys(chromedp.CSS("#idp-user"), admin), chromedp.SendKeys(chromedp.CSS("#idp-password"), u.Password),
		chromedp.Click(chromedp.CSS("#idp-submit")))
	tb.waitText("#list-status", "1 credential.", 20*time.Second)
	tb.waitText("#who-name", admin, 5*time.Second)
	tb.assertNoTokenStored()
	var loc string
	tb.eval(`location.href`, &loc)
	if strings.Contains(loc, "code=") || strings.Contains(loc, "state=") || strings.Contains(loc, "token") || strings.Contains(loc, "#") {
		t.Errorf("the console's address carries a credential: %s", loc)
	}
	tb.shot("hosted-signed-in")
}

// The stand-in holds the provider to what the console relies on: a code
// is redeemed once, only with its verifier, for its redirect.
func TestOAuthStandInRefusesReplayAndWrongVerifier(t *testing.T) {
	s := hostedStack
	admin := s.UserWithRole(auth.RolePlatformAdmin)
	u, _ := s.User(admin)
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	redirect := s.APIURL + console.Prefix + "callback"
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }, Timeout: 10 * time.Second}
	code := func() string {
		t.Helper()
		form := url.Values{"response_type": {"code"}, "client_id": {devenv.OAuthClientID}, "redirect_uri": {redirect}, "state": {"st"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "username": {admin}, "password": {u.Password}}
		resp, err := noFollow.PostForm(s.APIURL+devenv.OAuthAuthorizePath, form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ := url.Parse(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || loc == nil || loc.Query().Get("code") == "" || loc.Query().Get("state") != "st" {
			t.Fatalf("authorize: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
		return loc.Query().Get("code")
	}
	redeem := func(c, v, r string) int {
		t.Helper()
		resp, err := http.PostForm(s.APIURL+devenv.OAuthTokenPath, url.Values{"grant_type": {"authorization_code"}, "code": {c}, "client_id": {devenv.OAuthClientID}, "redirect_uri": {r}, "code_verifier": {v}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	c := code()
	if st := redeem(c, verifier, redirect); st != http.StatusOK {
		t.Fatalf("a good redemption: %d", st)
	}
	if st := redeem(c, verifier, redirect); st != http.StatusBadRequest {
		t.Errorf("a code redeemed twice: %d", st)
	}
	if st := redeem(code(), strings.Repeat("w", 43), redirect); st != http.StatusBadRequest {
		t.Errorf("a wrong verifier: %d", st)
	}
	if st := redeem(code(), verifier, s.APIURL+"/elsewhere"); st != http.StatusBadRequest {
		t.Errorf("another redirect_uri: %d", st)
	}
	// An unknown redirect is never sent anything.
	resp, err := noFollow.Get(s.APIURL + devenv.OAuthAuthorizePath + "?" + url.Values{"client_id": {devenv.OAuthClientID}, "redirect_uri": {"https://evil.example/cb"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("authorize with a foreign redirect_uri: %d", resp.StatusCode)
	}
}
