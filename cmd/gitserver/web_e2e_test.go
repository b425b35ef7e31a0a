package main

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestWebPagesInBrowser: a person signs in through the form (by its visible
// labels), lands on their repositories, opens one and reads its README,
// whose <script> and onerror never run (issue 13).
func TestWebPagesInBrowser(t *testing.T) {
	t.Parallel()
	b := NewBrowser(t)
	s := StartServer(t)
	pw := s.CreateUser("dana", false)
	dana := Cred{"dana", pw}
	s.CreateRepo(dana, "dana", "notes", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(dana, "dana", "notes"))
	g.Commit(work, "README.md", "# Dana's notes\n\nHello from the *README*.\n\n"+
		"<script>document.title='pwned'</script>\n\n<img src=x onerror=\"document.title='pwned'\">\n", "readme")
	g.Must(work, "push", "-q", "origin", "master")

	// The page as served: nothing executable got through.
	res, err := http.Get(s.URL + "/login")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if csp := res.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
		t.Fatalf("CSP = %q", csp)
	}

	b.Open(s.URL + "/")
	if loc := b.Location(); loc != s.URL+"/login" {
		t.Fatalf("signed out, / led to %s", loc)
	}
	b.Fill("Username", "dana")
	b.Fill("Password", pw)
	b.Click("Sign in")
	b.WaitText("Your repositories")
	if loc := b.Location(); loc != s.URL+"/" {
		t.Fatalf("after sign-in at %s", loc)
	}
	b.WaitText("Your repositories")
	b.Follow("dana/notes")
	b.WaitText("Hello from the README.")
	if loc := b.Location(); loc != s.URL+"/dana/notes" {
		t.Fatalf("repository link led to %s", loc)
	}
	b.WaitText("Hello from the README.")
	if h := b.Text(".markdown h1"); h != "Dana's notes" {
		t.Fatalf("README heading = %q", h)
	}
	var imgs int
	b.Eval(`document.querySelectorAll('.markdown img').length`, &imgs)
	if imgs != 1 {
		t.Fatalf("README images = %d", imgs)
	}
	// Give a broken image's onerror time to have run, had it survived.
	var loaded bool
	b.Eval(`new Promise(r => { const i = document.querySelector('.markdown img'); if (i.complete) r(true); else { i.addEventListener('error', () => r(true)); i.addEventListener('load', () => r(true)); } })`, &loaded)
	if title := b.Title(); title != "dana/notes · gitserver" {
		t.Fatalf("document.title = %q: the README ran script", title)
	}
	var scripts, handlers int
	// Scripts other than the page's own static files (the copy buttons).
	b.Eval(`Array.from(document.scripts).filter(s => !s.src.startsWith(location.origin + '/-/static/')).length`, &scripts)
	b.Eval(`document.querySelectorAll('[onerror], [onload], [onclick]').length`, &handlers)
	if scripts != 0 || handlers != 0 {
		t.Fatalf("the page has %d scripts and %d inline event handlers (the CSP would block them; the sanitiser must remove them)", scripts, handlers)
	}

	b.Click("Sign out")
	b.WaitText("Username")
	if loc := b.Location(); loc != s.URL+"/login" {
		t.Fatalf("after sign-out at %s", loc)
	}
}

// webClient is a browser without a browser: a cookie jar, redirects not
// followed, the Origin a form post from the server's own page carries.
type webClient struct {
	t   *testing.T
	s   *TestServer
	hc  *http.Client
	jar *cookiejar.Jar
}

func newWebClient(t *testing.T, s *TestServer) *webClient {
	jar, _ := cookiejar.New(nil)
	return &webClient{t: t, s: s, jar: jar, hc: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	}}}
}

func (c *webClient) do(method, path string, form url.Values) (int, string, http.Header) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.s.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", c.s.URL)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b), res.Header
}

var webCSRF = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func (c *webClient) signIn(name, password string) {
	c.t.Helper()
	_, form, _ := c.do("GET", "/login", nil)
	m := webCSRF.FindStringSubmatch(form)
	if m == nil {
		c.t.Fatalf("no CSRF token on /login:\n%s", form)
	}
	if code, body, h := c.do("POST", "/login", url.Values{"csrf": {m[1]}, "username": {name}, "password": {password}}); code != http.StatusSeeOther || h.Get("Location") != "/" {
		c.t.Fatalf("sign in as %s = %d\n%s", name, code, body)
	}
}

