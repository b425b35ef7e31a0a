package main

// End to end, issue 12 against a real Gitea (gitea_harness_test.go): an
// OAuth2 application registered in Gitea, an admin here adding a `gitea`
// SCM configuration through the API, a user here connecting through the
// whole authorization-code flow driven over HTTP, repositories created on
// Gitea under the user and under an organisation, and what Gitea's own API
// says about them.

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gitserver/store"
)

var hiddenInputRE = regexp.MustCompile(`<input[^>]*type="hidden"[^>]*>`)
var attrRE = regexp.MustCompile(`(name|value)="([^"]*)"`)

// hiddenInputs are the hidden fields of an HTML page's forms.
func hiddenInputs(page string) url.Values {
	v := url.Values{}
	for _, in := range hiddenInputRE.FindAllString(page, -1) {
		var name, value string
		for _, a := range attrRE.FindAllStringSubmatch(in, -1) {
			if a[1] == "name" {
				name = html.UnescapeString(a[2])
			} else {
				value = html.UnescapeString(a[2])
			}
		}
		if name != "" {
			v.Set(name, value)
		}
	}
	return v
}

var noRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// giteaAuthorize signs user into Gitea with a cookie jar, opens the
// authorize URL and grants it, and returns where Gitea sends the browser
// back (our callback with code and state).
func giteaAuthorize(t *testing.T, gt *Gitea, user, password, authURL string) string {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: noRedirect}
	resp, err := browser.PostForm(gt.HTTPURL+"/user/login", url.Values{"user_name": {user}, "password": {password}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("gitea login: %d", resp.StatusCode)
	}
	resp, err = browser.Get(authURL)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode == http.StatusFound || resp.StatusCode == http.StatusSeeOther {
		return resp.Header.Get("Location") // granted before: no consent page
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("gitea authorize: %d %s", resp.StatusCode, page)
	}
	form := hiddenInputs(string(page))
	if form.Get("client_id") == "" || form.Get("state") == "" {
		t.Fatalf("gitea consent page without its form: %s", page)
	}
	form.Set("granted", "true")
	resp, err = browser.PostForm(gt.HTTPURL+"/login/oauth/grant", form)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		t.Fatalf("gitea grant: %d %s", resp.StatusCode, b)
	}
	return resp.Header.Get("Location")
}

// giteaList is a Gitea API list.
func giteaList(t *testing.T, gt *Gitea, path string) []map[string]any {
	t.Helper()
	var out []map[string]any
	gt.apiMust(t, http.StatusOK, "GET", path, nil, &out)
	return out
}

