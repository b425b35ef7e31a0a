package main

// The admin panel and the account page's SCM connections, in a real
// browser against the real server (and, for SCM, a real Gitea).

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"gitserver/store"
)

// clickIn clicks the button whose text is text inside the element with id.
func (b *Browser) clickIn(id, text string) {
	b.t.Helper()
	b.click(`*[@id=`+xpathString(id)+`]//button`, text)
}

// TestAdminPanelInBrowser: an admin creates users on the panel (one with a
// chosen password, one generated and shown once), who then sign in and
// clone; disables one (their git password stops at once); makes one
// admin (the admin API answers them); creates an organisation and adds a
// member (who then reads its restricted repository). A non-admin gets 404
// on /admin, and a form posted without the CSRF token is refused.
func TestAdminPanelInBrowser(t *testing.T) {
	t.Parallel()
	b := NewBrowser(t)
	s := StartServer(t)
	admin := adminCred(s)

	signInBrowser(b, s, "admin", admin.Secret)
	b.Follow("Admin")
	b.WaitText("Create a user")
	b.Screenshot("admin-users")

	// A chosen password.
	b.Fill("Username", "dora")
	b.Fill("Password", "dora-chosen-pw")
	b.Click("Create user")
	b.WaitText("User dora created.")
	dora := Cred{"dora", "dora-chosen-pw"}
	s.CreateRepo(dora, "dora", "notes", "restricted")
	if !lsRemote(t, s, dora, "dora", "notes") {
		t.Fatal("dora cannot clone with the password the admin set")
	}
	newWebClient(t, s).signIn("dora", dora.Secret)

	// A generated password, shown once.
	b.Fill("Username", "erin")
	b.Click("Create user")
	b.WaitText("Password of erin")
	erin := Cred{"erin", b.Text("#password-secret code")}
	if len(erin.Secret) < 16 {
		t.Fatalf("generated password %q", erin.Secret)
	}
	s.CreateRepo(erin, "erin", "notes", "restricted")
	if !lsRemote(t, s, erin, "erin", "notes") {
		t.Fatal("erin cannot clone with the generated password")
	}
	b.Open(s.URL + "/admin?tab=users")
	b.WaitText("Create a user")
	var html string
	b.run("page source", chromedp.OuterHTML("html", &html, chromedp.ByQuery))
	if strings.Contains(html, erin.Secret) {
		t.Fatal("the generated password shows again")
	}

	// Disable: dora's git password stops working at once; enable again.
	b.clickIn("user-dora", "Disable")
	b.WaitText("dora is disabled")
	if lsRemote(t, s, dora, "dora", "notes") {
		t.Fatal("a disabled user's password still works for git")
	}
	b.clickIn("user-dora", "Enable")
	b.WaitText("dora is enabled again")
	if !lsRemote(t, s, dora, "dora", "notes") {
		t.Fatal("a re-enabled user's password does not work")
	}

	// Make admin: the admin API now answers dora.
	if code, _ := s.Do("GET", "/api/v1/admin/scm-configs", dora, nil); code != http.StatusForbidden {
		t.Fatalf("dora before make admin: %d", code)
	}
	b.clickIn("user-dora", "Make admin")
	b.WaitText("dora is now an admin")
	if code, body := s.Do("GET", "/api/v1/admin/scm-configs", dora, nil); code != http.StatusOK {
		t.Fatalf("dora after make admin: %d %s", code, body)
	}
	if got := b.Text("#user-dora td:nth-child(2)"); got != "admin" {
		t.Fatalf("dora's role on the panel: %q", got)
	}

	// An organisation and a member: erin reads its restricted repository.
	b.Follow("Organisations")
	b.Fill("Organisation name", "crew")
	b.Click("Create organisation")
	b.WaitText("Organisation crew")
	s.CreateRepo(admin, "crew", "app", "restricted")
	if lsRemote(t, s, erin, "crew", "app") {
		t.Fatal("erin reads crew/app before joining")
	}
	b.Fill("Username", "erin")
	b.Click("Add member")
	b.WaitText("erin is a member of crew.")
	if !lsRemote(t, s, erin, "crew", "app") {
		t.Fatal("a member added on the panel cannot read the organisation's repository")
	}
	b.clickIn("member-erin", "Make owner")
	b.WaitText("erin is an owner of crew.")
	if got := b.Text("#member-erin td:nth-child(2)"); got != "owner" {
		t.Fatalf("erin's role: %q", got)
	}
	b.Screenshot("admin-org")

	b.Follow("System status")
	b.WaitText("0 queued, 0 running")
	if v := b.Text("#system-status"); !strings.Contains(v, "git version 2.") || !strings.Contains(v, "iB free of") {
		t.Fatalf("system status: %q", v)
	}
	if db := b.Text("#system-status dd:last-of-type"); db != "ok" {
		t.Fatalf("database status: %q", db)
	}

	// A non-admin: 404 on the panel and its forms, in the browser too.
	b.Click("Sign out")
	signInBrowser(b, s, "erin", erin.Secret)
	b.Open(s.URL + "/admin")
	b.WaitText("Not found")
	c := newWebClient(t, s)
	c.signIn("erin", erin.Secret)
	if code, _, _ := c.do("GET", "/admin", nil); code != http.StatusNotFound {
		t.Fatalf("non-admin GET /admin = %d", code)
	}
	_, home, _ := c.do("GET", "/", nil)
	tok := webCSRF.FindStringSubmatch(home)[1]
	if code, _, _ := c.do("POST", "/-/admin/users", url.Values{"csrf": {tok}, "username": {"mallory"}}); code != http.StatusNotFound {
		t.Fatalf("non-admin create user = %d", code)
	}

	// An admin's form without the CSRF token: refused, nothing done.
	ac := newWebClient(t, s)
	ac.signIn("admin", admin.Secret)
	if code, body, _ := ac.do("POST", "/-/admin/users", url.Values{"username": {"mallory"}, "password": {"mallory-pw-1"}}); code != http.StatusForbidden || !strings.Contains(body, "Form refused") {
		t.Fatalf("create user without CSRF = %d", code)
	}
	if code, _, _ := ac.do("POST", "/-/admin/users/erin/disable", url.Values{}); code != http.StatusForbidden {
		t.Fatalf("disable without CSRF = %d", code)
	}
	if lsRemote(t, s, Cred{"mallory", "mallory-pw-1"}, "mallory", "x") {
		t.Fatal("mallory exists")
	}
	if code, _ := s.Do("GET", "/api/v1/user", Cred{"mallory", "mallory-pw-1"}, nil); code != http.StatusUnauthorized {
		t.Fatalf("mallory was created: %d", code)
	}
	if !lsRemote(t, s, erin, "erin", "notes") {
		t.Fatal("a refused form disabled erin")
	}
}

