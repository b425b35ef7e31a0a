package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// fieldXPath is the input, textarea or select labelled label.
func fieldXPath(label string) string {
	return `//*[(self::input or self::textarea or self::select) and @id=//label[normalize-space(.)=` + xpathString(label) + `]/@for]`
}

// setField replaces the value of the field labelled label (an input, a
// textarea, or a select's chosen option value).
func (b *Browser) setField(label, value string) {
	b.t.Helper()
	sel := fieldXPath(label)
	b.run("set "+label, chromedp.WaitVisible(sel, chromedp.BySearch), chromedp.SetValue(sel, value, chromedp.BySearch))
}

// fieldValue is the value of the field labelled label.
func (b *Browser) fieldValue(label string) string {
	b.t.Helper()
	var v string
	b.run("value of "+label, chromedp.Value(fieldXPath(label), &v, chromedp.BySearch))
	return v
}

// repoStatus is the API's status for GET owner/name (as c).
func repoStatus(s *TestServer, c Cred, owner, name string) (int, map[string]any) {
	return s.JSON("GET", "/api/v1/repos/"+owner+"/"+name, c, nil)
}

// TestRepoSettingsInBrowser: a person creates a repository from the
// modal (a bad name first: the API's message, nothing created), clones
// it, changes its visibility (anonymous clones follow) and default branch
// (a clone checks it out), adds a deploy key and clones over SSH with it,
// deletes the key (SSH refused), and deletes the repository after a wrong
// then a right typed confirmation (issue 13).
func TestRepoSettingsInBrowser(t *testing.T) {
	t.Parallel()
	b := NewBrowser(t)
	s := StartServer(t, WithArgs("--anonymous-read"))
	pw := s.CreateUser("erin", false)
	erin := Cred{"erin", pw}
	g := NewGitEnv(t)

	signInBrowser(b, s, "erin", pw)

	// The modal opens in place (script), closes with Cancel, and opens
	// again; without script the link is /-/new (TestRepoSettingsAccess).
	b.Follow("New repository")
	b.WaitText("Create repository")
	var open bool
	b.Eval(`document.querySelector('dialog#new-repo').open && document.querySelector('dialog#new-repo').matches(':modal')`, &open)
	if !open {
		t.Fatal("the New repository modal is not open")
	}
	if loc := b.Location(); loc != s.URL+"/" {
		t.Errorf("the modal opened at %s, want in place on /", loc)
	}
	b.Follow("Cancel")
	b.Eval(`document.querySelector('dialog#new-repo').open`, &open)
	if open || b.Location() != s.URL+"/" {
		t.Fatalf("Cancel: open %v at %s", open, b.Location())
	}
	b.Follow("New repository")
	b.WaitText("Create repository")

	// A bad name is refused with the API's message.
	if owners := b.Text("#new-owner"); !strings.Contains(owners, "erin") {
		t.Errorf("owner choices %q lack erin", owners)
	}
	b.Fill("Repository name", "bad name")
	b.Click("Create repository")
	const nameMsg = "repository name must match [A-Za-z0-9][A-Za-z0-9_.-]{0,99} and not end in .git"
	b.WaitText(nameMsg)
	code, apiErr := s.JSON("POST", "/api/v1/repos", erin, map[string]any{"owner": "erin", "name": "bad name", "visibility": "public"})
	if msg, _ := apiErr["error"].(map[string]any)["message"].(string); code != http.StatusBadRequest || msg != nameMsg {
		t.Errorf("the API says %d %q; the page said %q", code, msg, nameMsg)
	}
	wc := newWebClient(t, s)
	wc.signIn("erin", pw)
	if _, home, _ := wc.do("GET", "/", nil); strings.Contains(home, "bad name") || !strings.Contains(home, "You have no repositories yet") {
		t.Errorf("a refused name created something:\n%s", home)
	}

	// The right name, public.
	b.setField("Repository name", "site")
	b.setField("Visibility", "public")
	b.Click("Create repository")
	b.WaitText("This repository is empty")
	if loc := b.Location(); loc != s.URL+"/erin/site" {
		t.Fatalf("after Create repository at %s", loc)
	}
	if code, rp := repoStatus(s, erin, "erin", "site"); code != 200 || rp["visibility"] != "public" || rp["default_branch"] != "master" {
		t.Fatalf("created repository: %d %v", code, rp)
	}
	work := g.Init(s.RepoURL(erin, "erin", "site"))
	g.Commit(work, "README.md", "# Site\n", "first")
	g.Must(work, "push", "-q", "origin", "master")
	g.Must(work, "push", "-q", "origin", "master:dev")
	if out := g.Must(g.Clone(s.RepoURL(erin, "erin", "site")), "log", "--format=%s"); strings.TrimSpace(out) != "first" {
		t.Fatalf("clone log %q", out)
	}
	anon := s.RepoURL(Cred{}, "erin", "site")
	g.Clone(anon) // public, --anonymous-read

	// The copy buttons show (script ran) and copy the clone URL.
	b.Open(s.URL + "/erin/site")
	b.run("grant clipboard", browser.GrantPermissions([]browser.PermissionType{browser.PermissionTypeClipboardReadWrite,
		browser.PermissionTypeClipboardSanitizedWrite}).WithOrigin(s.URL))
	var hidden bool
	b.Eval(`document.querySelector('button.copy[data-copy="clone-http"]').hidden`, &hidden)
	if hidden {
		t.Fatal("the Copy button is still hidden: copy.js did not run")
	}
	b.run("copy", chromedp.Click(`button.copy[data-copy="clone-http"]`, chromedp.ByQuery))
	b.WaitText("Copied")
	var copied, shown string
	b.Eval(`navigator.clipboard.readText()`, &copied)
	b.Eval(`document.getElementById('clone-http').value`, &shown)
	if copied != shown || !strings.HasSuffix(copied, "/git/erin/site.git") {
		t.Errorf("clipboard %q, want the HTTP clone URL %q", copied, shown)
	}

	// Settings: restricted, then the default branch.
	// The tab (the header's "Settings" is the account's).
	b.run("Settings tab", chromedp.Click(`//nav[@class="tabs"]/a[normalize-space(.)="Settings"]`, chromedp.BySearch))
	b.WaitText("Deploy keys")
	b.setField("Visibility", "restricted")
	b.Click("Save")
	b.WaitText("Settings saved.")
	if out, err := g.Run("", "ls-remote", anon); err == nil {
		t.Fatalf("an anonymous ls-remote of a restricted repository succeeded:\n%s", out)
	}
	b.setField("Visibility", "public")
	b.setField("Default branch", "dev")
	b.Click("Save")
	b.WaitText("Settings saved.")
	if code, rp := repoStatus(s, erin, "erin", "site"); code != 200 || rp["visibility"] != "public" || rp["default_branch"] != "dev" {
		t.Fatalf("after Save: %d %v", code, rp)
	}
	if head := strings.TrimSpace(g.Must(g.Clone(anon), "rev-parse", "--abbrev-ref", "HEAD")); head != "dev" {
		t.Errorf("a clone checks out %q, want dev", head)
	}
	if v := b.fieldValue("Default branch"); v != "dev" {
		t.Errorf("the page shows default branch %q", v)
	}

	// A deploy key: SSH clone with it, then deleted.
	key := newSSHKey(t, "deploy")
	b.Fill("Title", "ci")
	b.Fill("Key", key.Text)
	b.Click("Add key")
	b.WaitText("Deploy key added.")
	b.WaitText(key.Fingerprint)
	sg := sshGit(t, sshOptions(key.Priv))
	cloned := cloneT(t, sg, sshURL(t, s, "erin", "site"))
	if out := gitMust(t, sg, cloned, "log", "--format=%s"); strings.TrimSpace(out) != "first" {
		t.Fatalf("SSH clone log %q", out)
	}
	gitFails(t, sg, cloned, "push", "origin", "HEAD:refs/heads/x") // read-only
	b.Click("Delete")
	b.WaitText("Deploy key deleted.")
	b.WaitText("No deploy keys.")
	gitFails(t, sg, "", "ls-remote", sshURL(t, s, "erin", "site"))

	// Delete: a wrong confirmation deletes nothing.
	b.Fill("Type erin/site to confirm", "erin/sit")
	b.Click("Delete repository")
	b.WaitText("To delete this repository, type its full name, erin/site, exactly. Nothing was deleted.")
	if code, _ := repoStatus(s, erin, "erin", "site"); code != 200 {
		t.Fatalf("after a wrong confirmation the repository is %d", code)
	}
	g.Clone(s.RepoURL(erin, "erin", "site"))
	b.setField("Type erin/site to confirm", "erin/site")
	b.Click("Delete repository")
	b.WaitText("The repository was deleted.")
	if loc := b.Location(); loc != s.URL+"/?done=deleted" {
		t.Errorf("after deletion at %s", loc)
	}
	if code, _ := repoStatus(s, erin, "erin", "site"); code != http.StatusNotFound {
		t.Fatalf("after deletion the repository is %d", code)
	}
	if out, err := g.Run("", "ls-remote", s.RepoURL(erin, "erin", "site")); err == nil {
		t.Fatalf("ls-remote of a deleted repository succeeded:\n%s", out)
	}
}

