package web

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"gitserver/store"
)

// TestSCMConnectionsSection: the account page lists the configurations
// with the user's connections; the forms need the CSRF token; without
// adapters Connect and the token form answer the API's 503 message and
// store nothing; Disconnect forgets a connection (404 without one).
func TestSCMConnectionsSection(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	mk := func(name, kind string) store.SCMConfig {
		c := store.SCMConfig{Name: name, Kind: kind, Mode: "webhook", WebsiteURL: "https://" + name + ".example", APIURL: "https://" + name + ".example/api",
			SSHURL: "ssh://git@" + name + ".example:22", AllowedOwners: []string{}}
		if kind == store.SCMBitbucketServer {
			c.ProjectKey, c.AccessToken = "PRJ", "pat"
		} else {
			c.ClientID, c.ClientSecret = "cid", "csecret"
		}
		c, err := e.store.CreateSCMConfig(ctx, c)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	gitea, bbs := mk("gitea", "gitea"), mk("corp", store.SCMBitbucketServer)
	alice := e.users["alice"]
	if _, err := e.store.PutSCMConnection(ctx, store.SCMConnection{UserID: alice.ID, ConfigID: gitea.ID, Login: "alice-on-gitea", AccessToken: "tok"}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.mustSignIn("alice")
	page := c.do("GET", "/user/settings", nil, nil)
	gid, bid := strconv.FormatInt(gitea.ID, 10), strconv.FormatInt(bbs.ID, 10)
	for _, want := range []string{"Source Code Management", `Connected as <strong class="login">alice-on-gitea</strong>`,
		`action="/user/settings/scm/` + gid + `/disconnect"`, `action="/user/settings/scm/` + bid + `/token"`, "Personal access token for corp"} {
		if !strings.Contains(page.body, want) {
			t.Fatalf("settings page lacks %q:\n%s", want, page.body)
		}
	}
	if strings.Contains(page.body, "tok\"") || strings.Contains(page.body, "csecret") {
		t.Fatal("a secret on the page")
	}
	// Without the token: refused, still connected.
	if r := c.do("POST", "/user/settings/scm/"+gid+"/disconnect", url.Values{}, nil); r.status != http.StatusForbidden {
		t.Fatalf("disconnect without CSRF = %d", r.status)
	}
	if _, err := e.store.SCMConnection(ctx, alice.ID, gitea.ID); err != nil {
		t.Fatal("a refused form disconnected")
	}
	// No adapters in this env: the API's message, nothing stored.
	if r := c.post("/user/settings", "/user/settings/scm/"+bid+"/token", url.Values{"access_token": {"my-pat"}}); r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "SCM adapters are not available") {
		t.Fatalf("token without adapters = %d\n%s", r.status, r.body)
	}
	if _, err := e.store.SCMConnection(ctx, alice.ID, bbs.ID); err == nil {
		t.Fatal("a refused token was stored")
	}
	if r := c.post("/user/settings", "/user/settings/scm/"+gid+"/connect", url.Values{}); r.status != http.StatusServiceUnavailable {
		t.Fatalf("connect without adapters = %d\n%s", r.status, r.body)
	}
	if r := c.post("/user/settings", "/user/settings/scm/999/connect", url.Values{}); r.status != http.StatusNotFound {
		t.Fatalf("connect to an unknown configuration = %d", r.status)
	}
	// Disconnect: forgotten here (Gitea has no revocation API, and there
	// are no adapters: best effort), then 404 a second time.
	if r := c.post("/user/settings", "/user/settings/scm/"+gid+"/disconnect", url.Values{}); r.status != http.StatusSeeOther || r.header.Get("Location") != "/user/settings" {
		t.Fatalf("disconnect = %d\n%s", r.status, r.body)
	}
	if _, err := e.store.SCMConnection(ctx, alice.ID, gitea.ID); err == nil {
		t.Fatal("still connected")
	}
	if r := c.post("/user/settings", "/user/settings/scm/"+gid+"/disconnect", url.Values{}); r.status != http.StatusNotFound {
		t.Fatalf("disconnect again = %d", r.status)
	}
	if r := c.do("GET", "/user/settings", nil, nil); strings.Count(r.body, "Not connected") != 2 {
		t.Fatalf("after disconnect:\n%s", r.body)
	}
}
