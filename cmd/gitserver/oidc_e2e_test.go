package main

import (
	"context"
	"errors"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/sqlite"
)

// Single sign-on (issue 16) against a real OpenID Connect provider: the
// Gitea harness. Gitea's issuer is its ROOT_URL without the trailing
// slash; its ID tokens carry preferred_username, email and, with the
// groups scope, "groups": the user's organisations ("org") and teams ("org:team").

// giteaAdminsOrg is the Gitea organisation whose members are admins here
// (--oidc-admin-claim groups=gitserver-admins).
const giteaAdminsOrg = "gitserver-admins"

// oidcEnv is a Gitea with an OAuth2 application for a gitserver on a port
// chosen in advance (the redirect URI is registered before the server
// starts).
type oidcEnv struct {
	g                *Gitea
	port             int
	base             string // http://127.0.0.1:PORT
	clientID, secret string
}

func newOIDCEnv(t *testing.T) *oidcEnv {
	t.Helper()
	g := StartGitea(t)
	e := &oidcEnv{g: g, port: freePort(t)}
	e.base = fmt.Sprintf("http://127.0.0.1:%d", e.port)
	var app struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	g.apiMust(t, http.StatusCreated, "POST", "/user/applications/oauth2", map[string]any{
		"name": "gitserver", "redirect_uris": []string{e.base + "/oidc/callback"}, "confidential_client": true}, &app)
	if app.ClientID == "" || app.ClientSecret == "" {
		t.Fatalf("gitea oauth2 application: %+v", app)
	}
	e.clientID, e.secret = app.ClientID, app.ClientSecret
	g.apiMust(t, http.StatusCreated, "POST", "/orgs", map[string]any{"username": giteaAdminsOrg}, nil)
	return e
}

// user creates a Gitea user and returns its password.
func (e *oidcEnv) user(t *testing.T, name string, admin bool) string {
	t.Helper()
	pw := "Pw-" + store.RandomHex(10)
	e.g.apiMust(t, http.StatusCreated, "POST", "/admin/users", map[string]any{"username": name, "email": name + "@example.test",
		"password": pw, "must_change_password": false}, nil)
	if admin {
		e.setAdmin(t, name, true)
	}
	return pw
}

// setAdmin adds name to (or removes it from) the admins organisation's
// owners team.
func (e *oidcEnv) setAdmin(t *testing.T, name string, admin bool) {
	t.Helper()
	var teams []struct {
		ID   int64  `json:"id"`
		Name string `json:"name"`
	}
	e.g.apiMust(t, http.StatusOK, "GET", "/orgs/"+giteaAdminsOrg+"/teams", nil, &teams)
	if len(teams) == 0 {
		t.Fatal("the admins organisation has no team")
	}
	method := "PUT"
	if !admin {
		method = "DELETE"
	}
	e.g.apiMust(t, http.StatusNoContent, method, fmt.Sprintf("/teams/%d/members/%s", teams[0].ID, name), nil, nil)
}

// start starts gitserver with single sign-on through the Gitea (the
// client secret in the environment, never in argv).
func (e *oidcEnv) start(t *testing.T, extra ...string) *TestServer {
	t.Helper()
	args := append([]string{"--http-addr", fmt.Sprintf("127.0.0.1:%d", e.port), "--base-url", e.base,
		"--oidc-issuer", e.g.HTTPURL, "--oidc-client-id", e.clientID, "--oidc-provider-name", "Gitea",
		"--oidc-scopes", "openid profile email groups", "--oidc-admin-claim", "groups=" + giteaAdminsOrg}, extra...)
	s := StartServer(t, WithArgs(args...), WithEnv("GITSERVER_OIDC_CLIENT_SECRET="+e.secret))
	t.Cleanup(func() {
		if strings.Contains(s.Output(), e.secret) {
			t.Error("the server logged the client secret")
		}
		if t.Failed() {
			t.Logf("gitserver output:\n%s", s.Output())
		}
	})
	return s
}