// TestRepoSettingsAccess: another user gets 404 on a restricted
// repository's settings and 403 on a public one's; the owner's forms
// without the CSRF token, or from another origin, are refused and change
// nothing; an organisation member who may write manages deploy keys but
// not visibility; the anonymous visitor is sent to sign in.
func TestRepoSettingsAccess(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := adminCred(s)
	erin := Cred{"erin", s.CreateUser("erin", false)}
	frank := Cred{"frank", s.CreateUser("frank", false)}
	s.CreateRepo(erin, "erin", "secret", "restricted")
	s.CreateRepo(erin, "erin", "open", "public")

	ce, cf := newWebClient(t, s), newWebClient(t, s)
	ce.signIn("erin", erin.Secret)
	cf.signIn("frank", frank.Secret)

	code, page, _ := ce.do("GET", "/erin/secret/settings", nil)
	if code != 200 || !strings.Contains(page, `action="/erin/secret/settings/general"`) || !strings.Contains(page, "Delete repository") {
		t.Fatalf("owner's settings = %d\n%s", code, page)
	}
	if _, home, _ := ce.do("GET", "/erin/secret", nil); !strings.Contains(home, `href="/erin/secret/settings">Settings</a>`) {
		t.Errorf("the repository home lacks the Settings tab for its owner")
	}
	if _, home, _ := cf.do("GET", "/erin/open", nil); strings.Contains(home, "/erin/open/settings") {
		t.Errorf("a reader sees the Settings tab")
	}
	for _, p := range []string{"/erin/secret/settings", "/erin/nothing/settings"} {
		if code, _, _ := cf.do("GET", p, nil); code != http.StatusNotFound {
			t.Errorf("another user: GET %s = %d, want 404", p, code)
		}
	}
	if code, _, _ := cf.do("GET", "/erin/open/settings", nil); code != http.StatusForbidden {
		t.Errorf("another user: GET a public repository's settings = %d, want 403", code)
	}
	csrf := webCSRF.FindStringSubmatch(page)[1]
	if code, _, _ := cf.do("POST", "/erin/open/settings/general", url.Values{"csrf": {csrf}, "visibility": {"restricted"}}); code != http.StatusForbidden {
		t.Errorf("another user's post = %d, want 403", code)
	}
	if code, _, _ := cf.do("POST", "/erin/secret/settings/delete", url.Values{"csrf": {csrf}, "confirm": {"erin/secret"}}); code != http.StatusNotFound {
		t.Errorf("another user's delete of a restricted repository = %d, want 404", code)
	}
	if code, page, _ := ce.do("GET", "/-/new", nil); code != 200 || !strings.Contains(page, `<dialog open class="modal" id="new-repo"`) ||
		!strings.Contains(page, `<label for="new-name">Repository name</label>`) {
		t.Errorf("GET /-/new = %d\n%s", code, page)
	}
	anon := newWebClient(t, s)
	if code, _, h := anon.do("GET", "/erin/open/settings", nil); code != http.StatusSeeOther || h.Get("Location") != "/login" {
		t.Errorf("anonymous GET settings = %d %q, want 303 to /login", code, h.Get("Location"))
	}

	// Without the token, with a wrong one, from another origin: 403.
	for name, form := range map[string]url.Values{
		"no token":    {"visibility": {"public"}},
		"wrong token": {"csrf": {strings.Repeat("0", len(csrf))}, "visibility": {"public"}},
	} {
		if code, body, _ := ce.do("POST", "/erin/secret/settings/general", form); code != http.StatusForbidden || !strings.Contains(body, "Form refused") {
			t.Errorf("%s: = %d", name, code)
		}
	}
	if code, _, _ := ce.do("POST", "/erin/secret/settings/delete", url.Values{"confirm": {"erin/secret"}}); code != http.StatusForbidden {
		t.Errorf("delete without the token = %d, want 403", code)
	}
	req, _ := http.NewRequest("POST", s.URL+"/erin/secret/settings/general", strings.NewReader(url.Values{"csrf": {csrf}, "visibility": {"public"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "http://evil.example")
	if res, err := ce.hc.Do(req); err != nil || res.StatusCode != http.StatusForbidden {
		t.Errorf("a post from another origin: %v %v", res.StatusCode, err)
	} else {
		res.Body.Close()
	}
	if code, rp := repoStatus(s, erin, "erin", "secret"); code != 200 || rp["visibility"] != "restricted" {
		t.Fatalf("refused posts changed the repository: %d %v", code, rp)
	}
	if code, _, _ := ce.do("POST", "/-/new", url.Values{"name": {"sneaky"}, "visibility": {"public"}}); code != http.StatusForbidden {
		t.Errorf("create without the token = %d, want 403", code)
	}
	if code, _ := repoStatus(s, erin, "erin", "sneaky"); code != http.StatusNotFound {
		t.Errorf("a refused create made erin/sneaky: %d", code)
	}

	// With the token: a bad branch name is the API's 400 and message.
	code, body, _ := ce.do("POST", "/erin/secret/settings/general", url.Values{"csrf": {csrf}, "default_branch": {"a..b"}})
	if code != http.StatusBadRequest || !strings.Contains(body, `default_branch &#34;a..b&#34; is not a valid branch name`) {
		t.Errorf("a missing branch = %d\n%s", code, body)
	}

	// An organisation member who may write: deploy keys yes, the owners'
	// sections no (403 from the service, as the API's PATCH).
	if code, m := s.JSON("POST", "/api/v1/orgs", admin, map[string]any{"name": "team"}); code != http.StatusCreated {
		t.Fatalf("create org: %d %v", code, m)
	}
	if code, m := s.JSON("PUT", "/api/v1/orgs/team/members/frank", admin, map[string]any{"role": "member"}); code >= 300 {
		t.Fatalf("add member: %d %v", code, m)
	}
	s.CreateRepo(admin, "team", "app", "restricted")
	code, page, _ = cf.do("GET", "/team/app/settings", nil)
	if code != 200 || strings.Contains(page, "Delete repository") || strings.Contains(page, `name="visibility"`) || !strings.Contains(page, "Add key") {
		t.Fatalf("a member's settings = %d\n%s", code, page)
	}
	fcsrf := webCSRF.FindStringSubmatch(page)[1]
	if code, body, _ := cf.do("POST", "/team/app/settings/general", url.Values{"csrf": {fcsrf}, "visibility": {"public"}}); code != http.StatusForbidden ||
		!strings.Contains(body, "only owners of team") {
		t.Errorf("a member changes visibility = %d\n%s", code, body)
	}
	if code, body := s.Do("PATCH", "/api/v1/repos/team/app", frank, map[string]any{"visibility": "public"}); code != http.StatusForbidden {
		t.Errorf("a member's PATCH = %d %s", code, body)
	}
	if code, body, _ := cf.do("POST", "/team/app/settings/delete", url.Values{"csrf": {fcsrf}, "confirm": {"team/app"}}); code != http.StatusForbidden {
		t.Errorf("a member deletes = %d\n%s", code, body)
	}
	key := newSSHKey(t, "member")
	if code, _, h := cf.do("POST", "/team/app/settings/deploy-keys", url.Values{"csrf": {fcsrf}, "title": {"m"}, "key": {key.Text}, "access": {"read-write"}}); code != http.StatusSeeOther ||
		h.Get("Location") != "/team/app/settings?done=key-added" {
		t.Errorf("a member adds a deploy key = %d %q", code, h.Get("Location"))
	}
	code, raw := s.Do("GET", "/api/v1/repos/team/app/deploy-keys", admin, nil)
	if code != 200 || !strings.Contains(string(raw), key.Fingerprint) || !strings.Contains(string(raw), `"read_only": false`) {
		t.Errorf("deploy keys after the member's post: %d %s", code, raw)
	}
	if code, body, _ := cf.do("POST", "/team/app/settings/deploy-keys", url.Values{"csrf": {fcsrf}, "title": {"bad"}, "key": {"ssh-rsa nope"}}); code != http.StatusBadRequest ||
		!strings.Contains(body, "ssh-rsa nope") || !strings.Contains(body, `role="alert"`) {
		t.Errorf("a bad key = %d\n%s", code, body)
	}
	if code, _, _ := cf.do("POST", "/team/app/settings/deploy-keys/999999/delete", url.Values{"csrf": {fcsrf}}); code != http.StatusNotFound {
		t.Errorf("deleting an unknown deploy key = %d, want 404", code)
	}

	// The modal's owners: frank and the organisation he is in; he creates
	// there, not under erin (the API's 403 and message).
	code, page, _ = cf.do("GET", "/-/new", nil)
	if code != 200 || !strings.Contains(page, "<option selected>frank</option>\n<option>team</option>") || strings.Contains(page, "<option>erin</option>") {
		t.Fatalf("frank's modal = %d\n%s", code, page)
	}
	if code, _, h := cf.do("POST", "/-/new", url.Values{"csrf": {fcsrf}, "owner": {"team"}, "name": {"made"}, "visibility": {"restricted"}, "host": {"internal"}}); code != http.StatusSeeOther ||
		h.Get("Location") != "/team/made" {
		t.Errorf("create in team = %d %q", code, h.Get("Location"))
	}
	if code, rp := repoStatus(s, admin, "team", "made"); code != 200 || rp["visibility"] != "restricted" {
		t.Errorf("team/made = %d %v", code, rp)
	}
	if code, body, _ := cf.do("POST", "/-/new", url.Values{"csrf": {fcsrf}, "owner": {"erin"}, "name": {"made"}, "visibility": {"public"}}); code != http.StatusForbidden ||
		!strings.Contains(body, "you cannot create repositories for erin") || !strings.Contains(body, `<dialog open class="modal" id="new-repo"`) {
		t.Errorf("create under erin = %d\n%s", code, body)
	}
	if code, body, _ := cf.do("POST", "/-/new", url.Values{"csrf": {fcsrf}, "owner": {"team"}, "name": {"made"}, "visibility": {"public"}}); code != http.StatusConflict ||
		!strings.Contains(body, "exists") {
		t.Errorf("create a taken name = %d\n%s", code, body)
	}
	if code, body, _ := cf.do("POST", "/-/new", url.Values{"csrf": {fcsrf}, "name": {"x"}, "visibility": {"public"}, "host": {"scm-99"}}); code != http.StatusNotFound ||
		!strings.Contains(body, "no SCM configuration with id 99") {
		t.Errorf("an unknown host = %d\n%s", code, body)
	}
}

// TestPatchRepoAPI: PATCH /api/v1/repos/{owner}/{name} changes the
// visibility and moves HEAD with the default branch (a clone checks it
// out, the next push to it queues a build); a missing branch, a bad value
// and an unknown field are 400 with nothing changed.
func TestPatchRepoAPI(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	erin := Cred{"erin", s.CreateUser("erin", false)}
	s.CreateRepo(erin, "erin", "app", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(erin, "erin", "app"))
	g.Commit(work, "a.txt", "a\n", "on master")
	g.Must(work, "push", "-q", "origin", "master")
	g.Must(work, "checkout", "-q", "-b", "trunk")
	g.Commit(work, "b.txt", "b\n", "on trunk")
	g.Must(work, "push", "-q", "origin", "trunk")
	builds := len(s.Builds(erin, "erin", "app"))

	for _, tc := range []struct {
		body map[string]any
		code int
		msg  string
	}{
		{map[string]any{"default_branch": "nope"}, 400, `erin/app has no branch \"nope\"`},
		{map[string]any{"default_branch": "a..b"}, 400, "not a valid branch name"},
		{map[string]any{"visibility": "secret"}, 400, `visibility must be \"public\" or \"restricted\"`},
		{map[string]any{"owner": "x"}, 400, "owner"},
	} {
		code, raw := s.Do("PATCH", "/api/v1/repos/erin/app", erin, tc.body)
		if code != tc.code || !strings.Contains(string(raw), tc.msg) {
			t.Errorf("PATCH %v = %d %s, want %d %q", tc.body, code, raw, tc.code, tc.msg)
		}
	}
	code, rp := s.JSON("PATCH", "/api/v1/repos/erin/app", erin, map[string]any{"default_branch": "trunk", "visibility": "public"})
	if code != 200 || rp["default_branch"] != "trunk" || rp["visibility"] != "public" {
		t.Fatalf("PATCH = %d %v", code, rp)
	}
	clone := g.Clone(s.RepoURL(erin, "erin", "app"))
	if head := strings.TrimSpace(g.Must(clone, "rev-parse", "--abbrev-ref", "HEAD")); head != "trunk" {
		t.Errorf("a clone checks out %q, want trunk", head)
	}
	g.Commit(work, "c.txt", "c\n", "second on trunk")
	g.Must(work, "push", "-q", "origin", "trunk")
	if n := len(s.Builds(erin, "erin", "app")); n != builds+1 {
		t.Errorf("a push to the new default branch queued %d builds, want 1", n-builds)
	}
	if code, raw := s.Do("PATCH", "/api/v1/repos/erin/app", Cred{"frank", s.CreateUser("frank", false)}, map[string]any{"visibility": "restricted"}); code != http.StatusForbidden {
		t.Errorf("a reader's PATCH = %d %s", code, raw)
	}
}

// TestMirrorSettingsInBrowser: on a mirror of a repository on another
// gitserver (real SSH), the owner sees the deploy key ("View Key", never
// the private key) and the webhook's URL and secret ("View Details") as
// the API reveals them, fetches now ("Fetch now": the new upstream head
// arrives), sees the sync status and the last error once the key is gone
// upstream; and links another existing repository from the create modal
// (its generated key, added upstream, fetches it).
func TestMirrorSettingsInBrowser(t *testing.T) {
	t.Parallel()
	b := NewBrowser(t)
	p := newMirrorPair(t)
	p.sync(t)
	_, mi := p.here.JSON("GET", "/api/v1/repos/admin/app/mirror", p.admin, nil)
	_, wh := p.here.JSON("GET", "/api/v1/repos/admin/app/mirror/webhook", p.admin, nil)

	signInBrowser(b, p.here, "admin", p.admin.Secret)
	b.Open(p.here.URL + "/admin/app/settings")
	b.WaitText("Upstream")
	if st := b.Text("#mirror-status"); st != "ok" {
		t.Errorf("mirror status %q", st)
	}
	var disabled bool
	b.Eval(`document.getElementById('default-branch').disabled`, &disabled)
	if !disabled {
		t.Error("a mirror's default branch is editable")
	}
	var html string
	b.Eval(`document.documentElement.outerHTML`, &html)
	if strings.Contains(html, "Repair") {
		t.Error("a plain mirror offers Repair")
	}

	b.Follow("View Key")
	b.WaitText("Public key")
	if v := b.fieldValue("Public key"); v != mi["deploy_key"] {
		t.Errorf("View Key shows %q, want %q", v, mi["deploy_key"])
	}
	b.Eval(`document.documentElement.outerHTML`, &html)
	if strings.Contains(html, "PRIVATE KEY") || strings.Contains(html, wh["secret"].(string)) {
		t.Fatal("View Key shows a secret")
	}
	b.Follow("Close")
	b.Follow("View Details")
	b.WaitText("Payload URL")
	if v := b.fieldValue("Payload URL"); v != wh["url"] {
		t.Errorf("View Details URL %q, want %q", v, wh["url"])
	}
	if v := b.fieldValue("Secret"); v != wh["secret"] || v == "" {
		t.Errorf("View Details secret %q, want the API's", v)
	}
	b.Follow("Close")

	// Fetch now brings a new upstream head.
	since := mi["last_sync_at"].(string)
	c2 := p.git.Commit(p.work, "a.txt", "two\n", "two")
	p.git.Must(p.work, "push", "-q", "origin", "master")
	b.Click("Fetch now")
	b.WaitText("Fetching from the upstream now.")
	m := p.waitSynced(t, since)
	if got := p.head(t); got != c2 {
		t.Fatalf("after Fetch now the mirror's head is %s, want %s", got, c2)
	}
	b.Open(p.here.URL + "/admin/app/settings")
	at, err := time.Parse(time.RFC3339Nano, m["last_sync_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	b.WaitText(at.UTC().Format("2006-01-02 15:04:05 UTC"))

	// The key removed upstream: the next fetch fails, and says so.
	if status, raw := p.up.Do("DELETE", "/api/v1/repos/admin/app/deploy-keys/"+strconv.FormatInt(int64(p.deployKeyID), 10), p.upAdmin, nil); status != http.StatusNoContent {
		t.Fatalf("delete deploy key upstream: %d %s", status, raw)
	}
	b.Click("Fetch now")
	b.WaitText("Fetching from the upstream now.")
	p.waitSynced(t, m["last_sync_at"].(string))
	b.Open(p.here.URL + "/admin/app/settings")
	b.WaitText("Last error")
	if e := b.Text("#mirror-error"); !strings.HasPrefix(e, "auth_failed: ") {
		t.Errorf("last error shown %q", e)
	}
	if st := b.Text("#mirror-status"); st != "error" {
		t.Errorf("status shown %q", st)
	}

	// Repair is for provider-hosted mirrors: the service says so.
	wc := newWebClient(t, p.here)
	wc.signIn("admin", p.admin.Secret)
	_, page, _ := wc.do("GET", "/admin/app/settings", nil)
	csrf := webCSRF.FindStringSubmatch(page)[1]
	if code, body, _ := wc.do("POST", "/admin/app/settings/mirror/repair", url.Values{"csrf": {csrf}}); code != http.StatusBadRequest ||
		!strings.Contains(body, "is not hosted through an SCM configuration") {
		t.Errorf("repair of a plain mirror = %d\n%s", code, body)
	}

	// Link an existing repository from the modal: its new key, added
	// upstream, fetches it.
	b.Open(p.here.URL + "/")
	b.Follow("New repository")
	b.Fill("Repository name", "linked")
	b.setField("Repository host", "mirror")
	b.Fill("Upstream SSH URL", p.upstreamURL)
	b.Click("Create repository")
	b.WaitText("linked")
	if loc := b.Location(); loc != p.here.URL+"/admin/linked" {
		t.Fatalf("after creating the mirror at %s", loc)
	}
	b.Open(p.here.URL + "/admin/linked/settings?view=key")
	key := b.fieldValue("Public key")
	if !strings.HasPrefix(key, "ssh-ed25519 ") || key == mi["deploy_key"] {
		t.Fatalf("the linked mirror's key %q", key)
	}
	if status, k := p.up.JSON("POST", "/api/v1/repos/admin/app/deploy-keys", p.upAdmin, map[string]any{"title": "linked", "key": key}); status != http.StatusCreated {
		t.Fatalf("add the linked key upstream: %d %v", status, k)
	}
	b.Follow("Close")
	b.Click("Fetch now")
	b.WaitText("Fetching from the upstream now.")
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := p.git.Run("", "ls-remote", p.here.RepoURL(p.admin, "admin", "linked"), "refs/heads/master")
		if strings.HasPrefix(out, c2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the linked mirror never fetched %s: %q", c2, out)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
