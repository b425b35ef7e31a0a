package web

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"gitserver/store"
	"gitserver/store/sqlite"
	"gitserver/ui/httpauth"
)

const xssReadme = "# Hello\n\nSome *text*.\n\n<script>document.title='pwned'</script>\n\n" +
	"<img src=x onerror=\"document.title='pwned'\">\n\n[click](javascript:alert(1))\n\n<a href=\"/ok\" onclick=\"alert(1)\">ok</a>\n"

type fakeGit map[string]Readme

func (g fakeGit) Readme(_ context.Context, r store.Repo) (Readme, error) {
	return g[r.FullName()], nil
}

// fakeFiles are every repository's files on its "main" branch (and on
// "feature/x"), for the fake's Tree and Blob.
var fakeFiles = map[string]string{
	"README.md":      "# Hello\n",
	"main.go":        "package main\n\nfunc main() {}\n",
	"cmd/tool/x.go":  "package tool\n",
	"bin/data":       "\x00\x01binary",
	"-dash/file.txt": "dash",
}

func fakeRef(ref string) bool { return ref == "main" || ref == "master" || ref == "feature/x" }

func (g fakeGit) Tree(_ context.Context, r store.Repo, ref, path string) ([]TreeEntry, error) {
	if !fakeRef(ref) || r.Name == "empty" {
		return nil, ErrNotFound
	}
	seen := map[string]bool{}
	var out []TreeEntry
	prefix := path
	if prefix != "" {
		prefix += "/"
	}
	for _, name := range sortedKeys(fakeFiles) {
		rest, ok := strings.CutPrefix(name, prefix)
		if !ok {
			continue
		}
		first, _, isDir := strings.Cut(rest, "/")
		if seen[first] {
			continue
		}
		seen[first] = true
		if isDir {
			out = append(out, TreeEntry{Name: first, Type: "tree", Mode: "040000", Size: -1})
		} else {
			out = append(out, TreeEntry{Name: first, Type: "blob", Mode: "100644", Size: int64(len(fakeFiles[name]))})
		}
	}
	if out == nil {
		return nil, ErrNotFound
	}
	return out, nil
}

func sortedKeys(m map[string]string) []string {
	var k []string
	for n := range m {
		k = append(k, n)
	}
	slices.Sort(k)
	return k
}

func (g fakeGit) Blob(_ context.Context, r store.Repo, ref, path string, max int64) (Blob, error) {
	c, ok := fakeFiles[path]
	if !fakeRef(ref) || !ok || r.Name == "empty" {
		return Blob{}, ErrNotFound
	}
	return Blob{Size: int64(len(c)), Content: []byte(c)}, nil
}

func (g fakeGit) Log(_ context.Context, r store.Repo, ref string, skip, n int) ([]Commit, error) {
	if !fakeRef(ref) || r.Name == "empty" {
		return nil, ErrNotFound
	}
	var out []Commit
	for i := skip; i < 120 && len(out) < n; i++ {
		out = append(out, Commit{Hash: fmt.Sprintf("%040d", 120-i), Author: "Alice", When: time.Unix(int64(1e9+i), 0), Subject: fmt.Sprintf("Commit <%d>", 120-i)})
	}
	return out, nil
}

func (g fakeGit) Refs(_ context.Context, r store.Repo) (Refs, error) {
	return Refs{Branches: []Ref{{Name: "feature/x", Hash: "ab", Subject: "wip"}, {Name: "main", Hash: "cd", Subject: "Commit <120>"}},
		Tags: []Ref{{Name: "v1.0", Hash: "ef", Subject: "Release"}}}, nil
}

// LogSince is one entry per call: the range asked for.
func (g fakeGit) LogSince(_ context.Context, r store.Repo, to, since string, limit int) ([]LogEntry, error) {
	return []LogEntry{{Commit: to, Short: to[:12], Author: "A U Thor", When: "2030-01-02 03:04 UTC", Subject: "log " + short(to) + " since " + short(since)}}, nil
}

type env struct {
	t     *testing.T
	store store.Store
	pages *Pages
	srv   *httptest.Server
	users map[string]store.Account
}

