package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"gitserver/store"
)

// adminEnv is newEnv with an admin, "root", signed in on the returned
// client.
func adminEnv(t *testing.T) (*env, *client) {
	t.Helper()
	e := newEnv(t, false)
	root, err := e.store.CreateUser(context.Background(), "root", "password-root", true)
	if err != nil {
		t.Fatal(err)
	}
	e.users["root"] = root
	c := e.client()
	c.mustSignIn("root")
	return e, c
}

// post posts form to path with the CSRF token of page (GET first).
func (c *client) post(page, path string, form url.Values) resp {
	c.e.t.Helper()
	g := c.do("GET", page, nil, nil)
	if g.status != 200 {
		c.e.t.Fatalf("GET %s = %d\n%s", page, g.status, g.body)
	}
	form.Set("csrf", csrfOf(c.e.t, g.body))
	return c.do("POST", path, form, nil)
}

func TestAdminPanelOnlyForAdmins(t *testing.T) {
	t.Parallel()
	e, root := adminEnv(t)
	for _, tab := range []string{"", "?tab=users", "?tab=orgs", "?tab=orgs&org=team", "?tab=scm", "?tab=scm&add=gitea", "?tab=status", "?tab=nonsense"} {
		r := root.do("GET", "/admin"+tab, nil, nil)
		if r.status != 200 || !strings.Contains(r.body, "<h1>Admin</h1>") {
			t.Fatalf("admin GET /admin%s = %d\n%s", tab, r.status, r.body)
		}
		checkHeaders(t, r)
	}
	if r := root.do("GET", "/", nil, nil); !strings.Contains(r.body, `<a href="/admin">Admin</a>`) {
		t.Error("no Admin link in an admin's navigation")
	}
	alice := e.client()
	alice.mustSignIn("alice")
	if r := alice.do("GET", "/", nil, nil); strings.Contains(r.body, `href="/admin"`) {
		t.Error("an Admin link in a user's navigation")
	}
	anon := e.client()
	aliceTok := csrfOf(t, alice.do("GET", "/", nil, nil).body)
	for _, c := range []*client{alice, anon} {
		for _, p := range []string{"/admin", "/admin?tab=users", "/admin?tab=status"} {
			if r := c.do("GET", p, nil, nil); r.status != http.StatusNotFound || strings.Contains(r.body, "Create user") {
				t.Errorf("non-admin GET %s = %d", p, r.status)
			}
		}
		for _, p := range []string{"/-/admin/users", "/-/admin/users/bob/make-admin", "/-/admin/orgs", "/-/admin/orgs/team/members", "/-/admin/scm", "/-/admin/scm/1/remove"} {
			if r := c.do("POST", p, url.Values{"csrf": {aliceTok}, "username": {"mallory"}, "password": {"password-x"}, "name": {"evil"}}, nil); r.status != http.StatusNotFound {
				t.Errorf("non-admin POST %s = %d, want 404", p, r.status)
			}
		}
	}
	if _, err := e.store.UserByName(context.Background(), "mallory"); err == nil {
		t.Fatal("a non-admin created a user")
	}
	if u, _ := e.store.UserByName(context.Background(), "bob"); u.IsAdmin {
		t.Fatal("a non-admin made bob admin")
	}
	// The first account is named admin: its repositories keep their pages.
	ctx := context.Background()
	adm, _ := e.store.CreateUser(ctx, "admin", "password-admin", true)
	e.store.CreateRepo(ctx, store.NewRepo{OwnerID: adm.ID, Name: "users", Visibility: store.Public})
	if r := root.do("GET", "/admin/users", nil, nil); r.status != 200 || !strings.Contains(r.body, "/git/admin/users.git") {
		t.Errorf("GET /admin/users (the admin account's repository) = %d", r.status)
	}
}

func TestAdminFormsNeedCSRF(t *testing.T) {
	t.Parallel()
	e, root := adminEnv(t)
	tok := csrfOf(t, root.do("GET", "/admin", nil, nil).body)
	for _, tc := range []struct {
		what string
		form url.Values
		hdr  map[string]string
	}{
		{"no token", url.Values{"username": {"mallory"}}, nil},
		{"a wrong token", url.Values{"username": {"mallory"}, "csrf": {strings.Repeat("0", 64)}}, nil},
		{"another origin", url.Values{"username": {"mallory"}, "csrf": {tok}}, map[string]string{"Origin": "http://evil.example"}},
	} {
		r := root.do("POST", "/-/admin/users", tc.form, tc.hdr)
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "Form refused") {
			t.Errorf("create user with %s = %d", tc.what, r.status)
		}
		if r := root.do("POST", "/-/admin/users/bob/disable", tc.form, tc.hdr); r.status != http.StatusForbidden {
			t.Errorf("disable with %s = %d", tc.what, r.status)
		}
	}
	if _, err := e.store.UserByName(context.Background(), "mallory"); err == nil {
		t.Fatal("a refused form created a user")
	}
	if u, _ := e.store.UserByName(context.Background(), "bob"); u.Disabled {
		t.Fatal("a refused form disabled bob")
	}
}

