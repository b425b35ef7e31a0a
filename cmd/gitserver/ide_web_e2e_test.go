package main

// End-to-end tests of the Web IDE (issue 13, docs/api.md §11): a person
// creates, edits, renames and deletes files in a real browser, each commit
// checked with a real git clone and the builds API; stale parents; access.

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// ideRepo is a hosted repository the IDE tests commit to, with a work tree
// that follows it.
type ideRepo struct {
	t      *testing.T
	s      *TestServer
	cred   Cred
	owner  string
	name   string
	branch string
	g      *GitEnv
	work   string
}

func newIDERepo(t *testing.T, s *TestServer, c Cred, name, visibility string) *ideRepo {
	t.Helper()
	repo := s.CreateRepo(c, c.User, name, visibility)
	r := &ideRepo{t: t, s: s, cred: c, owner: c.User, name: name, branch: jsonStr(repo, "default_branch"), g: NewGitEnv(t)}
	if r.branch == "" {
		t.Fatalf("no default branch in %v", repo)
	}
	return r
}

// pull clones the repository (first call) or pulls it, and returns the
// head commit.
func (r *ideRepo) pull() string {
	r.t.Helper()
	if r.work == "" {
		r.work = r.g.Clone(r.s.RepoURL(r.cred, r.owner, r.name))
	} else {
		r.g.Must(r.work, "pull", "-q", "--ff-only", "origin", r.branch)
	}
	return strings.TrimSpace(r.g.Must(r.work, "rev-parse", "HEAD"))
}

func (r *ideRepo) file(path string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(r.work, path))
	return string(b), err == nil
}

// last is the head commit's "author name|author email|committer name|subject".
func (r *ideRepo) last() string {
	return strings.TrimSpace(r.g.Must(r.work, "log", "-1", "--format=%an|%ae|%cn|%s"))
}

// checkBuilds checks that every commit in commits has exactly one build and
// that there are no others.
func (r *ideRepo) checkBuilds(commits ...string) {
	r.t.Helper()
	builds := r.s.Builds(r.cred, r.owner, r.name)
	per := map[string]int{}
	for _, b := range builds {
		per[jsonStr(b, "commit")]++
	}
	for _, c := range commits {
		if per[c] != 1 {
			r.t.Errorf("commit %s has %d builds, want 1 (builds: %v)", c, per[c], builds)
		}
	}
	if len(builds) != len(commits) {
		r.t.Errorf("%d builds, want %d: %v", len(builds), len(commits), builds)
	}
}

// editorText is the CodeMirror editor's text.
func editorText(b *Browser) string {
	b.t.Helper()
	b.run("wait for the editor", chromedp.WaitVisible(".editor", chromedp.ByQuery))
	var s string
	b.Eval(`document.querySelector('#content').editorView.state.doc.toString()`, &s)
	return s
}

// pressEnter presses Enter as a key, without the text "\r" that
// chromedp's KeyEvent also sends (which the editor would insert as a
// second line break).
var pressEnter = chromedp.ActionFunc(func(ctx context.Context) error {
	ev := func(t input.KeyType) *input.DispatchKeyEventParams {
		return input.DispatchKeyEvent(t).WithKey("Enter").WithCode("Enter").WithWindowsVirtualKeyCode(13).WithNativeVirtualKeyCode(13)
	}
	if err := ev(input.KeyRawDown).Do(ctx); err != nil {
		return err
	}
	return ev(input.KeyUp).Do(ctx)
})

// typeInEditor replaces the CodeMirror editor's text by typing text, as a
// person does (select all, type).
func typeInEditor(b *Browser, text string) {
	b.t.Helper()
	// The label "File content" leads to the editor (the textarea it names
	// is hidden once upgraded).
	actions := []chromedp.Action{chromedp.WaitVisible(".editor", chromedp.ByQuery),
		chromedp.Click(`//label[normalize-space(.)='File content']`, chromedp.BySearch),
		chromedp.KeyEvent("a", chromedp.KeyModifiers(input.ModifierCtrl))}
	for i, line := range strings.Split(text, "\n") {
		if i > 0 {
			actions = append(actions, pressEnter)
		}
		if line != "" {
			actions = append(actions, chromedp.KeyEvent(line))
		}
	}
	b.run("type in the editor", actions...)
	if got := editorText(b); got != text {
		b.t.Fatalf("the editor holds %q after typing %q", got, text)
	}
}