func TestHostedOnGitea(t *testing.T) {
	t.Parallel()
	gt := StartGitea(t)
	port := strconv.Itoa(freePort(t))
	base := "http://127.0.0.1:" + port
	s := StartServer(t, WithArgs("--http-addr", "127.0.0.1:"+port, "--base-url", base))
	admin := adminCred(s)
	carol := Cred{"carol", s.CreateUser("carol", false)}

	// Gitea: a user with an organisation, and the OAuth2 application.
	const guser = "alice"
	gpass := "Pw-" + store.RandomHex(12)
	gt.apiMust(t, http.StatusCreated, "POST", "/admin/users", map[string]any{
		"username": guser, "email": guser + "@example.test", "password": gpass, "must_change_password": false,
	}, nil)
	gt.apiMust(t, http.StatusCreated, "POST", "/admin/users/"+guser+"/orgs", map[string]any{"username": "team", "visibility": "public"}, nil)
	var app struct {
		ID           int64  `json:"id"`
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	gt.apiMust(t, http.StatusCreated, "POST", "/user/applications/oauth2", map[string]any{
		"name": "gitserver", "redirect_uris": []string{base + "/scm/1/callback"}, "confidential_client": true,
	}, &app)

	// Here: the admin adds the configuration; a user may not.
	cfg := map[string]any{"name": "gitea", "kind": "gitea", "website_url": gt.HTTPURL, "api_url": gt.HTTPURL + "/api/v1",
		"ssh_url": fmt.Sprintf("ssh://git@127.0.0.1:%d", gt.SSHPort), "client_id": app.ClientID, "client_secret": app.ClientSecret}
	if code, _ := s.JSON("POST", "/api/v1/admin/scm-configs", carol, cfg); code != http.StatusForbidden {
		t.Fatalf("a user adds a configuration: %d", code)
	}
	code, b := s.Do("POST", "/api/v1/admin/scm-configs", admin, cfg)
	if code != http.StatusCreated || strings.Contains(string(b), app.ClientSecret) {
		t.Fatalf("create configuration: %d %s", code, b)
	}
	var c struct {
		ID int64 `json:"id"`
	}
	json.Unmarshal(b, &c)
	if c.ID != 1 {
		gt.apiMust(t, http.StatusOK, "PATCH", fmt.Sprintf("/user/applications/oauth2/%d", app.ID), map[string]any{
			"name": "gitserver", "redirect_uris": []string{fmt.Sprintf("%s/scm/%d/callback", base, c.ID)}, "confidential_client": true,
		}, nil)
	}

	// Carol connects her Gitea account: the authorization-code flow.
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
	resp := get(fmt.Sprintf("%s/scm/%d/connect?return_to=/settings", s.URL, c.ID))
	authURL := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || !strings.HasPrefix(authURL, gt.HTTPURL+"/login/oauth/authorize?") {
		t.Fatalf("connect: %d %q", resp.StatusCode, authURL)
	}
	callback := giteaAuthorize(t, gt, guser, gpass, authURL)
	cb, err := url.Parse(callback)
	if err != nil || cb.Query().Get("code") == "" || !strings.HasPrefix(callback, base+fmt.Sprintf("/scm/%d/callback?", c.ID)) {
		t.Fatalf("gitea sent the browser to %q", callback)
	}
	if resp := get(s.URL + cb.RequestURI()); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/settings" {
		t.Fatalf("callback: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := get(s.URL + cb.RequestURI()); resp.StatusCode < 400 {
		t.Fatalf("callback replayed: %d", resp.StatusCode)
	}
	code, b = s.Do("GET", "/api/v1/user/scm", carol, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"`+guser+`"`) {
		t.Fatalf("connections: %d %s", code, b)
	}
	code, b = s.Do("GET", fmt.Sprintf("/api/v1/scm-configs/%d/owners", c.ID), carol, nil)
	if code != http.StatusOK || !strings.Contains(string(b), `"team"`) {
		t.Fatalf("owners: %d %s", code, b)
	}

	create := func(name, remoteOwner, remoteName string) map[string]any {
		t.Helper()
		host := map[string]any{"scm_config": c.ID, "remote_owner": remoteOwner}
		if remoteName != "" {
			host["remote_name"] = remoteName
		}
		code, r := s.JSON("POST", "/api/v1/repos", carol, map[string]any{"owner": "carol", "name": name, "visibility": "restricted", "host": host})
		if code != http.StatusCreated {
			t.Fatalf("create %s on gitea: %d %v", name, code, r)
		}
		return r
	}
	// upstream checks Gitea's own view: one read-only deploy key (ours),
	// one webhook (ours).
	upstream := func(full string, r map[string]any) (keyID int64) {
		t.Helper()
		mo := r["mirror"].(map[string]any)
		keys := giteaList(t, gt, "/repos/"+full+"/keys")
		if len(keys) != 1 || keys[0]["read_only"] != true || !strings.HasPrefix(jsonStr(keys[0], "key"), strings.Join(strings.Fields(jsonStr(mo, "deploy_key"))[:2], " ")) {
			t.Fatalf("%s deploy keys on gitea: %v (ours %s)", full, keys, mo["deploy_key"])
		}
		hooks := giteaList(t, gt, "/repos/"+full+"/hooks")
		if len(hooks) != 1 || hooks[0]["config"].(map[string]any)["url"] != mo["webhook_url"] || hooks[0]["active"] != true {
			t.Fatalf("%s webhooks on gitea: %v (ours %s)", full, hooks, mo["webhook_url"])
		}
		return int64(keys[0]["id"].(float64))
	}

	r := create("app", guser, "")
	rem, _ := r["remote"].(map[string]any)
	if rem == nil || rem["full_name"] != guser+"/app" || jsonStr(rem, "id") == "" || rem["html_url"] != gt.HTTPURL+"/"+guser+"/app" {
		t.Fatalf("repo object: %v", r)
	}
	var gr struct {
		ID      int64 `json:"id"`
		Private bool  `json:"private"`
	}
	gt.apiMust(t, http.StatusOK, "GET", "/repos/"+guser+"/app", nil, &gr)
	if strconv.FormatInt(gr.ID, 10) != rem["id"] || !gr.Private {
		t.Fatalf("gitea's repository: %+v, remote %v", gr, rem)
	}
	upstream(guser+"/app", r)
	// The same request again: nothing duplicated.
	upstream(guser+"/app", create("app", guser, ""))
	lib := create("lib", "team", "lib-remote")
	if lib["remote"].(map[string]any)["full_name"] != "team/lib-remote" {
		t.Fatalf("org repo: %v", lib)
	}
	upstream("team/lib-remote", lib)
	// An organisation carol's Gitea account is not in.
	gt.apiMust(t, http.StatusCreated, "POST", "/orgs", map[string]any{"username": "foreign", "visibility": "public"}, nil)
	if code, r := s.JSON("POST", "/api/v1/repos", carol, map[string]any{"name": "x", "visibility": "restricted",
		"host": map[string]any{"scm_config": c.ID, "remote_owner": "foreign"}}); code != http.StatusBadRequest {
		t.Fatalf("foreign owner: %d %v", code, r)
	}

	t.Run("a push to gitea builds once here", func(t *testing.T) {
		g := NewGitEnv(t)
		u, _ := url.Parse(gt.HTTPURL)
		u.User = url.UserPassword(guser, gpass)
		u.Path = "/" + guser + "/app.git"
		work := g.Init(u.String())
		c1 := g.Commit(work, "README", "one\n", "one")
		g.Must(work, "push", "-q", "origin", "HEAD:main")
		deadline := time.Now().Add(45 * time.Second)
		var bs []map[string]any
		for time.Now().Before(deadline) {
			if bs = buildsFor(t, s, carol, "carol", "app", c1); len(bs) > 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if len(bs) != 1 {
			_, m := s.JSON("GET", "/api/v1/repos/carol/app/mirror", carol, nil)
			t.Fatalf("builds of %s: %v (mirror %v)", c1, bs, m)
		}
		time.Sleep(time.Second)
		if bs = buildsFor(t, s, carol, "carol", "app", c1); len(bs) != 1 {
			t.Fatalf("builds of %s after a second: %v", c1, bs)
		}
		_, m := s.JSON("GET", "/api/v1/repos/carol/app/mirror", carol, nil)
		if m["last_delivery_at"] == nil {
			t.Fatalf("no webhook delivery recorded: %v", m)
		}
	})

	t.Run("a deploy key deleted on gitea is repaired", func(t *testing.T) {
		code, rep := s.JSON("POST", "/api/v1/repos/carol/app/mirror/repair", carol, nil)
		if code != http.StatusOK || rep["deploy_key"] != "present" || rep["webhook"] != "present" {
			t.Fatalf("repair with nothing missing: %d %v", code, rep)
		}
		_, cur := s.JSON("GET", "/api/v1/repos/carol/app", carol, nil)
		gt.DeleteDeployKey(t, guser, "app", upstream(guser+"/app", cur))
		code, rep = s.JSON("POST", "/api/v1/repos/carol/app/mirror/repair", carol, nil)
		if code != http.StatusOK || rep["deploy_key"] != "added" || rep["webhook"] != "present" {
			t.Fatalf("repair: %d %v", code, rep)
		}
		upstream(guser+"/app", cur)
		// Someone without a connection is told what to do by hand.
		dave := Cred{"dave", s.CreateUser("dave", true)}
		code, b := s.Do("POST", "/api/v1/repos/carol/app/mirror/repair", dave, nil)
		if code != http.StatusConflict || !strings.Contains(string(b), "repair_by_hand") || !strings.Contains(string(b), "steps") {
			t.Fatalf("repair without a connection: %d %s", code, b)
		}
	})

	appFull := guser + "/app"
	t.Run("a rename on gitea is followed by stable id", func(t *testing.T) {
		gt.apiMust(t, http.StatusOK, "PATCH", "/repos/"+appFull, map[string]any{"name": "app-renamed"}, nil)
		appFull = guser + "/app-renamed"
		g := NewGitEnv(t)
		u, _ := url.Parse(gt.HTTPURL)
		u.User = url.UserPassword(guser, gpass)
		u.Path = "/" + appFull + ".git"
		work := g.Clone(u.String())
		c2 := g.Commit(work, "b.txt", "two\n", "two")
		g.Must(work, "push", "-q", "origin", "HEAD:main")
		deadline := time.Now().Add(45 * time.Second)
		for len(buildsFor(t, s, carol, "carol", "app", c2)) == 0 {
			if time.Now().After(deadline) {
				_, m := s.JSON("GET", "/api/v1/repos/carol/app/mirror", carol, nil)
				t.Fatalf("no build of %s after the rename (mirror %v)", c2, m)
			}
			time.Sleep(100 * time.Millisecond)
		}
		_, r := s.JSON("GET", "/api/v1/repos/carol/app", carol, nil)
		rem, mo := r["remote"].(map[string]any), r["mirror"].(map[string]any)
		if rem["full_name"] != appFull || rem["html_url"] != gt.HTTPURL+"/"+appFull || !strings.Contains(jsonStr(mo, "url"), "/"+appFull+".git") {
			t.Fatalf("after the rename: remote %v, mirror url %v", rem, mo["url"])
		}
	})

	t.Run("configuration endpoints: admins only, no secrets", func(t *testing.T) {
		for _, path := range []string{"/api/v1/admin/scm-configs", fmt.Sprintf("/api/v1/admin/scm-configs/%d", c.ID)} {
			if code, _ := s.Do("GET", path, carol, nil); code != http.StatusForbidden {
				t.Fatalf("GET %s as a user: %d", path, code)
			}
		}
		if code, _ := s.Do("PATCH", fmt.Sprintf("/api/v1/admin/scm-configs/%d", c.ID), carol, map[string]any{"name": "x"}); code != http.StatusForbidden {
			t.Fatalf("PATCH as a user: %d", code)
		}
		if code, _ := s.Do("DELETE", fmt.Sprintf("/api/v1/admin/scm-configs/%d", c.ID), carol, nil); code != http.StatusForbidden {
			t.Fatalf("DELETE as a user: %d", code)
		}
		conn, err := s.Admin("", "scm", "list") // the CLI reads the database; tokens never leave it
		if err != nil || !strings.Contains(conn, "gitea") {
			t.Fatalf("scm list: %v %s", err, conn)
		}
		for _, req := range []struct {
			cred Cred
			path string
		}{
			{admin, "/api/v1/admin/scm-configs"}, {admin, fmt.Sprintf("/api/v1/admin/scm-configs/%d", c.ID)},
			{carol, "/api/v1/scm-configs"}, {carol, "/api/v1/user/scm"}, {carol, "/api/v1/repos/carol/app"},
			{carol, "/api/v1/repos/carol/app/mirror"},
		} {
			code, b := s.Do("GET", req.path, req.cred, nil)
			if code != http.StatusOK || strings.Contains(string(b), app.ClientSecret) || strings.Contains(string(b), `"access_token"`) ||
				strings.Contains(string(b), `"refresh_token"`) || strings.Contains(string(b), `"client_secret"`) || strings.Contains(string(b), "PRIVATE KEY") {
				t.Fatalf("GET %s: %d %s", req.path, code, b)
			}
		}
		code, b := s.Do("PATCH", fmt.Sprintf("/api/v1/admin/scm-configs/%d", c.ID), admin, map[string]any{"allowed_owners": []string{}})
		if code != http.StatusOK || strings.Contains(string(b), app.ClientSecret) {
			t.Fatalf("PATCH: %d %s", code, b)
		}
	})

	t.Run("a step refused upstream is 502 provider_failed", func(t *testing.T) {
		// An organisation alice is in with read access only: Gitea lists it
		// as hers but refuses to create repositories in it.
		gt.apiMust(t, http.StatusCreated, "POST", "/orgs", map[string]any{"username": "readers-org", "visibility": "public"}, nil)
		var team struct {
			ID int64 `json:"id"`
		}
		gt.apiMust(t, http.StatusCreated, "POST", "/orgs/readers-org/teams", map[string]any{
			"name": "readers", "permission": "read", "units": []string{"repo.code"}, "can_create_org_repo": false,
		}, &team)
		gt.apiMust(t, http.StatusNoContent, "PUT", fmt.Sprintf("/teams/%d/members/%s", team.ID, guser), nil, nil)
		code, b := s.Do("POST", "/api/v1/repos", carol, map[string]any{"name": "ro", "visibility": "restricted",
			"host": map[string]any{"scm_config": c.ID, "remote_owner": "readers-org"}})
		if code != http.StatusBadGateway || !strings.Contains(string(b), `"provider_failed"`) || !strings.Contains(string(b), "creating readers-org/ro on gitea") {
			t.Fatalf("refused upstream: %d %s", code, b)
		}
		if code, _ := s.Do("GET", "/api/v1/repos/carol/ro", carol, nil); code != http.StatusNotFound {
			t.Fatalf("a repository was created here: %d", code)
		}
	})

	t.Run("admin scm add, list, show, remove", func(t *testing.T) {
		args := []string{"scm", "add", "--name", "gitea-cli", "--kind", "gitea", "--website-url", gt.HTTPURL, "--api-url", gt.HTTPURL + "/api/v1",
			"--ssh-url", fmt.Sprintf("ssh://git@127.0.0.1:%d", gt.SSHPort), "--client-id", app.ClientID, "--allowed-owner", "team", "--secret-stdin"}
		if out, err := s.Admin("wrong-secret\n", args...); err == nil || !strings.Contains(err.Error(), "provider") {
			t.Fatalf("a wrong secret is accepted: %s %v", out, err)
		}
		out, err := s.Admin(app.ClientSecret+"\n", args...)
		if err != nil || !strings.Contains(out, "added SCM configuration") || !strings.Contains(out, "SHA256:") || strings.Contains(out, app.ClientSecret) {
			t.Fatalf("scm add: %s %v", out, err)
		}
		id := strings.Fields(strings.TrimPrefix(out, "added SCM configuration "))[0]
		if out, err := s.Admin("", "scm", "list"); err != nil || !strings.Contains(out, "gitea-cli") || strings.Contains(out, app.ClientSecret) {
			t.Fatalf("scm list: %s %v", out, err)
		}
		out, err = s.Admin("", "scm", "show", id)
		if err != nil || !strings.Contains(out, `"client_secret_set": true`) || strings.Contains(out, app.ClientSecret) || !strings.Contains(out, `"team"`) {
			t.Fatalf("scm show: %s %v", out, err)
		}
		if out, err := s.Admin("x\n", "scm", "add", "--name", "x", "--kind", "svn", "--secret-stdin"); err == nil || !strings.Contains(err.Error(), "kind") {
			t.Fatalf("unknown kind: %s", out)
		}
		if out, err := s.Admin("", "scm", "remove", id); err != nil || !strings.Contains(out, "removed SCM configuration "+id) {
			t.Fatalf("scm remove: %s %v", out, err)
		}
		if out, err := s.Admin("", "scm", "show", id); err == nil {
			t.Fatalf("removed configuration shown: %s", out)
		}
		// In use: refused, naming the repositories.
		if out, err := s.Admin("", "scm", "remove", strconv.FormatInt(c.ID, 10)); err == nil || !strings.Contains(err.Error(), "carol/app") {
			t.Fatalf("scm remove in use: %s %v", out, err)
		}
	})

	t.Run("deleting here leaves gitea's repository", func(t *testing.T) {
		for _, full := range []string{"carol/app", "carol/lib"} {
			if code, b := s.Do("DELETE", "/api/v1/repos/"+full, carol, nil); code != http.StatusNoContent {
				t.Fatalf("delete %s: %d %s", full, code, b)
			}
		}
		for _, full := range []string{appFull, "team/lib-remote"} {
			if status, b := gt.API(t, "GET", "/repos/"+full, nil); status != http.StatusOK {
				t.Fatalf("gitea's %s after the delete here: %d %s", full, status, b)
			}
			if keys, hooks := giteaList(t, gt, "/repos/"+full+"/keys"), giteaList(t, gt, "/repos/"+full+"/hooks"); len(keys) != 0 || len(hooks) != 0 {
				t.Fatalf("%s keeps our key or hook: %v %v", full, keys, hooks)
			}
		}
	})

	t.Run("disconnect forgets the connection (gitea cannot revoke)", func(t *testing.T) {
		path := fmt.Sprintf("/api/v1/user/scm/%d", c.ID)
		if code, b := s.Do("DELETE", path, carol, nil); code != http.StatusNoContent {
			t.Fatalf("disconnect: %d %s", code, b)
		}
		if code, b := s.Do("GET", "/api/v1/user/scm", carol, nil); code != http.StatusOK || strings.Contains(string(b), `"`+guser+`"`) {
			t.Fatalf("connections after disconnect: %d %s", code, b)
		}
		if code, b := s.Do("DELETE", path, carol, nil); code != http.StatusNotFound {
			t.Fatalf("disconnect twice: %d %s", code, b)
		}
	})
}