var adminNewPassword = regexp.MustCompile(`Password of ([^:]+): <code>([0-9a-f]+)</code>`)

func TestAdminUsers(t *testing.T) {
	t.Parallel()
	e, root := adminEnv(t)
	ctx := context.Background()
	// A generated password, shown once.
	r := root.post("/admin", "/-/admin/users", url.Values{"username": {"dora"}})
	m := adminNewPassword.FindStringSubmatch(r.body)
	if r.status != 200 || m == nil || m[1] != "dora" || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create dora = %d\n%s", r.status, r.body)
	}
	if _, err := e.store.CheckPassword(ctx, "dora", m[2]); err != nil {
		t.Fatalf("the shown password does not sign in: %v", err)
	}
	if g := root.do("GET", "/admin?tab=users", nil, nil); strings.Contains(g.body, m[2]) || !strings.Contains(g.body, `id="user-dora"`) {
		t.Fatal("the password shows again, or dora is not listed")
	}
	// A chosen password, and an admin.
	if r := root.post("/admin", "/-/admin/users", url.Values{"username": {"ed"}, "password": {"chosen-password"}, "admin": {"true"}}); r.status != 200 || adminNewPassword.MatchString(r.body) {
		t.Fatalf("create ed = %d\n%s", r.status, r.body)
	}
	if u, err := e.store.CheckPassword(ctx, "ed", "chosen-password"); err != nil || !u.IsAdmin {
		t.Fatalf("ed = %+v, %v", u, err)
	}
	// Refusals: the store's message, the form filled again, nothing made.
	for _, tc := range []struct {
		form   url.Values
		status int
		msg    string
	}{
		{url.Values{"username": {"-bad"}}, 400, "-bad"},
		{url.Values{"username": {"DORA"}}, 409, "taken"},
		{url.Values{"username": {"fay"}, "password": {"short"}}, 400, "at least 8 characters"},
	} {
		r := root.post("/admin", "/-/admin/users", tc.form)
		if r.status != tc.status || !strings.Contains(r.body, tc.msg) || !strings.Contains(r.body, `value="`+tc.form.Get("username")+`"`) {
			t.Errorf("create %v = %d, want %d with %q\n%s", tc.form, r.status, tc.status, tc.msg, r.body)
		}
	}
	if _, err := e.store.UserByName(ctx, "fay"); err == nil {
		t.Error("a refused creation made fay")
	}
	// Disable, enable, make admin, remove admin.
	action := func(name, act string, status int) resp {
		t.Helper()
		r := root.post("/admin?tab=users", "/-/admin/users/"+name+"/"+act, url.Values{})
		if r.status != status {
			t.Fatalf("%s %s = %d, want %d\n%s", act, name, r.status, status, r.body)
		}
		return r
	}
	action("dora", "disable", 200)
	if _, err := e.store.CheckPassword(ctx, "dora", m[2]); err == nil {
		t.Fatal("a disabled user's password works")
	}
	action("dora", "enable", 200)
	action("dora", "make-admin", 200)
	if u, _ := e.store.UserByName(ctx, "dora"); !u.IsAdmin || u.Disabled {
		t.Fatalf("dora = %+v", u)
	}
	action("dora", "remove-admin", 200)
	action("ed", "remove-admin", 200)
	if r := action("root", "remove-admin", 409); !strings.Contains(r.body, "only enabled admin") {
		t.Fatalf("demoting the last admin:\n%s", r.body)
	}
	if r := action("root", "disable", 409); !strings.Contains(r.body, "only enabled admin") {
		t.Fatalf("disabling the last admin:\n%s", r.body)
	}
	action("nobody", "disable", 404)
	// An admin who removes their own admin role leaves the panel.
	action("ed", "make-admin", 200)
	if r := action("root", "remove-admin", http.StatusSeeOther); r.header.Get("Location") != "/" {
		t.Fatalf("self-demotion redirects to %q", r.header.Get("Location"))
	}
	if r := root.do("GET", "/admin", nil, nil); r.status != 404 {
		t.Fatalf("a demoted admin's /admin = %d, want 404", r.status)
	}
}