func newEnv(t *testing.T, anonymousRead bool) *env {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := &env{t: t, store: s, users: map[string]store.Account{}}
	for _, name := range []string{"alice", "bob", "carol"} {
		a, err := s.CreateUser(ctx, name, "password-"+name, false)
		if err != nil {
			t.Fatal(err)
		}
		e.users[name] = a
	}
	team, err := s.CreateOrg(ctx, "team", e.users["carol"].ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetMembership(ctx, team.ID, e.users["alice"].ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	e.users["team"] = team
	for _, r := range []struct {
		owner, name string
		vis         store.Visibility
	}{{"alice", "secret", store.Restricted}, {"alice", "empty", store.Restricted}, {"bob", "pub", store.Public}, {"team", "tools", store.Restricted}} {
		if _, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: e.users[r.owner].ID, Name: r.name, Visibility: r.vis}); err != nil {
			t.Fatal(err)
		}
	}
	git := fakeGit{
		"alice/secret": {Name: "README.md", Content: []byte(xssReadme)},
		"alice/empty":  {Empty: true},
		"bob/pub":      {Name: "README", Content: []byte("plain <b>text</b>")},
	}
	r := mux.NewRouter().SkipClean(true).UseEncodedPath()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		io.WriteString(w, "router-404")
	})
	r.PathPrefix("/api/v1").HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "api") })
	e.srv = httptest.NewUnstartedServer(r)
	e.srv.Start()
	t.Cleanup(e.srv.Close)
	e.pages = &Pages{Store: s, Auth: httpauth.New(s, httpauth.NewThrottle(5, time.Minute)), Git: git,
		BaseURL: "http://git.example.test", SSHURL: "ssh://git@git.example.test:2222", AnonymousRead: anonymousRead}
	e.pages.Register(r)
	return e
}

// client is a browser: a cookie jar, no redirects followed, and the
// Origin header a browser sends with a form post from the server's page.
type client struct {
	e   *env
	jar *cookiejar.Jar
	hc  *http.Client
}

func (e *env) client() *client {
	jar, _ := cookiejar.New(nil)
	return &client{e: e, jar: jar, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

type resp struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(method, path string, form url.Values, hdr map[string]string) resp {
	c.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.e.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.e.srv.URL)
	}
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return resp{res.StatusCode, res.Header, string(b)}
}

var csrfField = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, body string) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no CSRF field in:\n%s", body)
	}
	return m[1]
}

func (c *client) cookie(name string) string {
	u, _ := url.Parse(c.e.srv.URL)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == name {
			return ck.Value
		}
	}
	return ""
}

// signIn signs in through the form and returns the answer to the post.
func (c *client) signIn(name, password string) resp {
	c.e.t.Helper()
	form := c.do("GET", "/login", nil, nil)
	if form.status != 200 {
		c.e.t.Fatalf("GET /login = %d", form.status)
	}
	return c.do("POST", "/login", url.Values{"csrf": {csrfOf(c.e.t, form.body)}, "username": {name}, "password": {password}}, nil)
}

func (c *client) mustSignIn(name string) {
	c.e.t.Helper()
	if r := c.signIn(name, "password-"+name); r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		c.e.t.Fatalf("sign in as %s = %d %s\n%s", name, r.status, r.header.Get("Location"), r.body)
	}
}

