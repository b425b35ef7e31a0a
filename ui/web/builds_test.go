package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"gitserver/gitserver/service"
	"gitserver/store"
)

// pinFS is the repository directories for Publish: it records the pins.
type pinFS struct {
	service.RepoFS
	pins []string
}

func (f *pinFS) Pin(_ context.Context, r store.Repo, commit string) error {
	f.pins = append(f.pins, r.FullName()+"@"+commit)
	return nil
}

// succeededBuild queues, claims and completes a build of commit in repo
// owner/name with status st.
func (e *env) build(owner, name, commit string, count int, st store.BuildStatus) store.Build {
	e.t.Helper()
	ctx := context.Background()
	rp, err := e.store.RepoByName(ctx, owner, name)
	if err != nil {
		e.t.Fatal(err)
	}
	base, err := e.store.BuildBase(ctx, rp.ID, "")
	if err != nil {
		e.t.Fatal(err)
	}
	b, _, err := e.store.EnqueueBuild(ctx, store.NewBuild{RepoID: rp.ID, Branch: "main", Commit: commit, PushedBy: owner,
		PreviousCommit: base, CommitCount: count})
	if err != nil {
		e.t.Fatal(err)
	}
	if st == store.BuildQueued {
		return b
	}
	c, err := e.store.ClaimBuild(ctx, "w1", time.Minute)
	if err != nil || c.ID != b.ID {
		e.t.Fatalf("claim: %v (%d, want %d)", err, c.ID, b.ID)
	}
	b, err = e.store.CompleteBuild(ctx, c.ID, c.LeaseToken, st, "", "https://ci.example.test/log/"+fmt.Sprint(c.ID))
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) versions(owner, name string) []store.Version {
	e.t.Helper()
	ctx := context.Background()
	rp, err := e.store.RepoByName(ctx, owner, name)
	if err != nil {
		e.t.Fatal(err)
	}
	vs, err := e.store.Versions(ctx, rp.ID)
	if err != nil {
		e.t.Fatal(err)
	}
	return vs
}

func commitOf(n int) string { return strings.Repeat(fmt.Sprintf("%x", n%16), 40) }