// TestAdminSCMAndConnectionsInBrowser: against a real Gitea, the admin adds
// a gitea configuration on the panel (a wrong client secret refused with
// Gitea's answer first), tests it, a user connects on the account page
// through the whole OAuth flow in the browser (Gitea's sign-in and consent
// pages), sees the connected login, disconnects, and the admin removes the
// configuration.
func TestAdminSCMAndConnectionsInBrowser(t *testing.T) {
	t.Parallel()
	gt := StartGitea(t)
	b := NewBrowser(t)
	port := strconv.Itoa(freePort(t))
	base := "http://127.0.0.1:" + port
	s := StartServer(t, WithArgs("--http-addr", "127.0.0.1:"+port, "--base-url", base))
	admin := adminCred(s)
	carol := Cred{"carol", s.CreateUser("carol", false)}

	const guser = "alice"
	gpass := "Pw-" + store.RandomHex(12)
	gt.apiMust(t, http.StatusCreated, "POST", "/admin/users", map[string]any{
		"username": guser, "email": guser + "@example.test", "password": gpass, "must_change_password": false,
	}, nil)
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	gt.apiMust(t, http.StatusCreated, "POST", "/user/applications/oauth2", map[string]any{
		"name": "gitserver", "redirect_uris": []string{base + "/scm/1/callback"}, "confidential_client": true,
	}, &app)

	b.DismissDialogs() // the test Gitea's pages alert() that their assets failed to load
	signInBrowser(b, s, "admin", admin.Secret)
	b.Open(s.URL + "/admin?tab=scm")
	b.WaitText("No SCM configurations.")
	b.Follow("Gitea")
	b.WaitText("Add Gitea")
	b.Fill("Name", "gitea")
	b.Fill("Website URL", gt.HTTPURL)
	b.Fill("API URL", gt.HTTPURL+"/api/v1")
	b.Fill("SSH URL", fmt.Sprintf("ssh://git@127.0.0.1:%d", gt.SSHPort))
	b.Fill("Client ID", app.ClientID)
	b.Fill("Client secret", "not-the-secret")
	b.Click("Add configuration")
	b.WaitText("the provider's answer to checking the configuration")
	if code, body := s.Do("GET", "/api/v1/admin/scm-configs", admin, nil); code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("a refused configuration was saved: %d %s", code, body)
	}
	// The form keeps what was typed, except the secret.
	b.Fill("Client secret", app.ClientSecret)
	b.Click("Add configuration")
	b.WaitText("SCM configuration gitea added")
	b.WaitText(base + "/scm/1/callback")
	var cfgs []struct {
		ID                  int64    `json:"id"`
		Kind                string   `json:"kind"`
		APIURL              string   `json:"api_url"`
		HostKeyFingerprints []string `json:"host_key_fingerprints"`
	}
	code, body := s.Do("GET", "/api/v1/admin/scm-configs", admin, nil)
	if err := json.Unmarshal(body, &cfgs); code != 200 || err != nil || len(cfgs) != 1 || cfgs[0].Kind != "gitea" || cfgs[0].APIURL != gt.HTTPURL+"/api/v1" || len(cfgs[0].HostKeyFingerprints) == 0 {
		t.Fatalf("configurations after the form: %d %s", code, body)
	}
	if strings.Contains(string(body), app.ClientSecret) {
		t.Fatal("the API shows the client secret")
	}
	b.clickIn(fmt.Sprintf("scm-%d", cfgs[0].ID), "Test")
	b.WaitText("the provider answered and accepted the configuration")
	b.WaitText("the SSH host keys match the pinned ones")
	b.Screenshot("admin-scm")

	// Carol connects her Gitea account from the account page: the
	// browser goes to Gitea, signs in there, authorizes, and comes back.
	b.Click("Sign out")
	signInBrowser(b, s, "carol", carol.Secret)
	b.Open(s.URL + "/user/settings")
	b.WaitText("Source Code Management")
	b.WaitText("Not connected")
	// Connect: a page of ours sends the browser on to Gitea (a form
	// cannot redirect to another site under form-action 'self').
	b.run("click Connect", chromedp.Click(`//*[@id="scm-1"]//button[normalize-space(.)="Connect"]`, chromedp.BySearch))
	b.run("gitea sign-in", chromedp.WaitVisible("#user_name", chromedp.ByQuery),
		chromedp.SendKeys("#user_name", guser, chromedp.ByQuery), chromedp.SendKeys("#password", gpass, chromedp.ByQuery),
		chromedp.Submit("#password", chromedp.ByQuery))
	b.run("gitea consent", chromedp.WaitVisible("#authorize-app", chromedp.ByQuery), chromedp.Click("#authorize-app", chromedp.ByQuery))
	b.WaitText("Connected as " + guser)
	if loc := b.Location(); loc != base+"/user/settings" {
		t.Fatalf("back at %s", loc)
	}
	b.Screenshot("settings-scm")
	var conns []struct {
		ConfigID int64  `json:"config_id"`
		Login    string `json:"login"`
	}
	code, body = s.Do("GET", "/api/v1/user/scm", carol, nil)
	if err := json.Unmarshal(body, &conns); code != 200 || err != nil || len(conns) != 1 || conns[0].Login != guser {
		t.Fatalf("connections after the browser flow: %d %s", code, body)
	}
	// The connection works: the owners Gitea lists for carol.
	if code, body := s.Do("GET", "/api/v1/scm-configs/1/owners", carol, nil); code != 200 || !strings.Contains(string(body), `"`+guser+`"`) {
		t.Fatalf("owners through the connection: %d %s", code, body)
	}

	// The callback takes the page's session, but only with a state this
	// server issued to that user: a forged one connects nothing.
	cc := newWebClient(t, s)
	if code, _, _ := cc.do("GET", "/scm/1/callback?code=x&state=forged", nil); code != http.StatusUnauthorized {
		t.Fatalf("callback without a session or credentials = %d", code)
	}
	cc.signIn("carol", carol.Secret)
	if code, body, _ := cc.do("GET", "/scm/1/callback?code=x&state=forged", nil); code != http.StatusBadRequest || !strings.Contains(body, "unknown, expired or already used") {
		t.Fatalf("forged callback with a session = %d %s", code, body)
	}

	b.clickIn("scm-1", "Disconnect")
	b.WaitText("Not connected")
	if code, body := s.Do("GET", "/api/v1/user/scm", carol, nil); code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("connections after Disconnect: %d %s", code, body)
	}

	// The admin removes the configuration.
	b.Click("Sign out")
	b.DismissDialogs() // the test Gitea's pages alert() that their assets failed to load
	signInBrowser(b, s, "admin", admin.Secret)
	b.Open(s.URL + "/admin?tab=scm")
	b.clickIn("scm-1", "Remove")
	b.WaitText("SCM configuration removed.")
	b.WaitText("No SCM configurations.")
	if code, body := s.Do("GET", "/api/v1/admin/scm-configs", admin, nil); code != 200 || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("configurations after Remove: %d %s", code, body)
	}
}