// TestWebIDEInBrowser: a person creates a file (in a folder) with New file,
// edits it, renames it and deletes it in the Web IDE, each time with a
// commit message; each commit is checked with a real git clone (content,
// message, author) and has exactly one build.
func TestWebIDEInBrowser(t *testing.T) {
	t.Parallel()
	b := NewBrowser(t)
	s := StartServer(t)
	pw := s.CreateUser("erin", false)
	r := newIDERepo(t, s, Cred{"erin", pw}, "ide", "restricted")
	signInBrowser(b, s, "erin", pw)

	// New file, from the repository's page (empty yet).
	b.Open(s.URL + "/erin/ide")
	b.Follow("New file")
	b.WaitText("New file on")
	// The bundle upgraded the textarea to CodeMirror, styled (the CSP lets
	// both through).
	var display string
	b.run("wait for the editor", chromedp.WaitVisible(".editor", chromedp.ByQuery))
	b.Eval(`getComputedStyle(document.querySelector('.editor').shadowRoot.querySelector('.cm-editor')).display`, &display)
	if display != "flex" {
		t.Fatalf("the editor is not a styled CodeMirror editor (display %q)", display)
	}
	b.Fill("File name", "docs/hello.txt")
	typeInEditor(b, "Hello from the IDE\nsecond line\n")
	b.Fill("Commit message", "Add the greeting")
	b.Click("Commit")
	b.WaitText("Builds")
	if loc := b.Location(); loc != s.URL+"/erin/ide/builds" {
		t.Fatalf("after Commit at %s", loc)
	}
	c1 := r.pull()
	if got, _ := r.file("docs/hello.txt"); got != "Hello from the IDE\nsecond line\n" {
		t.Fatalf("docs/hello.txt = %q", got)
	}
	if got := r.last(); !regexp.MustCompile(`^erin\|erin@users\.noreply\.[^|]+\|erin\|Add the greeting$`).MatchString(got) {
		t.Fatalf("first commit: %q", got)
	}
	b.WaitText(c1[:12]) // the Builds tab shows the queued build
	r.checkBuilds(c1)

	// Edit: the tree's file links are named by the file name.
	b.Open(s.URL + "/erin/ide/edit")
	b.Follow("hello.txt")
	b.WaitText("docs/hello.txt")
	if got := editorText(b); got != "Hello from the IDE\nsecond line\n" {
		t.Fatalf("the editor opened with %q", got)
	}
	typeInEditor(b, "Hello, edited\n")
	b.Fill("Commit message", "Edit the greeting")
	b.Click("Commit")
	b.WaitText("Builds")
	c2 := r.pull()
	if got, _ := r.file("docs/hello.txt"); got != "Hello, edited\n" {
		t.Fatalf("after edit: %q", got)
	}
	if got := r.last(); !strings.HasSuffix(got, "|Edit the greeting") || !strings.HasPrefix(got, "erin|") {
		t.Fatalf("edit commit: %q", got)
	}
	r.checkBuilds(c1, c2)

	// Rename: a new name in the File name field.
	b.Open(s.URL + "/erin/ide/edit/docs/hello.txt")
	b.run("clear the name", chromedp.Clear("#name", chromedp.ByQuery))
	b.Fill("File name", "greeting/hello.md")
	b.Fill("Commit message", "Move the greeting")
	b.Click("Commit")
	b.WaitText("Builds")
	c3 := r.pull()
	if got, ok := r.file("greeting/hello.md"); !ok || got != "Hello, edited\n" {
		t.Fatalf("after rename: %q %v", got, ok)
	}
	if _, err := os.Stat(filepath.Join(r.work, "docs")); !os.IsNotExist(err) {
		t.Fatalf("docs/ is still there after its only file moved: %v", err)
	}
	if got := r.last(); !strings.HasSuffix(got, "|Move the greeting") {
		t.Fatalf("rename commit: %q", got)
	}
	r.checkBuilds(c1, c2, c3)

	// Delete.
	b.Open(s.URL + "/erin/ide/edit")
	b.Follow("hello.md")
	b.run("open Delete", chromedp.Click(`//summary[normalize-space(.)='Delete this file']`, chromedp.BySearch))
	b.Click("Delete")
	b.WaitText("Builds")
	c4 := r.pull()
	if _, ok := r.file("greeting/hello.md"); ok {
		t.Fatal("greeting/hello.md is still there")
	}
	if got := r.last(); !strings.HasSuffix(got, "|Delete greeting/hello.md") || !strings.HasPrefix(got, "erin|") {
		t.Fatalf("delete commit: %q", got)
	}
	r.checkBuilds(c1, c2, c3, c4)
	if n := strings.TrimSpace(r.g.Must(r.work, "rev-list", "--count", "HEAD")); n != "4" {
		t.Fatalf("%s commits, want 4", n)
	}
}

