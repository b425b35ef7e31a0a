package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

var (
	webNewPassword = regexp.MustCompile(`Your new password: <code>([0-9a-f]+)</code>`)
	webNewToken    = regexp.MustCompile(`Your new token: <code>([^<]+)</code>`)
)

// settingsPost posts form to path with the account page's CSRF token.
func (c *webClient) settingsPost(path string, form url.Values) (int, string) {
	c.t.Helper()
	code, page, _ := c.do("GET", "/user/settings", nil)
	m := webCSRF.FindStringSubmatch(page)
	if code != 200 || m == nil {
		c.t.Fatalf("GET /user/settings = %d\n%s", code, page)
	}
	form.Set("csrf", m[1])
	code, body, _ := c.do("POST", path, form)
	return code, body
}

// TestAccountPageOverHTTP: regenerating the password on the account page
// stops the old one for git at once and the new one works; a token created
// on the page works for git until it is revoked there.
func TestAccountPageOverHTTP(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	old := Cred{"gina", s.CreateUser("gina", false)}
	s.CreateRepo(old, "gina", "notes", "restricted")
	if !lsRemote(t, s, old, "gina", "notes") {
		t.Fatal("git ls-remote with the password failed")
	}
	c := newWebClient(t, s)
	c.signIn("gina", old.Secret)

	code, body := c.settingsPost("/user/settings/password", url.Values{})
	m := webNewPassword.FindStringSubmatch(body)
	if code != http.StatusOK || m == nil {
		t.Fatalf("regenerate = %d\n%s", code, body)
	}
	if lsRemote(t, s, old, "gina", "notes") {
		t.Error("the old password still works for git")
	}
	if !lsRemote(t, s, Cred{"gina", m[1]}, "gina", "notes") {
		t.Error("the new password does not work for git")
	}
	if code, page, _ := c.do("GET", "/user/settings", nil); code != http.StatusOK || strings.Contains(page, m[1]) {
		t.Fatalf("after regenerating: GET /user/settings = %d, shows the password %v", code, strings.Contains(page, m[1]))
	}

	code, body = c.settingsPost("/user/settings/tokens", url.Values{"name": {"laptop"}, "scope": {"repo:read"}})
	tm := webNewToken.FindStringSubmatch(body)
	if code != http.StatusOK || tm == nil {
		t.Fatalf("create token = %d\n%s", code, body)
	}
	tok := Cred{"gina", tm[1]}
	if !lsRemote(t, s, tok, "gina", "notes") {
		t.Fatal("the page's token does not work for git")
	}
	_, page, _ := c.do("GET", "/user/settings", nil)
	if strings.Contains(page, tm[1]) {
		t.Fatal("the token shows again on reload")
	}
	rm := regexp.MustCompile(`action="(/user/settings/tokens/[0-9]+/revoke)"`).FindStringSubmatch(page)
	if rm == nil {
		t.Fatalf("no Revoke form:\n%s", page)
	}
	if code, body := c.settingsPost(rm[1], url.Values{}); code != http.StatusSeeOther {
		t.Fatalf("revoke = %d\n%s", code, body)
	}
	if lsRemote(t, s, tok, "gina", "notes") {
		t.Error("a revoked token still works for git")
	}
}

// TestAccountPageInBrowser: the account page driven in a real browser:
// regenerate the password (the old one stops working for git at once),
// create a token shown once, add and delete an SSH key.
func TestAccountPageInBrowser(t *testing.T) {
	t.Parallel()
	b := NewBrowser(t)
	s := StartServer(t)
	pw := s.CreateUser("hugo", false)
	s.CreateRepo(Cred{"hugo", pw}, "hugo", "notes", "restricted")

	signInBrowser(b, s, "hugo", pw)
	b.Follow("Settings")
	b.WaitText("Account settings")

	b.Click("Regenerate Account Password")
	b.WaitText("Your new password")
	newPW := b.Text("#password-secret code")
	if lsRemote(t, s, Cred{"hugo", pw}, "hugo", "notes") {
		t.Error("the old password still works for git")
	}
	if !lsRemote(t, s, Cred{"hugo", newPW}, "hugo", "notes") {
		t.Errorf("the new password %q does not work for git", newPW)
	}

	b.Fill("Name", "laptop")
	b.run("check repo:read", chromedp.Click(`//input[@name="scope" and @value="repo:read"]`, chromedp.BySearch))
	b.Click("Create token")
	b.WaitText("Your new token")
	tok := b.Text("#token-secret code")
	if !lsRemote(t, s, Cred{"hugo", tok}, "hugo", "notes") {
		t.Error("the page's token does not work for git")
	}
	b.Open(s.URL + "/user/settings")
	b.WaitText("laptop")
	var html string
	b.run("page source", chromedp.OuterHTML("html", &html, chromedp.ByQuery))
	if strings.Contains(html, tok) || strings.Contains(html, newPW) {
		t.Fatal("a secret shows again on reload")
	}
	b.Click("Revoke")
	b.WaitText("No tokens.")
	if lsRemote(t, s, Cred{"hugo", tok}, "hugo", "notes") {
		t.Error("a revoked token still works for git")
	}
}