// openStore opens the server's database (another handle on it, as a
// second process would).
func openStore(t *testing.T, s *TestServer) store.Store {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(s.Data, "gitserver.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// noFollow is an HTTP client with a cookie jar that does not follow
// redirects.
func noFollow() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func get(t *testing.T, hc *http.Client, u string) (int, string, http.Header) {
	t.Helper()
	res, err := hc.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

func postForm(t *testing.T, hc *http.Client, u string, form url.Values) (int, string, http.Header) {
	t.Helper()
	res, err := hc.PostForm(u, form)
	if err != nil {
		t.Fatalf("POST %s: %v", u, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([a-z_]+)" value="([^"]*)">`)

// giteaSignIn signs the client in at Gitea (its session cookie in the
// client's jar).
func (e *oidcEnv) giteaSignIn(t *testing.T, hc *http.Client, user, pw string) {
	t.Helper()
	if code, body, _ := postForm(t, hc, e.g.HTTPURL+"/user/login", url.Values{"user_name": {user}, "password": {pw}}); code != http.StatusSeeOther {
		t.Fatalf("gitea sign-in as %s = %d\n%s", user, code, body)
	}
}

// authorize starts a sign-in at gitserver (GET /oidc/login) with a client
// signed in at Gitea, grants it at Gitea's consent page when shown, and
// returns the callback URL Gitea redirects to (not followed).
func (e *oidcEnv) authorize(t *testing.T, hc *http.Client, s *TestServer) string {
	t.Helper()
	code, body, h := get(t, hc, s.URL+"/oidc/login")
	if code != http.StatusSeeOther || !strings.HasPrefix(h.Get("Location"), e.g.HTTPURL+"/login/oauth/authorize?") {
		t.Fatalf("GET /oidc/login = %d (Location %q)\n%s", code, h.Get("Location"), body)
	}
	authURL, _ := url.Parse(h.Get("Location"))
	q := authURL.Query()
	if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" || q.Get("state") == "" {
		t.Fatalf("the authorization request lacks PKCE, nonce or state: %s", authURL)
	}
	code, body, h = get(t, hc, authURL.String())
	if code == http.StatusOK { // the consent page
		form := url.Values{"granted": {"true"}}
		for _, m := range hiddenInput.FindAllStringSubmatch(body, -1) {
			form.Set(m[1], html.UnescapeString(m[2]))
		}
		code, body, h = postForm(t, hc, e.g.HTTPURL+"/login/oauth/grant", form)
	}
	loc := h.Get("Location")
	if (code != http.StatusSeeOther && code != http.StatusFound) || !strings.HasPrefix(loc, e.base+"/oidc/callback?") {
		t.Fatalf("gitea authorize/grant = %d (Location %q)\n%s", code, loc, body)
	}
	return loc
}

// signInOIDC completes a whole sign-in over HTTP and returns the client,
// signed in at gitserver.
func (e *oidcEnv) signInOIDC(t *testing.T, s *TestServer, user, pw string) *http.Client {
	t.Helper()
	hc := noFollow()
	e.giteaSignIn(t, hc, user, pw)
	cb := e.authorize(t, hc, s)
	if code, body, h := get(t, hc, cb); code != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Fatalf("callback as %s = %d (Location %q)\n%s", user, code, h.Get("Location"), body)
	}
	return hc
}

func auditHas(t *testing.T, db store.Store, action, target, detail string) bool {
	t.Helper()
	ev, err := db.AuditEvents(context.Background(), 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ev {
		if e.Action == action && e.Target == target && strings.Contains(e.Detail, detail) {
			return true
		}
	}
	return false
}

// refusedPage checks a refusal: status, the page's message, no session.
func refusedPage(t *testing.T, what string, code int, body string, wantCode int, wantMsg string) {
	t.Helper()
	if code != wantCode || !strings.Contains(html.UnescapeString(body), wantMsg) {
		t.Errorf("%s = %d, want %d with %q\n%s", what, code, wantCode, wantMsg, body)
	}
	if strings.Contains(body, "goroutine") || strings.Contains(body, "/tmp/") {
		t.Errorf("%s leaks internals:\n%s", what, body)
	}
}

// TestOIDCGiteaOverHTTP: sign-ins through Gitea driven over HTTP: the
// account created at the first (no password), the admin claim followed
// at every sign-in (and audited), the refusals (forged state, a replayed
// callback, a replayed code, a name taken by a local account) with nothing
// created, the break-glass admin, and leavers: the provider refuses the
// refresh (at a page request, or in the sweep for one who only uses git),
// the account is disabled; a disabled account does not sign in.
func TestOIDCGiteaOverHTTP(t *testing.T) {
	e := newOIDCEnv(t)
	s := e.start(t, "--oidc-refresh-interval", "1s")
	db := openStore(t, s)
	ctx := context.Background()

	// The sign-in page offers the provider.
	hc0 := noFollow()
	if code, body, _ := get(t, hc0, s.URL+"/login"); code != 200 || !strings.Contains(body, `href="/oidc/login">Sign in with Gitea</a>`) {
		t.Fatalf("/login = %d\n%s", code, body)
	}

	// peter: the first sign-in creates the account, not an admin.
	peterPW := e.user(t, "peter", false)
	hc := e.signInOIDC(t, s, "peter", peterPW)
	peter, err := db.UserByName(ctx, "peter")
	if err != nil || peter.IsAdmin || peter.Disabled {
		t.Fatalf("peter after the first sign-in: %+v, %v", peter, err)
	}
	if code, body, _ := get(t, hc, s.URL+"/"); code != 200 || !strings.Contains(body, "Your repositories") {
		t.Fatalf("GET / signed in = %d\n%s", code, body)
	}
	if _, h, _ := db.UserWithPasswordHash(ctx, peter.ID); h != "" {
		t.Fatal("an account created by single sign-on has a password")
	}
	if l, err := db.OIDCLinkOf(ctx, peter.ID); err != nil || l.Issuer != e.g.HTTPURL || l.Subject == "" || l.RefreshToken == "" {
		t.Fatalf("peter's link: %+v, %v", l, err)
	}
	if !auditHas(t, db, "user.create", "peter", "admin=false") || !auditHas(t, db, "user.signin", "peter", "oidc") {
		t.Error("the creation and sign-in are not audited")
	}

	// The admin claim: peter joins the admins' organisation at Gitea; the
	// next sign-in makes him an admin here, and leaving demotes him.
	e.setAdmin(t, "peter", true)
	e.signInOIDC(t, s, "peter", peterPW)
	if a, _ := db.UserByName(ctx, "peter"); !a.IsAdmin {
		t.Fatal("the admin claim was not honoured")
	}
	if !auditHas(t, db, "user.admin", "peter", "admin=true") {
		t.Error("the promotion by claim is not audited")
	}
	e.setAdmin(t, "peter", false)
	e.signInOIDC(t, s, "peter", peterPW)
	if a, _ := db.UserByName(ctx, "peter"); a.IsAdmin {
		t.Fatal("leaving the admins' group did not demote")
	}
	if !auditHas(t, db, "user.admin", "peter", "admin=false") {
		t.Error("the demotion by claim is not audited")
	}
	users, _ := db.CountUsers(ctx)

	// A forged state: no cookie, or a cookie and state that were never
	// issued.
	hf := noFollow()
	code, body, _ := get(t, hf, s.URL+"/oidc/callback?code=abc&state="+store.RandomHex(32))
	refusedPage(t, "forged state", code, body, http.StatusBadRequest, "not started in this browser")
	forged := store.RandomHex(32)
	u, _ := url.Parse(s.URL)
	hf.Jar.SetCookies(u, []*http.Cookie{{Name: "gitserver_oidc", Value: forged, Path: "/"}})
	code, body, _ = get(t, hf, s.URL+"/oidc/callback?code=abc&state="+forged)
	refusedPage(t, "forged state with its cookie", code, body, http.StatusBadRequest, "expired or was completed already")

	// A callback URL taken to another browser: its state is not that
	// browser's.
	quinnPW := e.user(t, "quinn", false)
	hq := noFollow()
	e.giteaSignIn(t, hq, "quinn", quinnPW)
	cb := e.authorize(t, hq, s)
	code, body, _ = get(t, noFollow(), cb)
	refusedPage(t, "a callback in another browser", code, body, http.StatusBadRequest, "not started in this browser")

	// A replayed callback: the state is used once.
	code, body, h := get(t, hq, cb)
	if code != http.StatusSeeOther || h.Get("Location") != "/" {
		t.Fatalf("callback = %d\n%s", code, body)
	}
	if _, err := db.UserByName(ctx, "quinn"); err != nil {
		t.Fatal(err)
	}
	users++
	hq.Jar.SetCookies(u, []*http.Cookie{{Name: "gitserver_oidc", Value: mustQuery(t, cb, "state"), Path: "/"}})
	code, body, _ = get(t, hq, cb)
	refusedPage(t, "replayed callback", code, body, http.StatusBadRequest, "expired or was completed already")

	// A replayed code with a fresh state: Gitea refuses the used code.
	hq2 := noFollow()
	e.giteaSignIn(t, hq2, "quinn", quinnPW)
	cb2 := e.authorize(t, hq2, s)
	replay := strings.Replace(cb2, "code="+url.QueryEscape(mustQuery(t, cb2, "code")), "code="+url.QueryEscape(mustQuery(t, cb, "code")), 1)
	if replay == cb2 {
		t.Fatalf("could not swap the code in %s", cb2)
	}
	code, body, _ = get(t, hq2, replay)
	refusedPage(t, "replayed code", code, body, http.StatusForbidden, "refused the sign-in code")
	if n, _ := db.CountUsers(ctx); n != users {
		t.Fatalf("%d users after the refusals, want %d", n, users)
	}

	// A name taken by a local account: refused, nothing linked.
	ruthLocal := s.CreateUser("ruth", false)
	ruthPW := e.user(t, "ruth", false)
	hr := noFollow()
	e.giteaSignIn(t, hr, "ruth", ruthPW)
	code, body, _ = get(t, hr, e.authorize(t, hr, s))
	refusedPage(t, "a local account's name", code, body, http.StatusConflict, `An account named "ruth" exists here already`)
	ruth, _ := db.UserByName(ctx, "ruth")
	if _, err := db.OIDCLinkOf(ctx, ruth.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the local account was linked: %v", err)
	}
	if !credWorks(t, s, Cred{"ruth", ruthLocal}) {
		t.Fatal("the local account's password stopped working")
	}

	// The break-glass admin signs in with its password.
	admin := newWebClient(t, s)
	admin.signIn("admin", s.AdminPassword)

	// A leaver: quinn is deleted at Gitea (the grant with him); past the
	// refresh interval, his next page refreshes, Gitea answers
	// invalid_grant, and the account is disabled here.
	pw := regeneratePassword(t, hq, s)
	if !credWorks(t, s, Cred{"quinn", pw}) {
		t.Fatal("the regenerated password does not work")
	}
	e.g.apiMust(t, http.StatusNoContent, "DELETE", "/admin/users/quinn?purge=true", nil, nil)
	time.Sleep(1100 * time.Millisecond)
	if code, _, h := get(t, hq, s.URL+"/"); code != http.StatusSeeOther || h.Get("Location") != "/login" {
		t.Fatalf("a leaver's session: %d %q, want 303 to /login", code, h.Get("Location"))
	}
	if a, _ := db.UserByName(ctx, "quinn"); !a.Disabled {
		t.Fatal("the leaver's account is not disabled")
	}
	if credWorks(t, s, Cred{"quinn", pw}) {
		t.Fatal("the leaver's password still works for git")
	}
	if !auditHas(t, db, "user.disable", "quinn", "invalid_grant") {
		t.Error("the disable is not audited")
	}
	// A leaver who only uses git: una signs in once, takes a password,
	// and then only pushes. The sweep (every refresh interval) finds her
	// grant refused and disables her without any page request of hers.
	hu := e.signInOIDC(t, s, "una", e.user(t, "una", false))
	unaPW := regeneratePassword(t, hu, s)
	if !credWorks(t, s, Cred{"una", unaPW}) {
		t.Fatal("una's password does not work")
	}
	e.g.apiMust(t, http.StatusNoContent, "DELETE", "/admin/users/una?purge=true", nil, nil)
	deadline := time.Now().Add(20 * time.Second)
	for credWorks(t, s, Cred{"una", unaPW}) {
		if time.Now().After(deadline) {
			t.Fatal("a git-only leaver's password still works 20 s after the provider dropped her")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if a, _ := db.UserByName(ctx, "una"); !a.Disabled || !auditHas(t, db, "user.disable", "una", "invalid_grant") {
		t.Fatalf("una: %+v, want disabled (and audited)", a)
	}

	// peter (still at Gitea) stays signed in past the interval: his
	// refresh succeeds.
	if code, _, _ := get(t, hc, s.URL+"/"); code != http.StatusOK {
		t.Fatalf("peter's session after a refresh: %d", code)
	}
	if a, _ := db.UserByName(ctx, "peter"); a.Disabled {
		t.Fatal("a refresh Gitea accepted disabled the account")
	}
	// An account an admin disabled here does not sign in through Gitea.
	if _, err := s.Admin("", "user", "disable", "peter"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := get(t, hc, s.URL+"/"); code != http.StatusSeeOther {
		t.Fatalf("a disabled account's session: %d", code)
	}
	hp := noFollow()
	e.giteaSignIn(t, hp, "peter", peterPW)
	code, body, _ = get(t, hp, e.authorize(t, hp, s))
	refusedPage(t, "a disabled account", code, body, http.StatusForbidden, "Your account here is disabled")
	if code, _, _ := get(t, hp, s.URL+"/"); code != http.StatusSeeOther {
		t.Fatalf("a refused sign-in left a session: %d", code)
	}
}

// TestOIDCLinking: with --oidc-allow-linking, the first sign-in of a name
// taken by a local user links that user (its password keeps working, the
// admin claim applies); `gitserver admin user passwd` gives an account
// created by single sign-on its first password.
func TestOIDCLinking(t *testing.T) {
	e := newOIDCEnv(t)
	s := e.start(t, "--oidc-allow-linking")
	db := openStore(t, s)
	ctx := context.Background()
	local := s.CreateUser("sara", false)
	e.signInOIDC(t, s, "sara", e.user(t, "sara", true))
	sara, _ := db.UserByName(ctx, "sara")
	if l, err := db.OIDCLinkOf(ctx, sara.ID); err != nil || l.Subject == "" {
		t.Fatalf("sara not linked: %v", err)
	}
	if !sara.IsAdmin || !auditHas(t, db, "user.link", "sara", "oidc") {
		t.Fatalf("linked sara: %+v (admin claim), audit", sara)
	}
	if !credWorks(t, s, Cred{"sara", local}) {
		t.Fatal("a linked account's password stopped working")
	}
	n, _ := db.CountUsers(ctx)
	if n != 2 {
		t.Fatalf("%d users, want 2 (admin, sara)", n)
	}

	// An account created by single sign-on gets a password from the
	// admin CLI too.
	e.signInOIDC(t, s, "tom", e.user(t, "tom", false))
	if credWorks(t, s, Cred{"tom", ""}) {
		t.Fatal("an empty password works for an OIDC account")
	}
	out, err := s.Admin("", "user", "passwd", "tom")
	m := regexp.MustCompile(`new password for tom: (\S+)`).FindStringSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("admin user passwd tom: %v\n%s", err, out)
	}
	if !credWorks(t, s, Cred{"tom", m[1]}) {
		t.Fatal("the CLI's password does not work")
	}
}

func mustQuery(t *testing.T, rawURL, key string) string {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil || u.Query().Get(key) == "" {
		t.Fatalf("no %s in %s", key, rawURL)
	}
	return u.Query().Get(key)
}

// credWorks reports whether a password or token authenticates (GET
// /api/v1/user with Basic).
func credWorks(t *testing.T, s *TestServer, c Cred) bool {
	t.Helper()
	code, _ := s.Do("GET", "/api/v1/user", c, nil)
	return code == http.StatusOK
}

// regeneratePassword presses "Regenerate Account Password" over HTTP and
// returns the password shown.
func regeneratePassword(t *testing.T, hc *http.Client, s *TestServer) string {
	t.Helper()
	code, page, _ := get(t, hc, s.URL+"/user/settings")
	m := webCSRF.FindStringSubmatch(page)
	if code != 200 || m == nil || !strings.Contains(page, "Regenerate Account Password") {
		t.Fatalf("GET /user/settings = %d\n%s", code, page)
	}
	req, _ := http.NewRequest("POST", s.URL+"/user/settings/password", strings.NewReader(url.Values{"csrf": {m[1]}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", s.URL)
	res, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	pm := webNewPassword.FindStringSubmatch(string(b))
	if res.StatusCode != 200 || pm == nil {
		t.Fatalf("regenerate = %d\n%s", res.StatusCode, b)
	}
	return pm[1]
}

// TestOIDCGiteaInBrowser: the whole flow in a real browser: the sign-in
// page's "Sign in with Gitea", Gitea's own sign-in form and consent page,
// back signed in with the account created (an admin: she is in the admins'
// group at Gitea); then "Regenerate Account Password" on the account page,
// and that password clones and pushes over HTTP.
func TestOIDCGiteaInBrowser(t *testing.T) {
	b := NewBrowser(t)
	b.DismissDialogs()
	e := newOIDCEnv(t)
	pw := e.user(t, "olivia", true)
	s := e.start(t)
	db := openStore(t, s)

	b.Open(s.URL + "/login")
	b.Follow("Sign in with Gitea")
	b.Fill("Username or Email Address", "olivia")
	b.Fill("Password", pw)
	b.Click("Sign In")
	b.Click("Authorize Application")
	b.WaitText("Your repositories")
	if loc := b.Location(); loc != s.URL+"/" {
		t.Fatalf("after sign-in at %s, want %s/", loc, s.URL)
	}
	olivia, err := db.UserByName(context.Background(), "olivia")
	if err != nil || !olivia.IsAdmin {
		t.Fatalf("olivia after sign-in: %+v, %v (want an admin, by the groups claim)", olivia, err)
	}
	if !auditHas(t, db, "user.create", "olivia", "admin=true") {
		t.Error("the creation is not audited")
	}

	b.Follow("Settings")
	b.WaitText("You sign in with Gitea. You have no password here yet")
	b.Click("Regenerate Account Password")
	b.WaitText("Your new password")
	gitPW := b.Text("#password-secret code")
	if note := b.Text("#sso-note"); note != "You sign in with Gitea." {
		t.Errorf("after regenerating, the note says %q", note)
	}
	c := Cred{"olivia", gitPW}
	code, me := s.JSON("GET", "/api/v1/user", c, nil)
	if code != http.StatusOK || me["admin"] != true {
		t.Fatalf("GET /api/v1/user with the regenerated password = %d %v", code, me)
	}
	s.CreateRepo(c, "olivia", "notes", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(c, "olivia", "notes"))
	head := g.Commit(work, "README.md", "# notes\n", "first")
	g.Must(work, "push", "-q", "origin", "master")
	clone := g.Clone(s.RepoURL(c, "olivia", "notes"))
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != head {
		t.Fatalf("cloned HEAD %s, pushed %s", got, head)
	}
	if credWorks(t, s, Cred{"olivia", pw}) {
		t.Fatal("the Gitea password works here")
	}
}

// TestRegeneratePasswordAPI: POST /api/v1/user/password answers a new
// password once; the old one stops at once, the new one works for git and
// the API. Like creating a token it needs a password or an admin-scope
// token: a repo:write token cannot mint a password.
func TestRegeneratePasswordAPI(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	old := Cred{"vera", s.CreateUser("vera", false)}
	s.CreateRepo(old, "vera", "notes", "restricted")
	code, out := s.JSON("POST", "/api/v1/user/password", old, nil)
	pw, _ := out["password"].(string)
	if code != http.StatusOK || len(pw) < 32 {
		t.Fatalf("POST /api/v1/user/password = %d %v", code, out)
	}
	if credWorks(t, s, old) || lsRemote(t, s, old, "vera", "notes") {
		t.Fatal("the old password still works")
	}
	if !credWorks(t, s, Cred{"vera", pw}) || !lsRemote(t, s, Cred{"vera", pw}, "vera", "notes") {
		t.Fatal("the new password does not work for the API and git")
	}
	tok := Cred{"vera", s.Token("vera", "repo:read", "repo:write")}
	if code, out := s.JSON("POST", "/api/v1/user/password", tok, nil); code != http.StatusForbidden {
		t.Fatalf("with a repo:write token = %d %v, want 403", code, out)
	}
	if !credWorks(t, s, Cred{"vera", pw}) {
		t.Fatal("a refused regeneration changed the password")
	}
	if code, _ := s.JSON("POST", "/api/v1/user/password", Cred{}, nil); code != http.StatusUnauthorized {
		t.Fatalf("anonymous = %d, want 401", code)
	}
	admin := Cred{"admin", s.AdminPassword}
	adminTok := Cred{"admin", s.Token("admin", "admin")}
	if code, out := s.JSON("POST", "/api/v1/user/password", adminTok, nil); code != http.StatusOK || out["password"] == "" {
		t.Fatalf("with an admin token = %d %v", code, out)
	}
	if credWorks(t, s, admin) {
		t.Fatal("the admin's old password still works")
	}
}