func checkHeaders(t *testing.T, r resp) {
	t.Helper()
	for k, want := range map[string]string{
		"Content-Security-Policy": ContentSecurityPolicy,
		"X-Content-Type-Options":  "nosniff",
		"Referrer-Policy":         "same-origin",
	} {
		if got := r.header.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

func TestSignInAndCookieFlags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	if r := c.do("GET", "/", nil, nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("signed-out / = %d %q, want a redirect to /login", r.status, r.header.Get("Location"))
	}
	form := c.do("GET", "/login", nil, nil)
	checkHeaders(t, form)
	for _, want := range []string{`<label for="username">Username</label>`, `<label for="password">Password</label>`, `>Sign in</button>`} {
		if !strings.Contains(form.body, want) {
			t.Errorf("sign-in form lacks %q", want)
		}
	}
	if strings.Contains(form.body, "<script") || strings.Contains(form.body, "style=") {
		t.Error("the sign-in page has inline script or style")
	}

	// Wrong password, unknown user, disabled user: one message.
	if _, err := e.store.SetDisabled(context.Background(), "carol", true); err != nil {
		t.Fatal(err)
	}
	for _, cred := range [][2]string{{"alice", "wrong-password"}, {"nobody", "password-nobody"}, {"carol", "password-carol"}} {
		r := c.signIn(cred[0], cred[1])
		if r.status != http.StatusUnauthorized || !strings.Contains(r.body, "Incorrect username or password.") {
			t.Errorf("sign in %s/%s = %d\n%s", cred[0], cred[1], r.status, r.body)
		}
		if c.cookie(sessionCookie) != "" {
			t.Fatal("a failed sign-in set a session cookie")
		}
	}

	r := c.signIn("alice", "password-alice")
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/" {
		t.Fatalf("sign in = %d %q", r.status, r.header.Get("Location"))
	}
	var sc *http.Cookie
	for _, ck := range (&http.Response{Header: r.header}).Cookies() {
		if ck.Name == sessionCookie {
			sc = ck
		}
	}
	if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Secure || sc.Path != "/" || len(sc.Value) != 64 {
		t.Fatalf("session cookie = %+v", sc)
	}
	home := c.do("GET", "/", nil, nil)
	checkHeaders(t, home)
	if home.status != 200 || !strings.Contains(home.body, `href="/alice/secret"`) || !strings.Contains(home.body, `href="/alice/empty"`) {
		t.Fatalf("home = %d\n%s", home.status, home.body)
	}
	if !strings.Contains(home.body, `href="/team/tools"`) {
		t.Error("home lacks the repository of the user's organisation")
	}
	if strings.Contains(home.body, "bob/pub") {
		t.Error("home lists another user's repository as the user's")
	}
	bob := e.client()
	bob.mustSignIn("bob")
	if r := bob.do("GET", "/", nil, nil); strings.Contains(r.body, "team/tools") || strings.Contains(r.body, "alice/") || !strings.Contains(r.body, `href="/bob/pub"`) {
		t.Errorf("bob's home:\n%s", r.body)
	}
	if r := bob.do("GET", "/team/tools", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("a non-member reads an organisation's restricted repository: %d", r.status)
	}
	if r := c.do("GET", "/team/tools", nil, nil); r.status != 200 {
		t.Errorf("a member cannot read the organisation's repository: %d", r.status)
	}
	if r := c.do("GET", "/login", nil, nil); r.status != http.StatusSeeOther {
		t.Errorf("GET /login signed in = %d, want a redirect", r.status)
	}
}

func TestSecureCookieBehindHTTPS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	e.pages.BaseURL = "https://git.example.test"
	r := mux.NewRouter()
	e.pages.Register(r)
	rec := httptest.NewRecorder()
	r.ServeHTTP(rec, httptest.NewRequest("GET", "https://git.example.test/login", nil))
	var login *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		login = ck
	}
	if login == nil || login.Name != "__Host-"+loginCookie || !login.Secure || !login.HttpOnly {
		t.Fatalf("login cookie = %+v", login)
	}
	form := url.Values{"csrf": {csrfOf(t, rec.Body.String())}, "username": {"alice"}, "password": {"password-alice"}}
	req := httptest.NewRequest("POST", "https://git.example.test/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", "https://git.example.test")
	req.AddCookie(login)
	rec = httptest.NewRecorder()
	r.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("sign in = %d\n%s", rec.Code, rec.Body)
	}
	var sc *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == "__Host-"+sessionCookie {
			sc = ck
		}
	}
	if sc == nil || !sc.Secure || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode {
		t.Fatalf("session cookie behind https = %+v", sc)
	}
}

func TestCSRF(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	form := c.do("GET", "/login", nil, nil)
	token := csrfOf(t, form.body)
	// A second sign-in form in the same browser keeps the first one valid.
	if second := c.do("GET", "/login", nil, nil); csrfOf(t, second.body) != token {
		t.Error("opening a second sign-in form invalidated the first")
	}
	good := url.Values{"csrf": {token}, "username": {"alice"}, "password": {"password-alice"}}
	noToken := url.Values{"username": {"alice"}, "password": {"password-alice"}}
	refused := func(what string, r resp) {
		t.Helper()
		if r.status != http.StatusForbidden || !strings.Contains(r.body, "Form refused") {
			t.Errorf("%s = %d, want 403 Form refused\n%s", what, r.status, r.body)
		}
		checkHeaders(t, r)
	}
	refused("sign-in without a token", c.do("POST", "/login", noToken, nil))
	refused("sign-in with another token", c.do("POST", "/login", url.Values{"csrf": {strings.Repeat("0", 64)}, "username": {"alice"}, "password": {"password-alice"}}, nil))
	// Another site on the same host (another port): SameSite would send
	// the cookies; the Origin check refuses.
	refused("sign-in from another origin", c.do("POST", "/login", good, map[string]string{"Origin": "http://127.0.0.1:1"}))
	refused("sign-in with neither Origin nor Referer", c.do("POST", "/login", good, map[string]string{"Origin": ""}))
	if r := c.do("POST", "/login", good, map[string]string{"Origin": "", "Referer": e.srv.URL + "/login"}); r.status != http.StatusSeeOther {
		t.Fatalf("sign-in with a same-origin Referer = %d", r.status)
	}
	// A cookie from another client does not match this token.
	other := e.client()
	other.do("GET", "/login", nil, nil)
	if r := other.do("POST", "/login", good, nil); r.status != http.StatusForbidden {
		t.Errorf("sign-in with another browser's token = %d, want 403", r.status)
	}

	home := c.do("GET", "/", nil, nil)
	tok := csrfOf(t, home.body)
	refused("sign-out without a token", c.do("POST", "/logout", url.Values{}, nil))
	refused("sign-out from another origin", c.do("POST", "/logout", url.Values{"csrf": {tok}}, map[string]string{"Origin": "http://evil.example"}))
	if r := c.do("GET", "/", nil, nil); r.status != 200 {
		t.Fatalf("a refused sign-out ended the session: %d", r.status)
	}
	if r := c.do("POST", "/logout", url.Values{"csrf": {tok}}, nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("sign-out = %d %q", r.status, r.header.Get("Location"))
	}
	if r := c.do("GET", "/", nil, nil); r.status != http.StatusSeeOther {
		t.Fatalf("after sign-out / = %d, want a redirect", r.status)
	}
}