func TestAdminOrgs(t *testing.T) {
	t.Parallel()
	e, root := adminEnv(t)
	ctx := context.Background()
	r := root.post("/admin?tab=orgs", "/-/admin/orgs", url.Values{"name": {"crew"}})
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/admin?tab=orgs&org=crew" {
		t.Fatalf("create org = %d %q\n%s", r.status, r.header.Get("Location"), r.body)
	}
	crew, err := e.store.AccountByName(ctx, "crew")
	if err != nil || crew.Kind != store.KindOrg {
		t.Fatal(err)
	}
	if role, _ := e.store.Role(ctx, crew.ID, e.users["root"].ID); role != store.RoleOwner {
		t.Fatalf("the creating admin's role = %q", role)
	}
	if r := root.post("/admin?tab=orgs", "/-/admin/orgs", url.Values{"name": {"team"}}); r.status != 409 || !strings.Contains(r.body, "taken") || !strings.Contains(r.body, `id="org-name" name="name" value="team"`) {
		t.Fatalf("create a taken name = %d", r.status)
	}
	list := root.do("GET", "/admin?tab=orgs", nil, nil)
	if !strings.Contains(list.body, `org=crew">crew</a>`) || !strings.Contains(list.body, `org=team">team</a>`) {
		t.Fatalf("orgs list:\n%s", list.body)
	}
	page := "/admin?tab=orgs&org=team" // carol owns it, alice is a member; root is not
	if r := root.do("GET", page, nil, nil); !strings.Contains(r.body, `id="member-alice"`) || !strings.Contains(r.body, `id="member-carol"`) {
		t.Fatalf("team's members:\n%s", r.body)
	}
	if r := root.post(page, "/-/admin/orgs/team/members", url.Values{"username": {"bob"}, "role": {"member"}}); r.status != 200 || !strings.Contains(r.body, "bob is a member of team.") {
		t.Fatalf("add bob = %d\n%s", r.status, r.body)
	}
	if role, _ := e.store.Role(ctx, e.users["team"].ID, e.users["bob"].ID); role != store.RoleMember {
		t.Fatalf("bob's role = %q", role)
	}
	if r := root.post(page, "/-/admin/orgs/team/members", url.Values{"username": {"bob"}, "role": {"owner"}}); r.status != 200 {
		t.Fatalf("make bob owner = %d", r.status)
	}
	if role, _ := e.store.Role(ctx, e.users["team"].ID, e.users["bob"].ID); role != store.RoleOwner {
		t.Fatalf("bob's role = %q", role)
	}
	if r := root.post(page, "/-/admin/orgs/team/members", url.Values{"username": {"ghost"}, "role": {"member"}}); r.status != 400 || !strings.Contains(r.body, `there is no user &#34;ghost&#34;`) {
		t.Fatalf("add ghost = %d\n%s", r.status, r.body)
	}
	if r := root.post(page, "/-/admin/orgs/team/members", url.Values{"username": {"bob"}, "role": {"king"}}); r.status != 400 || !strings.Contains(r.body, "role must be") {
		t.Fatalf("role king = %d\n%s", r.status, r.body)
	}
	if r := root.post(page, "/-/admin/orgs/team/members/alice/remove", url.Values{}); r.status != 200 {
		t.Fatalf("remove alice = %d", r.status)
	}
	if role, _ := e.store.Role(ctx, e.users["team"].ID, e.users["alice"].ID); role != "" {
		t.Fatalf("alice still %q", role)
	}
	// The only owner stays: carol demoted after bob leaves is refused.
	root.post(page, "/-/admin/orgs/team/members/bob/remove", url.Values{})
	if r := root.post(page, "/-/admin/orgs/team/members", url.Values{"username": {"carol"}, "role": {"member"}}); r.status != 409 {
		t.Fatalf("demote the only owner = %d\n%s", r.status, r.body)
	}
	if r := root.do("GET", "/admin?tab=orgs&org=nothing", nil, nil); r.status != 404 {
		t.Fatalf("unknown org = %d", r.status)
	}
	if r := root.post("/admin?tab=orgs", "/-/admin/orgs/nothing/members", url.Values{"username": {"bob"}, "role": {"member"}}); r.status != 404 {
		t.Fatalf("member of an unknown org = %d", r.status)
	}
}

