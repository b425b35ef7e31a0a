package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitserver/store"
)

// TestHostedRepoInBrowser: against a real Gitea, the create modal offers
// the SCM configuration with "Authorize" until the user connects, then
// creates the repository on Gitea (its deploy key and webhook there) from
// "Remote owner"; a remote owner the user may not use is the API's message;
// the settings page's "Repair" re-adds a deploy key deleted on Gitea
// (issue 13).
func TestHostedRepoInBrowser(t *testing.T) {
	t.Parallel()
	b := NewBrowser(t)
	gt := StartGitea(t)
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
		ID           int64  `json:"id"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	gt.apiMust(t, http.StatusCreated, "POST", "/user/applications/oauth2", map[string]any{
		"name": "gitserver", "redirect_uris": []string{base + "/scm/1/callback"}, "confidential_client": true,
	}, &app)
	code, raw := s.Do("POST", "/api/v1/admin/scm-configs", admin, map[string]any{"name": "corp-gitea", "kind": "gitea",
		"website_url": gt.HTTPURL, "api_url": gt.HTTPURL + "/api/v1", "ssh_url": fmt.Sprintf("ssh://git@127.0.0.1:%d", gt.SSHPort),
		"client_id": app.ClientID, "client_secret": app.ClientSecret})
	var c struct {
		ID int64 `json:"id"`
	}
	if err := json.Unmarshal(raw, &c); code != http.StatusCreated || err != nil {
		t.Fatalf("create configuration: %d %s", code, raw)
	}
	if c.ID != 1 {
		gt.apiMust(t, http.StatusOK, "PATCH", fmt.Sprintf("/user/applications/oauth2/%d", app.ID), map[string]any{
			"name": "gitserver", "redirect_uris": []string{fmt.Sprintf("%s/scm/%d/callback", base, c.ID)}, "confidential_client": true,
		}, nil)
	}
	hostValue := "scm-" + strconv.FormatInt(c.ID, 10)

	signInBrowser(b, s, "carol", carol.Secret)
	b.Follow("New repository")
	b.WaitText("Repository host")
	var opts string
	b.Eval(`Array.from(document.querySelectorAll('#new-host option')).map(o => o.value + '=' + o.textContent).join('|')`, &opts)
	if want := hostValue + "=corp-gitea (gitea) (not connected)"; !strings.Contains(opts, want) || !strings.Contains(opts, "internal=This server") {
		t.Fatalf("host choices %q, want %q", opts, want)
	}
	var href string
	b.Eval(`document.evaluate("//a[normalize-space(.)='Authorize']", document, null, 9, null).singleNodeValue.getAttribute('href')`, &href)
	if want := fmt.Sprintf("/scm/%d/connect?return_to=%%2F-%%2Fnew", c.ID); href != want {
		t.Fatalf("Authorize links to %q, want %q", href, want)
	}

	// Carol authorizes (the flow the link starts, over HTTP as in
	// TestHostedOnGitea), and comes back to the modal.
	here := &http.Client{Timeout: 30 * time.Second, CheckRedirect: noRedirect}
	get := func(u string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		req.SetBasicAuth(carol.User, carol.Secret)
		resp, err := here.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	resp := get(s.URL + href)
	callback := giteaAuthorize(t, gt, guser, gpass, resp.Header.Get("Location"))
	cb, err := url.Parse(callback)
	if err != nil {
		t.Fatal(err)
	}
	if resp := get(s.URL + cb.RequestURI()); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/-/new" {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	b.Open(s.URL + "/-/new")
	b.WaitText("Repository host")
	b.Eval(`Array.from(document.querySelectorAll('#new-host option')).map(o => o.value + '=' + o.textContent).join('|')`, &opts)
	if !strings.Contains(opts, hostValue+"=corp-gitea (gitea)|") && !strings.HasSuffix(opts, hostValue+"=corp-gitea (gitea)") {
		t.Fatalf("after connecting, host choices %q", opts)
	}
	var authorize bool
	b.Eval(`document.evaluate("//a[normalize-space(.)='Authorize']", document, null, 9, null).singleNodeValue !== null`, &authorize)
	if authorize {
		t.Error("Authorize still shows after connecting")
	}

	// A remote owner carol may not use: the API's message, nothing made.
	b.Fill("Repository name", "app")
	b.setField("Repository host", hostValue)
	b.Fill("Remote owner", "foreign")
	b.Click("Create repository")
	b.WaitText(`host.remote_owner "foreign" is not an account you may create repositories under on corp-gitea`)
	if code, _ := repoStatus(s, carol, "carol", "app"); code != http.StatusNotFound {
		t.Fatalf("a refused host created carol/app: %d", code)
	}
	b.setField("Remote owner", guser)
	b.Click("Create repository")
	b.WaitText("carol / app")
	if loc := b.Location(); loc != s.URL+"/carol/app" {
		t.Fatalf("after Create repository at %s", loc)
	}
	_, rp := repoStatus(s, carol, "carol", "app")
	mo, rem := rp["mirror"].(map[string]any), rp["remote"].(map[string]any)
	if rem == nil || rem["full_name"] != guser+"/app" {
		t.Fatalf("created %v", rp)
	}
	keys := giteaList(t, gt, "/repos/"+guser+"/app/keys")
	if len(keys) != 1 || keys[0]["read_only"] != true || !strings.HasPrefix(jsonStr(keys[0], "key"), strings.Join(strings.Fields(jsonStr(mo, "deploy_key"))[:2], " ")) {
		t.Fatalf("deploy keys on gitea: %v", keys)
	}
	if hooks := giteaList(t, gt, "/repos/"+guser+"/app/hooks"); len(hooks) != 1 {
		t.Fatalf("webhooks on gitea: %v", hooks)
	}

	// Repair re-adds the deploy key deleted on Gitea.
	gt.DeleteDeployKey(t, guser, "app", int64(keys[0]["id"].(float64)))
	b.Open(s.URL + "/carol/app/settings")
	b.WaitText("Hosted as")
	b.Click("Repair")
	b.WaitText("Repaired: the deploy key is added upstream, the webhook present.")
	if keys := giteaList(t, gt, "/repos/"+guser+"/app/keys"); len(keys) != 1 {
		t.Fatalf("deploy keys on gitea after Repair: %v", keys)
	}
}