// TestWebIDEStaleParentInBrowser: someone pushes with git while the editor
// is open. An edit of another file is committed on top of that push; an
// edit of the same file is refused with a message, keeping the person's
// text, and the push is never lost.
func TestWebIDEStaleParentInBrowser(t *testing.T) {
	t.Parallel()
	b := NewBrowser(t)
	s := StartServer(t)
	pw := s.CreateUser("erin", false)
	r := newIDERepo(t, s, Cred{"erin", pw}, "stale", "restricted")
	// A first commit by git.
	work := r.g.Init(s.RepoURL(r.cred, "erin", "stale"))
	if r.branch != "master" {
		r.g.Must(work, "checkout", "-q", "-b", r.branch)
	}
	r.g.Commit(work, "a.txt", "a\n", "add a")
	pushed0 := r.g.Commit(work, "b.txt", "b\n", "add b")
	r.g.Must(work, "push", "-q", "origin", r.branch)
	signInBrowser(b, s, "erin", pw)

	// Non-overlapping: the editor on a.txt, a push of b.txt, then Commit.
	b.Open(s.URL + "/erin/stale/edit/a.txt")
	typeInEditor(b, "a by the IDE\n")
	pushed1 := r.g.Commit(work, "b.txt", "b by git\n", "git edits b")
	r.g.Must(work, "push", "-q", "origin", r.branch)
	b.Fill("Commit message", "IDE edits a")
	b.Click("Commit")
	b.WaitText("Builds")
	head := r.pull()
	if a, _ := r.file("a.txt"); a != "a by the IDE\n" {
		t.Fatalf("a.txt = %q", a)
	}
	if bb, _ := r.file("b.txt"); bb != "b by git\n" {
		t.Fatalf("the pushed change of b.txt was lost: %q", bb)
	}
	if parent := strings.TrimSpace(r.g.Must(r.work, "rev-parse", "HEAD^")); parent != pushed1 {
		t.Fatalf("the IDE commit's parent is %s, want the pushed %s", parent, pushed1)
	}
	r.checkBuilds(pushed0, pushed1, head)

	// Overlapping: the editor on a.txt, a push of a.txt, then Commit.
	r.g.Must(work, "pull", "-q", "--ff-only", "origin", r.branch)
	b.Open(s.URL + "/erin/stale/edit/a.txt")
	typeInEditor(b, "my precious edit\n")
	pushed2 := r.g.Commit(work, "a.txt", "a by git\n", "git edits a")
	r.g.Must(work, "push", "-q", "origin", r.branch)
	b.Fill("Commit message", "IDE edits a again")
	b.Click("Commit")
	b.WaitText("a.txt was changed by someone else since you opened it; your edit was not committed")
	if got := editorText(b); got != "my precious edit\n" {
		t.Fatalf("the refused edit lost the person's text: the editor holds %q", got)
	}
	var msg string
	b.Eval(`document.querySelector('#message').value`, &msg)
	if msg != "IDE edits a again" {
		t.Fatalf("the commit message was lost: %q", msg)
	}
	if now := r.pull(); now != pushed2 {
		t.Fatalf("head is %s, want the pushed %s", now, pushed2)
	}
	if a, _ := r.file("a.txt"); a != "a by git\n" {
		t.Fatalf("a.txt = %q", a)
	}
	r.checkBuilds(pushed0, pushed1, head, pushed2)
}