func TestAdminStatusAndSCMWithoutAdapters(t *testing.T) {
	t.Parallel()
	e, root := adminEnv(t)
	r := root.do("GET", "/admin?tab=status", nil, nil)
	if r.status != 200 || !strings.Contains(r.body, "<dd>0 queued, 0 running</dd>") || !strings.Contains(r.body, "<dt>Database</dt><dd>ok</dd>") {
		t.Fatalf("status:\n%s", r.body)
	}
	_ = e
	// This env gives no SCM factory: the API's 503 message.
	form := url.Values{"form": {"gitea"}, "name": {"g"}, "website_url": {"https://gitea.example"}, "api_url": {"https://gitea.example/api/v1"},
		"ssh_url": {"ssh://git@gitea.example:22"}, "client_id": {"id"}, "client_secret": {"s3cret-value"}}
	r = root.post("/admin?tab=scm&add=gitea", "/-/admin/scm", form)
	if r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "SCM adapters are not available") || strings.Contains(r.body, "s3cret-value") ||
		!strings.Contains(r.body, `value="https://gitea.example/api/v1"`) {
		t.Fatalf("add without adapters = %d\n%s", r.status, r.body)
	}
	form.Set("ssh_url", "http://nope")
	if r := root.post("/admin?tab=scm&add=gitea", "/-/admin/scm", form); r.status != 400 || !strings.Contains(r.body, "ssh_url must be an ssh:// URL") {
		t.Fatalf("bad ssh_url = %d\n%s", r.status, r.body)
	}
	form.Set("form", "svn")
	if r := root.post("/admin?tab=scm", "/-/admin/scm", form); r.status != 400 {
		t.Fatalf("unknown kind = %d", r.status)
	}
	if r := root.post("/admin?tab=scm", "/-/admin/scm/99/remove", url.Values{}); r.status != 404 {
		t.Fatalf("remove unknown = %d\n%s", r.status, r.body)
	}
	if r := root.post("/admin?tab=scm", "/-/admin/scm/99/test", url.Values{}); r.status != 404 {
		t.Fatalf("test unknown = %d\n%s", r.status, r.body)
	}
}

// TestAdminRemoveSCMInUse: a configuration a repository uses is refused
// with its name and offered "Remove anyway", which unlinks it; Test
// without adapters says so (503).
func TestAdminRemoveSCMInUse(t *testing.T) {
	t.Parallel()
	e, root := adminEnv(t)
	ctx := context.Background()
	c, err := e.store.CreateSCMConfig(ctx, store.SCMConfig{Name: "corp", Kind: "gitea", Mode: "webhook", WebsiteURL: "https://scm.example",
		APIURL: "https://scm.example/api/v1", SSHURL: "ssh://git@scm.example:22", ClientID: "cid", ClientSecret: "top-secret-value",
		AllowedOwners: []string{}, KnownHosts: "scm.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost\n", HostKeyFingerprints: []string{"SHA256:abc"}})
	if err != nil {
		t.Fatal(err)
	}
	rp, _, err := e.store.CreateMirror(ctx, store.NewRepo{OwnerID: e.users["alice"].ID, Name: "app", Visibility: store.Restricted}, store.NewMirror{
		URL: "git@scm.example:team/app.git", PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq7 mirror",
		PrivateKey: []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nx\n-----END OPENSSH PRIVATE KEY-----\n"),
		KnownHosts: "[scm.example]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost\n", HostKeyFingerprints: []string{"SHA256:abc"}, WebhookSecret: "whsec-x"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.LinkMirrorSCMConfig(ctx, rp.ID, c.ID); err != nil {
		t.Fatal(err)
	}
	page := root.do("GET", "/admin?tab=scm", nil, nil)
	if !strings.Contains(page.body, `id="scm-`) || strings.Contains(page.body, "top-secret-value") || !strings.Contains(page.body, "SHA256:abc") {
		t.Fatalf("scm tab:\n%s", page.body)
	}
	id := strconv.FormatInt(c.ID, 10)
	if r := root.post("/admin?tab=scm", "/-/admin/scm/"+id+"/test", url.Values{}); r.status != http.StatusServiceUnavailable || !strings.Contains(r.body, "Test of corp failed: SCM adapters are not available") {
		t.Fatalf("test without adapters = %d\n%s", r.status, r.body)
	}
	r := root.post("/admin?tab=scm", "/-/admin/scm/"+id+"/remove", url.Values{})
	if r.status != http.StatusConflict || !strings.Contains(r.body, "alice/app") || !strings.Contains(r.body, "Remove anyway") {
		t.Fatalf("remove in use = %d\n%s", r.status, r.body)
	}
	if _, err := e.store.SCMConfigByID(ctx, c.ID); err != nil {
		t.Fatal("a refused remove deleted the configuration")
	}
	r = root.post("/admin?tab=scm", "/-/admin/scm/"+id+"/remove", url.Values{"force": {"true"}})
	if r.status != 200 || !strings.Contains(r.body, "now plain mirrors: alice/app") {
		t.Fatalf("remove anyway = %d\n%s", r.status, r.body)
	}
	if _, err := e.store.SCMConfigByID(ctx, c.ID); err == nil {
		t.Fatal("the configuration is still there")
	}
	if m, err := e.store.MirrorByRepo(ctx, rp.ID); err != nil || m.SCMConfigID != 0 {
		t.Fatalf("mirror after force = %+v, %v", m, err)
	}
}
