package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// versionsOf lists owner/name's versions through the API.
func versionsOf(t *testing.T, s *TestServer, c Cred, owner, name string) []map[string]any {
	t.Helper()
	code, raw := s.Do("GET", "/api/v1/repos/"+owner+"/"+name+"/versions", c, nil)
	var vs []map[string]any
	if err := json.Unmarshal(raw, &vs); code != http.StatusOK || err != nil {
		t.Fatalf("list versions: %d %s", code, raw)
	}
	return vs
}

// TestPublishInBrowser: a person opens the Builds tab, clicks Publish on a
// succeeded build, picks the bump in the modal, writes release notes,
// submits, and sees the version on the versions page (issue 13).
func TestPublishInBrowser(t *testing.T) {
	t.Parallel()
	b := NewBrowser(t)
	s := StartServer(t)
	worker := s.Token("admin", "builds")
	pw := s.CreateUser("erin", false)
	erin := Cred{"erin", pw}
	repo := s.CreateRepo(erin, "erin", "app", "restricted")
	branch, _ := repo["default_branch"].(string)
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(erin, "erin", "app"))
	if branch != "" && branch != "master" {
		g.Must(work, "checkout", "-q", "-b", branch)
	} else {
		branch = "master"
	}
	c1 := g.Commit(work, "main.go", "package main\n", "first")
	g.Must(work, "push", "-q", "origin", branch)
	built := runBuild(t, s, worker, c1, "succeeded")
	id := jsonNum(t, built, "id")

	signInBrowser(b, s, "erin", pw)
	b.Open(s.URL + "/erin/app")
	b.Follow("Builds")
	b.WaitText("succeeded")
	if loc := b.Location(); loc != s.URL+"/erin/app/builds" {
		t.Fatalf("Builds led to %s", loc)
	}
	b.Follow("Publish")
	b.WaitText("Release notes")
	var open bool
	b.Eval(`document.querySelector('dialog').open`, &open)
	if !open {
		t.Fatal("the Publish modal is not open")
	}
	var choices string
	b.Eval(`Array.from(document.querySelectorAll('dialog label')).map(l => l.textContent.trim()).join('|')`, &choices)
	for _, want := range []string{"major → 1.0.0", "minor → 0.1.0", "patch → 0.0.1"} {
		if !strings.Contains(choices, want) {
			t.Errorf("the modal's choices %q lack %q", choices, want)
		}
	}
	if log := b.Text("dialog ul.commits"); !strings.Contains(log, c1[:12]) || !strings.Contains(log, "first") {
		t.Errorf("the modal's commit log = %q, want %s first", log, c1[:12])
	}
	b.run("choose minor", chromedp.Click(`//input[@name='bump' and @value='minor']`, chromedp.BySearch))
	b.Fill("Release notes", "The first release.")
	b.Click("Publish")
	b.WaitText("Published version 0.1.0.")
	if loc := b.Location(); !strings.HasPrefix(loc, s.URL+"/erin/app/versions") {
		t.Fatalf("after Publish at %s", loc)
	}
	b.WaitText("The first release.")

	vs := versionsOf(t, s, erin, "erin", "app")
	if len(vs) != 1 || jsonStr(vs[0], "version") != "0.1.0" || jsonStr(vs[0], "commit") != c1 ||
		jsonNum(t, vs[0], "build_id") != id || jsonStr(vs[0], "release_notes") != "The first release." || jsonStr(vs[0], "published_by") != "erin" {
		t.Fatalf("versions: %v", vs)
	}

	// A form post without the CSRF token publishes nothing; another user
	// gets 404 on the pages.
	c2 := g.Commit(work, "main.go", "package main // 2\n", "second")
	g.Must(work, "push", "-q", "origin", branch)
	b2 := runBuild(t, s, worker, c2, "succeeded")
	wc := newWebClient(t, s)
	wc.signIn("erin", pw)
	if code, _, _ := wc.do("POST", fmt.Sprintf("/erin/app/builds/%d/publish", jsonNum(t, b2, "id")), url.Values{"bump": {"major"}}); code != http.StatusForbidden {
		t.Errorf("publish without the CSRF token = %d, want 403", code)
	}
	other := newWebClient(t, s)
	other.signIn("frank", s.CreateUser("frank", false))
	for _, p := range []string{"/erin/app/builds", "/erin/app/versions"} {
		if code, _, _ := other.do("GET", p, nil); code != http.StatusNotFound {
			t.Errorf("another user: GET %s = %d, want 404", p, code)
		}
	}
	if vs := versionsOf(t, s, erin, "erin", "app"); len(vs) != 1 {
		t.Errorf("versions after the refused post: %v", vs)
	}
}
