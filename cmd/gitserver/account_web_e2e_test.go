package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
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