var ideParent = regexp.MustCompile(`name="parent" value="([0-9a-f]*)"`)

// ideForm reads the CSRF token and parent commit of an IDE page.
func ideForm(t *testing.T, c *webClient, path string) (csrf, parent string) {
	t.Helper()
	code, page, _ := c.do("GET", path, nil)
	m, p := webCSRF.FindStringSubmatch(page), ideParent.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil || p == nil {
		t.Fatalf("GET %s = %d\n%s", path, code, page)
	}
	return m[1], p[1]
}

// TestWebIDEOverHTTP: the IDE's forms as a browser without JavaScript
// sends them (the textarea's CRLF lines), and its refusals: no CSRF token,
// another user (404 on a restricted repository, 403 on a public one),
// invalid names, a mirror (read-only, no forms), large and binary files
// (shown, not editable).
func TestWebIDEOverHTTP(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	pw := s.CreateUser("erin", false)
	r := newIDERepo(t, s, Cred{"erin", pw}, "plain", "restricted")
	newIDERepo(t, s, Cred{"erin", pw}, "open", "public")
	c := newWebClient(t, s)
	c.signIn("erin", pw)

	// The repository page links to the IDE.
	if code, page, _ := c.do("GET", "/erin/plain", nil); code != 200 || !strings.Contains(page, `<a href="/erin/plain/edit">Edit</a>`) ||
		!strings.Contains(page, `<a href="/erin/plain/edit?new=1">New file</a>`) {
		t.Fatalf("the repository page has no IDE links: %d\n%s", code, page)
	}
	csrf, parent := ideForm(t, c, "/erin/plain/edit?new=1")
	if parent != "" {
		t.Fatalf("empty repository, parent %q", parent)
	}
	post := func(form url.Values) (int, string, http.Header) {
		t.Helper()
		return c.do("POST", "/erin/plain/edit", form)
	}
	// Without the CSRF token: refused, nothing committed.
	if code, _, _ := post(url.Values{"op": {"create"}, "parent": {""}, "name": {"x.txt"}, "content": {"x"}, "message": {"m"}}); code != http.StatusForbidden {
		t.Fatalf("post without CSRF token = %d, want 403", code)
	}
	// A body that is no form: 400, one over the bound: 413; nothing
	// committed either way.
	for _, tc := range []struct {
		body string
		want int
	}{{"op=create&name=%zz", http.StatusBadRequest}, {"content=" + strings.Repeat("x", 4<<20), http.StatusRequestEntityTooLarge}} {
		req, _ := http.NewRequest("POST", s.URL+"/erin/plain/edit", strings.NewReader(tc.body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", s.URL)
		res, err := c.hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != tc.want {
			t.Errorf("body %.20q...: %d, want %d", tc.body, res.StatusCode, tc.want)
		}
	}
	// Invalid names: the message, the form again with the text.
	for name, want := range map[string]string{"../x": `&#34;.&#34; and &#34;..&#34; are not allowed`, ".git/config": `&#34;.git&#34; is not allowed`,
		"/etc/x": "must not start with /", "": "file name is required"} {
		code, page, _ := post(url.Values{"csrf": {csrf}, "op": {"create"}, "parent": {""}, "name": {name}, "content": {"kept text"}, "message": {"m"}})
		if code != http.StatusBadRequest || !strings.Contains(page, want) || !strings.Contains(page, "kept text") {
			t.Errorf("name %q: %d, want 400 with %q and the text\n%s", name, code, want, page)
		}
	}
	// A no-JavaScript post: CRLF lines become LF.
	code, page, h := post(url.Values{"csrf": {csrf}, "op": {"create"}, "parent": {""}, "name": {"notes/a b.txt"}, "content": {"one\r\ntwo\r\n"}, "message": {"Add notes"}})
	if code != http.StatusSeeOther || h.Get("Location") != "/erin/plain/builds" {
		t.Fatalf("create = %d %v\n%s", code, h, page)
	}
	head := r.pull()
	if got, _ := r.file("notes/a b.txt"); got != "one\ntwo\n" {
		t.Fatalf("content %q", got)
	}
	r.checkBuilds(head)
	// The same name again: it exists.
	if code, page, _ := post(url.Values{"csrf": {csrf}, "op": {"create"}, "parent": {head}, "name": {"notes/a b.txt"}, "content": {"x"}, "message": {"m"}}); code != http.StatusConflict ||
		!strings.Contains(page, "notes/a b.txt already exists") {
		t.Fatalf("create existing = %d\n%s", code, page)
	}

	// Large and binary files are shown, not editable.
	work := r.g.Clone(s.RepoURL(r.cred, "erin", "plain"))
	os.WriteFile(filepath.Join(work, "big.txt"), []byte(strings.Repeat("x", 1<<20+1)), 0o644)
	os.WriteFile(filepath.Join(work, "blob.bin"), []byte("a\x00b"), 0o644)
	os.WriteFile(filepath.Join(work, "run.sh"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(work, " spaced.txt "), []byte("s\n"), 0o644)
	r.g.Must(work, "add", ".")
	r.g.Must(work, "update-index", "--chmod=+x", "run.sh")
	r.g.Must(work, "commit", "-qm", "big and binary")
	r.g.Must(work, "push", "-q", "origin", r.branch)
	for path, want := range map[string]string{"big.txt": "is a large file (1048577 bytes)", "blob.bin": "is a binary file (3 bytes)"} {
		code, page, _ := c.do("GET", "/erin/plain/edit/"+path, nil)
		if code != 200 || !strings.Contains(page, want) || strings.Contains(page, `<textarea`) || !strings.Contains(page, `value="delete"`) ||
			!strings.Contains(page, `value="rename"`) {
			t.Errorf("%s: %d, want %q, no editor, a Rename and a Delete form\n%s", path, code, want, page)
		}
	}
	// They can be renamed: the content moves as it is (it never passes
	// through the form).
	r.pull()
	for from, to := range map[string]string{"big.txt": "docs/big.txt", "blob.bin": "assets/blob.bin"} {
		wantContent, _ := r.file(from)
		csrf, parent = ideForm(t, c, "/erin/plain/edit/"+from)
		if code, page, _ := post(url.Values{"csrf": {csrf}, "op": {"rename"}, "parent": {parent}, "path": {from}, "name": {from}, "message": {"m"}}); code != http.StatusBadRequest ||
			!strings.Contains(page, "The name is unchanged") {
			t.Fatalf("rename %s to itself = %d\n%s", from, code, page)
		}
		if code, page, _ := post(url.Values{"csrf": {csrf}, "op": {"rename"}, "parent": {parent}, "path": {from}, "name": {to}, "message": {"Move " + from}}); code != http.StatusSeeOther {
			t.Fatalf("rename %s = %d\n%s", from, code, page)
		}
		r.pull()
		if got, ok := r.file(to); !ok || got != wantContent || len(got) == 0 {
			t.Fatalf("%s after the rename: %d bytes (%v), want the %d bytes of %s", to, len(got), ok, len(wantContent), from)
		}
		if _, ok := r.file(from); ok {
			t.Fatalf("%s still exists after its rename", from)
		}
	}

	// A rename keeps the file's mode (an executable stays one).
	csrf, parent = ideForm(t, c, "/erin/plain/edit/run.sh")
	if code, page, _ := post(url.Values{"csrf": {csrf}, "op": {"edit"}, "parent": {parent}, "path": {"run.sh"}, "name": {"bin/run.sh"},
		"content": {"#!/bin/sh\n"}, "message": {"Move run.sh"}}); code != http.StatusSeeOther {
		t.Fatalf("rename run.sh = %d\n%s", code, page)
	}
	r.pull()
	if got := r.g.Must(r.work, "ls-tree", "HEAD", "bin/run.sh"); !strings.HasPrefix(got, "100755 ") {
		t.Fatalf("the renamed run.sh lost its mode: %q", got)
	}

	// Saving a file whose name starts or ends with a space keeps its
	// name (the name field is not trimmed into a rename).
	csrf, parent = ideForm(t, c, "/erin/plain/edit/%20spaced.txt%20")
	if code, page, _ := post(url.Values{"csrf": {csrf}, "op": {"edit"}, "parent": {parent}, "path": {" spaced.txt "}, "name": {" spaced.txt "},
		"content": {"s2\n"}, "message": {"Edit spaced"}}); code != http.StatusSeeOther {
		t.Fatalf("edit ' spaced.txt ' = %d\n%s", code, page)
	}
	r.pull()
	if got, ok := r.file(" spaced.txt "); got != "s2\n" || !ok {
		t.Fatalf("' spaced.txt ' = %q %v; files: %s", got, ok, r.g.Must(r.work, "ls-files"))
	}

	// Another user: 404 on the restricted repository's editor, 403 on a
	// public one's.
	frank := newWebClient(t, s)
	frank.signIn("frank", s.CreateUser("frank", false))
	for _, p := range []string{"/erin/plain/edit", "/erin/plain/edit/notes/a%20b.txt", "/erin/plain/edit?new=1"} {
		if code, _, _ := frank.do("GET", p, nil); code != http.StatusNotFound {
			t.Errorf("frank: GET %s = %d, want 404", p, code)
		}
	}
	if code, page, _ := frank.do("GET", "/erin/open/edit", nil); code != http.StatusForbidden || strings.Contains(page, `action="/erin/open/edit"`) {
		t.Errorf("frank: GET a public repository's editor = %d, want 403 without forms\n%s", code, page)
	}
	_, fpage, _ := frank.do("GET", "/", nil)
	fcsrf := webCSRF.FindStringSubmatch(fpage)
	if fcsrf == nil {
		t.Fatalf("no CSRF token for frank:\n%s", fpage)
	}
	if code, _, _ := frank.do("POST", "/erin/plain/edit", url.Values{"csrf": {fcsrf[1]}, "op": {"create"}, "parent": {head}, "name": {"f.txt"}, "content": {"x"}, "message": {"m"}}); code != http.StatusNotFound {
		t.Errorf("frank: POST to a restricted repository's editor = %d, want 404", code)
	}
	if code, _, _ := frank.do("POST", "/erin/open/edit", url.Values{"csrf": {fcsrf[1]}, "op": {"create"}, "parent": {""}, "name": {"f.txt"}, "content": {"x"}, "message": {"m"}}); code != http.StatusForbidden {
		t.Errorf("frank: POST to a public repository's editor = %d, want 403", code)
	}
	if got := r.pull(); got == head {
		t.Fatal("the push above did not land") // sanity: pull works
	}

	// A mirror is read-only: a note pointing upstream, no forms; posts
	// refused.
	admin := adminCred(s)
	s.CreateRepo(admin, "admin", "up", "restricted")
	upstream := "ssh://git@" + s.SSHAddr + "/admin/up.git"
	if status, m := s.JSON("POST", "/api/v1/repos", admin, map[string]any{"owner": "admin", "name": "mirrored", "visibility": "restricted",
		"mirror": map[string]any{"url": upstream}}); status != http.StatusCreated {
		t.Fatalf("create mirror: %d %v", status, m)
	}
	ac := newWebClient(t, s)
	ac.signIn("admin", admin.Secret)
	code, page, _ = ac.do("GET", "/admin/mirrored/edit", nil)
	if code != 200 || !strings.Contains(page, "This repository mirrors <code>"+upstream+"</code>") || strings.Contains(page, `action="/admin/mirrored/edit"`) ||
		strings.Contains(page, "New file") {
		t.Fatalf("mirror editor = %d, want the note and no forms\n%s", code, page)
	}
	if code, page, _ := ac.do("GET", "/admin/mirrored", nil); code != 200 || strings.Contains(page, "/admin/mirrored/edit") {
		t.Errorf("the mirror's page links to the IDE: %d", code)
	}
	_, apage, _ := ac.do("GET", "/", nil)
	acsrf := webCSRF.FindStringSubmatch(apage)
	if code, page, _ := ac.do("POST", "/admin/mirrored/edit", url.Values{"csrf": {acsrf[1]}, "op": {"create"}, "parent": {""}, "name": {"f.txt"}, "content": {"x"}, "message": {"m"}}); code != http.StatusForbidden ||
		!strings.Contains(page, "mirrors "+upstream) {
		t.Fatalf("POST to a mirror's editor = %d, want 403\n%s", code, page)
	}
}