func TestSessionFixation(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	// The attacker's own session (or any id they know) planted in the
	// victim's browser before sign-in.
	planted, _, err := e.store.CreateSession(ctx, e.users["bob"].ID)
	if err != nil {
		t.Fatal(err)
	}
	c := e.client()
	form := c.do("GET", "/login", nil, nil)
	u, _ := url.Parse(e.srv.URL)
	c.jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: planted, Path: "/"}})
	if r := c.do("POST", "/login", url.Values{"csrf": {csrfOf(t, form.body)}, "username": {"alice"}, "password": {"password-alice"}}, nil); r.status != http.StatusSeeOther {
		t.Fatalf("sign in = %d", r.status)
	}
	got := c.cookie(sessionCookie)
	if got == "" || got == planted {
		t.Fatalf("session id not rotated at sign-in: %q", got)
	}
	if _, _, err := e.store.SessionByID(ctx, planted); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the planted session still works: %v", err)
	}
	if a, _, err := e.store.SessionByID(ctx, got); err != nil || a.Name != "alice" {
		t.Errorf("new session = %v, %v", a.Name, err)
	}
	// A made-up id is not a session.
	c2 := e.client()
	c2.jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: strings.Repeat("ab", 32), Path: "/"}})
	if r := c2.do("GET", "/", nil, nil); r.status != http.StatusSeeOther {
		t.Errorf("made-up session id: / = %d", r.status)
	}
}

func TestSessionEndsOnDisableAndPasswordChange(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	c := e.client()
	c.mustSignIn("carol")
	if r := c.do("GET", "/", nil, nil); r.status != 200 {
		t.Fatalf("/ = %d", r.status)
	}
	if _, err := e.store.SetDisabled(ctx, "carol", true); err != nil {
		t.Fatal(err)
	}
	if r := c.do("GET", "/", nil, nil); r.status != http.StatusSeeOther {
		t.Fatalf("a disabled user's session still works: %d", r.status)
	}
	if _, err := e.store.SetDisabled(ctx, "carol", false); err != nil {
		t.Fatal(err)
	}
	c.mustSignIn("carol")
	if err := e.store.SetPassword(ctx, "carol", "another-password-1"); err != nil {
		t.Fatal(err)
	}
	if r := c.do("GET", "/", nil, nil); r.status != http.StatusSeeOther {
		t.Fatalf("a session survived a password change: %d", r.status)
	}
}

func TestRepositoryAccess(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	alice, bob, anon := e.client(), e.client(), e.client()
	alice.mustSignIn("alice")
	bob.mustSignIn("bob")
	missing := bob.do("GET", "/alice/nothing-here", nil, nil)
	if missing.status != http.StatusNotFound {
		t.Fatalf("missing repository = %d", missing.status)
	}
	for _, tc := range []struct {
		c    *client
		path string
		want int
	}{
		{alice, "/alice/secret", 200}, {alice, "/bob/pub", 200}, {bob, "/bob/pub", 200},
		{bob, "/alice/secret", 404}, {anon, "/alice/secret", 404}, {anon, "/bob/pub", 404},
		{alice, "/ALICE/Secret", 200},
	} {
		r := tc.c.do("GET", tc.path, nil, nil)
		if r.status != tc.want {
			t.Errorf("GET %s = %d, want %d", tc.path, r.status, tc.want)
		}
		checkHeaders(t, r)
		if tc.want == 404 && tc.c == bob && r.body != strings.Replace(missing.body, "nothing-here", "secret", -1) && strings.Contains(r.body, "secret") {
			t.Errorf("the 404 of a restricted repository differs from a missing one's")
		}
	}

	// With --anonymous-read, anonymous visitors see public repositories.
	e2 := newEnv(t, true)
	anon2 := e2.client()
	if r := anon2.do("GET", "/bob/pub", nil, nil); r.status != 200 || !strings.Contains(r.body, "plain &lt;b&gt;text&lt;/b&gt;") {
		t.Errorf("anonymous read of a public repository = %d\n%s", r.status, r.body)
	}
	if r := anon2.do("GET", "/alice/secret", nil, nil); r.status != 404 {
		t.Errorf("anonymous read of a restricted repository = %d", r.status)
	}
}