func TestBuildsAndPublish(t *testing.T) {
	e := newEnv(t, false)
	fs := &pinFS{}
	e.pages.Repos = fs
	failed := e.build("alice", "secret", commitOf(1), 3, store.BuildFailed)
	ok := e.build("alice", "secret", commitOf(2), 2, store.BuildSucceeded)
	alice := e.client()
	alice.mustSignIn("alice")

	r := alice.do("GET", "/alice/secret/builds", nil, nil)
	if r.status != 200 {
		t.Fatalf("builds = %d\n%s", r.status, r.body)
	}
	checkHeaders(t, r)
	if i, j := strings.Index(r.body, fmt.Sprintf(`id="build-%d"`, ok.ID)), strings.Index(r.body, fmt.Sprintf(`id="build-%d"`, failed.ID)); i < 0 || j < 0 || i > j {
		t.Errorf("builds not newest first (%d, %d):\n%s", i, j, r.body)
	}
	if strings.Count(r.body, ">Publish</a>") != 1 || !strings.Contains(r.body, fmt.Sprintf(`href="?publish=%d"`, ok.ID)) {
		t.Errorf("want one Publish link, for build %d:\n%s", ok.ID, r.body)
	}
	if strings.Contains(r.body, "<dialog") {
		t.Errorf("modal open without ?publish:\n%s", r.body)
	}
	for _, want := range []string{commitOf(2)[:12], "succeeded", "failed", "https://ci.example.test/log/"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("builds page lacks %q", want)
		}
	}
	// No Publish modal for a failed build.
	if r := alice.do("GET", fmt.Sprintf("/alice/secret/builds?publish=%d", failed.ID), nil, nil); strings.Contains(r.body, "<dialog") {
		t.Errorf("modal for a failed build:\n%s", r.body)
	}

	// The modal, with the versions each bump makes from none.
	r = alice.do("GET", fmt.Sprintf("/alice/secret/builds?publish=%d", ok.ID), nil, nil)
	for _, want := range []string{"<dialog open", `<label for="notes">Release notes</label>`, "major → 1.0.0", "minor → 0.1.0", "patch → 0.0.1",
		fmt.Sprintf(`action="/alice/secret/builds/%d/publish"`, ok.ID), `>Publish</button>`,
		"log " + commitOf(2)[:12] + " since ", "commit since the beginning"} {
		if !strings.Contains(r.body, want) {
			t.Errorf("modal lacks %q:\n%s", want, r.body)
		}
	}
	csrf := csrfOf(t, r.body)
	path := fmt.Sprintf("/alice/secret/builds/%d/publish", ok.ID)

	// Without the CSRF token: refused, nothing published.
	if r := alice.do("POST", path, url.Values{"bump": {"minor"}, "notes": {"x"}}, nil); r.status != http.StatusForbidden {
		t.Errorf("publish without CSRF = %d, want 403", r.status)
	}
	if vs := e.versions("alice", "secret"); len(vs) != 0 {
		t.Fatalf("published without CSRF: %v", vs)
	}

	// Another user: 404, nothing published.
	bob := e.client()
	bob.mustSignIn("bob")
	if r := bob.do("GET", "/alice/secret/builds", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("bob's builds page = %d, want 404", r.status)
	}
	if r := bob.do("GET", "/alice/secret/versions", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("bob's versions page = %d, want 404", r.status)
	}
	bobPage := bob.do("GET", "/", nil, nil)
	if r := bob.do("POST", path, url.Values{"csrf": {csrfOf(t, bobPage.body)}, "bump": {"minor"}}, nil); r.status != http.StatusNotFound {
		t.Errorf("bob's publish = %d, want 404", r.status)
	}
	// Anonymous: 404.
	if r := e.client().do("GET", "/alice/secret/builds", nil, nil); r.status != http.StatusNotFound {
		t.Errorf("anonymous builds page = %d, want 404", r.status)
	}

	// A bad bump: the modal again with the message, nothing published.
	if r := alice.do("POST", path, url.Values{"csrf": {csrf}, "bump": {"huge"}, "notes": {"kept"}}, nil); r.status != http.StatusBadRequest ||
		!strings.Contains(r.body, "<dialog open") || !strings.Contains(r.body, ">kept</textarea>") {
		t.Errorf("bad bump = %d:\n%s", r.status, r.body)
	}

	// A valid post: exactly one version, then the versions page shows it.
	r = alice.do("POST", path, url.Values{"csrf": {csrf}, "bump": {"minor"}, "notes": {"First <release>"}}, nil)
	if r.status != http.StatusSeeOther || r.header.Get("Location") != "/alice/secret/versions?new=0.1.0" {
		t.Fatalf("publish = %d %q\n%s", r.status, r.header.Get("Location"), r.body)
	}
	vs := e.versions("alice", "secret")
	if len(vs) != 1 || vs[0].String() != "0.1.0" || vs[0].BuildID != ok.ID || vs[0].ReleaseNotes != "First <release>" || vs[0].PublishedBy != "alice" {
		t.Fatalf("versions = %+v", vs)
	}
	if len(fs.pins) != 1 || fs.pins[0] != "alice/secret@"+commitOf(2) {
		t.Errorf("pins = %v", fs.pins)
	}
	r = alice.do("GET", "/alice/secret/versions?new=0.1.0", nil, nil)
	for _, want := range []string{"Published version 0.1.0.", "<strong>0.1.0</strong>", "First &lt;release&gt;", commitOf(2)[:12]} {
		if !strings.Contains(r.body, want) {
			t.Errorf("versions page lacks %q:\n%s", want, r.body)
		}
	}
	// Publishing the same build again is refused; still one version.
	if r := alice.do("POST", path, url.Values{"csrf": {csrf}, "bump": {"patch"}}, nil); r.status != http.StatusConflict {
		t.Errorf("second publish = %d, want 409", r.status)
	}
	if vs := e.versions("alice", "secret"); len(vs) != 1 {
		t.Errorf("versions after a second publish = %d", len(vs))
	}
	// The published build shows its version, no Publish; the next build's
	// modal counts from 0.1.0.
	next := e.build("alice", "secret", commitOf(3), 1, store.BuildSucceeded)
	r = alice.do("GET", fmt.Sprintf("/alice/secret/builds?publish=%d", next.ID), nil, nil)
	for _, want := range []string{`<span class="badge">0.1.0</span>`, "major → 1.0.0", "minor → 0.2.0", "patch → 0.1.1", "The latest version is 0.1.0.",
		"log " + commitOf(3)[:12] + " since " + commitOf(2)[:12]} {
		if !strings.Contains(r.body, want) {
			t.Errorf("builds page lacks %q:\n%s", want, r.body)
		}
	}

	// Live status: the tab reloads itself while a build is queued, not
	// while the modal is open, nor once every build has finished.
	if strings.Contains(r.body, `http-equiv="refresh"`) {
		t.Errorf("the open modal reloads")
	}
	if r := alice.do("GET", "/alice/secret/builds", nil, nil); strings.Contains(r.body, `http-equiv="refresh"`) {
		t.Errorf("reloads with every build finished")
	}
	e.build("alice", "secret", commitOf(4), 1, store.BuildQueued)
	if r := alice.do("GET", "/alice/secret/builds", nil, nil); !strings.Contains(r.body, `<meta http-equiv="refresh" content="5">`) || !strings.Contains(r.body, "queued") {
		t.Errorf("no reload with a build queued:\n%s", r.body)
	}

	// The repository home links the tabs.
	if r := alice.do("GET", "/alice/secret", nil, nil); !strings.Contains(r.body, `href="/alice/secret/builds"`) || !strings.Contains(r.body, `href="/alice/secret/versions"`) {
		t.Errorf("repository home lacks the Builds and Versions links")
	}
}