// TestWebPagesOverHTTP: the pages against the real server and real
// repositories: a README's script removed from the served HTML, an empty
// repository's push instructions, another user's 404, and a session that
// ends at once when its account is disabled or its password changed.
func TestWebPagesOverHTTP(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	erin := Cred{"erin", s.CreateUser("erin", false)}
	frank := Cred{"frank", s.CreateUser("frank", false)}
	s.CreateRepo(erin, "erin", "site", "restricted")
	s.CreateRepo(erin, "erin", "blank", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(erin, "erin", "site"))
	g.Commit(work, "readme.MD", "# Site\n\n<script>alert(1)</script><img src=x onerror=alert(1)>\n", "readme")
	g.Must(work, "push", "-q", "origin", "master")

	ce, cf := newWebClient(t, s), newWebClient(t, s)
	ce.signIn("erin", erin.Secret)
	cf.signIn("frank", frank.Secret)

	code, body, _ := ce.do("GET", "/erin/site", nil)
	if code != 200 || !strings.Contains(body, "<h1>Site</h1>") || !strings.Contains(body, "readme.MD") {
		t.Fatalf("repository home = %d\n%s", code, body)
	}
	// The page's own script (the copy buttons, a static file) aside.
	if own := strings.ToLower(strings.ReplaceAll(body, `<script src="/-/static/copy.js" defer></script>`, "")); strings.Contains(own, "<script") || strings.Contains(own, "onerror") {
		t.Fatalf("the README's script reached the page:\n%s", body)
	}
	if !strings.Contains(body, "/git/erin/site.git") || !strings.Contains(body, "ssh://git@") {
		t.Errorf("clone URLs missing:\n%s", body)
	}
	if code, body, _ := ce.do("GET", "/erin/blank", nil); code != 200 || !strings.Contains(body, "This repository is empty") {
		t.Errorf("empty repository = %d\n%s", code, body)
	}
	for _, p := range []string{"/erin/site", "/erin/blank", "/erin/none"} {
		if code, _, _ := cf.do("GET", p, nil); code != http.StatusNotFound {
			t.Errorf("another user: GET %s = %d, want 404", p, code)
		}
	}
	if code, _, _ := ce.do("GET", "/healthz", nil); code != 200 {
		t.Errorf("/healthz = %d", code)
	}

	// Disabled: the session stops working at once.
	if _, err := s.Admin("", "user", "disable", "frank"); err != nil {
		t.Fatal(err)
	}
	if code, _, h := cf.do("GET", "/", nil); code != http.StatusSeeOther || h.Get("Location") != "/login" {
		t.Errorf("a disabled user's session: / = %d", code)
	}
	// A password change ends the sessions.
	if _, err := s.Admin("erin-new-password-1\n", "user", "passwd", "erin", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := ce.do("GET", "/", nil); code != http.StatusSeeOther {
		t.Errorf("a session survived a password change: / = %d", code)
	}
}

// TestBrowsePagesOverHTTP: the browsing pages on a real repository after a
// real push: the tree lists the pushed files, the blob shows (highlighted)
// content, the log the commit message; bad refs and paths and another
// user get 404.
func TestBrowsePagesOverHTTP(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	gina := Cred{"gina", s.CreateUser("gina", false)}
	hal := Cred{"hal", s.CreateUser("hal", false)}
	s.CreateRepo(gina, "gina", "code", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(gina, "gina", "code"))
	g.Commit(work, "main.go", "package main\n\nfunc main() { println(\"<hi>\") }\n", "Add the main program")
	g.Commit(work, "docs/guide.txt", "a guide\n", "Write the guide")
	g.Commit(work, "data.bin", "\x00\x01\x02binary", "Add data")
	g.Commit(work, "big.txt", strings.Repeat("x", 1<<20+1), "Add a large file")
	g.Must(work, "tag", "v0.1")
	g.Must(work, "push", "-q", "origin", "master", "v0.1")

	c, other := newWebClient(t, s), newWebClient(t, s)
	c.signIn("gina", gina.Secret)
	other.signIn("hal", hal.Secret)
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"/gina/code", []string{`href="/gina/code/tree/master/docs"`, `href="/gina/code/blob/master/main.go"`, `href="/gina/code/commits/master"`}},
		{"/gina/code/tree/master", []string{`<a href="/gina/code/tree/master/docs">docs/</a>`, `<a href="/gina/code/blob/master/main.go">main.go</a>`, `<td class="size">46</td>`}},
		{"/gina/code/tree/v0.1/docs", []string{`<a href="/gina/code/blob/v0.1/docs/guide.txt">guide.txt</a>`}},
		{"/gina/code/blob/master/main.go", []string{`<span class="kn">package</span>`, `&lt;hi&gt;`}},
		{"/gina/code/blob/master/docs/guide.txt", []string{"a guide"}},
		{"/gina/code/blob/master/data.bin", []string{"Binary file, 9 bytes."}},
		{"/gina/code/blob/master/big.txt", []string{"Large file, 1048577 bytes"}},
		{"/gina/code/commits/master", []string{"Add the main program", "Write the guide"}},
		{"/gina/code/branches", []string{`href="/gina/code/tree/master"`, "Add a large file"}},
		{"/gina/code/tags", []string{`href="/gina/code/tree/v0.1"`}},
	} {
		code, body, _ := c.do("GET", tc.path, nil)
		if code != 200 {
			t.Errorf("GET %s = %d\n%s", tc.path, code, body)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("GET %s lacks %q\n%s", tc.path, w, body)
			}
		}
		if code, _, _ := other.do("GET", tc.path, nil); code != http.StatusNotFound {
			t.Errorf("another user: GET %s = %d, want 404", tc.path, code)
		}
	}
	for _, p := range []string{
		"/gina/code/tree/nope", "/gina/code/tree/master/nope", "/gina/code/blob/master/docs",
		"/gina/code/tree/master/%2e%2e/x", "/gina/code/tree/-foo", "/gina/code/tree/--output=x",
		"/gina/code/commits/master%5E", "/gina/code/blob/master/main.go/x",
	} {
		if code, body, _ := c.do("GET", p, nil); code != http.StatusNotFound {
			t.Errorf("GET %s = %d, want 404\n%s", p, code, body)
		}
	}
}