func TestRepositoryHome(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	c.mustSignIn("alice")
	r := c.do("GET", "/alice/secret", nil, nil)
	if r.status != 200 {
		t.Fatalf("= %d", r.status)
	}
	for _, want := range []string{
		`value="http://git.example.test/git/alice/secret.git"`, `value="ssh://git@git.example.test:2222/alice/secret.git"`,
		`<code>master</code>`, `<h1>Hello</h1>`, `<em>text</em>`, `<h2 class="file">README.md</h2>`,
	} {
		if !strings.Contains(r.body, want) {
			t.Errorf("repository home lacks %q", want)
		}
	}
	// The page's own script (the copy buttons, a static file) aside, no
	// script, handler or javascript: URL reached it.
	lower := strings.ToLower(strings.ReplaceAll(r.body, `<script src="/-/static/copy.js" defer></script>`, ""))
	for _, bad := range []string{"<script", "onerror", "onclick", "javascript:"} {
		if strings.Contains(lower, bad) {
			t.Errorf("the README's %q reached the page", bad)
		}
	}
	empty := c.do("GET", "/alice/empty", nil, nil)
	if !strings.Contains(empty.body, "This repository is empty") || !strings.Contains(empty.body, "git push -u origin master") ||
		!strings.Contains(empty.body, "git remote add origin http://git.example.test/git/alice/empty.git") {
		t.Errorf("empty repository page:\n%s", empty.body)
	}
}

// TestAdminAccountHasPages: the first account is named admin; its
// repositories' pages are /admin/NAME (no route reserves that segment).
func TestAdminAccountHasPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	admin, err := e.store.CreateUser(ctx, "admin", "password-admin", true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.CreateRepo(ctx, store.NewRepo{OwnerID: admin.ID, Name: "hello", Visibility: store.Restricted}); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.mustSignIn("admin")
	if r := c.do("GET", "/admin/hello", nil, nil); r.status != 200 || !strings.Contains(r.body, "/git/admin/hello.git") {
		t.Fatalf("GET /admin/hello = %d:\n%s", r.status, r.body)
	}
}

func TestReservedPathsAreNotPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	c.mustSignIn("alice")
	for _, p := range []string{"/api/foo", "/API/foo", "/git/x", "/hooks/scm", "/scm/1", "/healthz/x", "/readyz/x", "/metrics/x", "/login/x", "/-/x", "/alice/secret/", "/alice/secret/x", "/alice/..", "/alice/%2e%2e", "/.x/y"} {
		if r := c.do("GET", p, nil, nil); r.status != 404 || r.body != "router-404" {
			t.Errorf("GET %s = %d %q, want the router's 404", p, r.status, r.body)
		}
	}
	if r := c.do("GET", "/api/v1/x", nil, nil); r.body != "api" {
		t.Errorf("/api/v1 shadowed: %q", r.body)
	}
	if r := c.do("GET", "/-/static/style.css", nil, nil); r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/css") {
		t.Errorf("style.css = %d %q", r.status, r.header.Get("Content-Type"))
	}
	if r := c.do("GET", "/-/static/", nil, nil); r.status != 404 {
		t.Errorf("static directory listing = %d", r.status)
	}
}

func TestSignInThrottled(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	for i := 0; i < 5; i++ {
		if r := c.signIn("alice", "wrong-password"); r.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d = %d", i, r.status)
		}
	}
	r := c.signIn("alice", "password-alice")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" || !strings.Contains(r.body, "Too many failed sign-ins") {
		t.Fatalf("throttled sign-in = %d %q\n%s", r.status, r.header.Get("Retry-After"), r.body)
	}
	if c.cookie(sessionCookie) != "" {
		t.Fatal("a throttled sign-in signed in")
	}
}