func TestPublishNeedsWrite(t *testing.T) {
	e := newEnv(t, true)
	e.pages.Repos = &pinFS{}
	b := e.build("bob", "pub", commitOf(5), 1, store.BuildSucceeded)
	alice := e.client()
	alice.mustSignIn("alice")
	r := alice.do("GET", fmt.Sprintf("/bob/pub/builds?publish=%d", b.ID), nil, nil)
	if r.status != 200 || !strings.Contains(r.body, "succeeded") {
		t.Fatalf("reader's builds page = %d\n%s", r.status, r.body)
	}
	if strings.Contains(r.body, "Publish") || strings.Contains(r.body, "<dialog") {
		t.Errorf("a reader sees Publish:\n%s", r.body)
	}
	if r := alice.do("POST", fmt.Sprintf("/bob/pub/builds/%d/publish", b.ID), url.Values{"csrf": {csrfOf(t, r.body)}, "bump": {"major"}}, nil); r.status != http.StatusForbidden {
		t.Errorf("reader's publish = %d, want 403", r.status)
	}
	// Anonymous readers (anonymous read on) see the builds, no Publish.
	anon := e.client()
	if r := anon.do("GET", "/bob/pub/builds", nil, nil); r.status != 200 || strings.Contains(r.body, "?publish=") {
		t.Errorf("anonymous builds page = %d", r.status)
	}
	if r := anon.do("POST", fmt.Sprintf("/bob/pub/builds/%d/publish", b.ID), url.Values{"bump": {"major"}}, nil); r.status != http.StatusForbidden {
		t.Errorf("anonymous publish = %d, want 403", r.status)
	}
	if vs := e.versions("bob", "pub"); len(vs) != 0 {
		t.Errorf("published by a reader: %v", vs)
	}
	// bob, the owner, may.
	bob := e.client()
	bob.mustSignIn("bob")
	r = bob.do("GET", fmt.Sprintf("/bob/pub/builds?publish=%d", b.ID), nil, nil)
	if r := bob.do("POST", fmt.Sprintf("/bob/pub/builds/%d/publish", b.ID), url.Values{"csrf": {csrfOf(t, r.body)}, "bump": {"major"}}, nil); r.status != http.StatusSeeOther {
		t.Errorf("owner's publish = %d\n%s", r.status, r.body)
	}
	if vs := e.versions("bob", "pub"); len(vs) != 1 || vs[0].String() != "1.0.0" {
		t.Errorf("versions = %v", vs)
	}
}
