package main

import (
	"io"
	"net/http"
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
	var scripts int
	b.Eval(`document.scripts.length`, &scripts)
	if scripts != 0 {
		t.Fatalf("the page has %d scripts", scripts)
	}

	b.Click("Sign out")
	b.WaitText("Username")
	if loc := b.Location(); loc != s.URL+"/login" {
		t.Fatalf("after sign-out at %s", loc)
	}
}
