package gitserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gitserver/gitserver/access"
	"gitserver/gitserver/service"
	"gitserver/hooks"
	"gitserver/store"
	"gitserver/store/sqlite"
)

type webCommitFixture struct {
	t     testing.TB
	ctx   context.Context
	st    store.Store
	git   *Git
	repos *Repos
	wc    *WebCommitter
	svc   *service.Service
	alice store.Account
	bob   store.Account
	repo  store.Repo
	dir   string
}

func newWebCommitFixture(t testing.TB) *webCommitFixture {
	t.Helper()
	ctx := context.Background()
	gitPath, _, err := FindGit()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(root, "gitserver.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	f := &webCommitFixture{t: t, ctx: ctx, st: st}
	if f.alice, err = st.CreateUser(ctx, "alice", "alice-password", false); err != nil {
		t.Fatal(err)
	}
	if f.bob, err = st.CreateUser(ctx, "bob", "bob-password", false); err != nil {
		t.Fatal(err)
	}
	if f.repo, err = st.CreateRepo(ctx, store.NewRepo{OwnerID: f.alice.ID, Name: "app", Visibility: store.Restricted, DefaultBranch: "main"}); err != nil {
		t.Fatal(err)
	}
	f.git = &Git{Path: gitPath, HooksDir: filepath.Join(root, "hooks"), Home: root}
	f.repos = &Repos{Root: filepath.Join(root, "repos"), Git: f.git}
	if err := os.MkdirAll(f.repos.Root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := f.repos.Init(ctx, f.repo); err != nil {
		t.Fatal(err)
	}
	f.dir = f.repos.Dir(f.repo)
	log := slog.New(slog.DiscardHandler)
	trigger := &hooks.Trigger{Store: st, Git: f.git.Output, RepoDir: f.repos.Dir, Log: log}
	f.wc = &WebCommitter{Git: f.git, Repos: f.repos, Trigger: trigger, TempDir: root, Log: log}
	f.svc = &service.Service{Store: st, Repos: f.repos, Committer: f.wc, BaseURL: "https://git.example.com:8443", Log: log}
	return f
}

// commit commits as alice through the service.
func (f *webCommitFixture) commit(parent, msg string, changes ...service.FileChange) (service.CommitResult, error) {
	u := f.alice
	return f.svc.CommitFiles(f.ctx, service.As(store.Principal{User: &u}, access.Web), f.repo,
		service.Edit{Parent: parent, Message: msg, Changes: changes})
}

func (f *webCommitFixture) mustCommit(parent, msg string, changes ...service.FileChange) service.CommitResult {
	f.t.Helper()
	res, err := f.commit(parent, msg, changes...)
	if err != nil {
		f.t.Fatalf("commit %q: %v", msg, err)
	}
	return res
}

func put(path, content string) service.FileChange {
	return service.FileChange{Path: path, Content: []byte(content)}
}

func del(path string) service.FileChange { return service.FileChange{Path: path, Delete: true} }

// gitOut runs the real git CLI in dir.
func gitOut(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=Carol", "GIT_AUTHOR_EMAIL=carol@example.com", "GIT_COMMITTER_NAME=Carol", "GIT_COMMITTER_EMAIL=carol@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

func (f *webCommitFixture) head() string {
	return gitOut(f.t, f.dir, "rev-parse", "refs/heads/main")
}

func (f *webCommitFixture) builds() []store.Build {
	f.t.Helper()
	bs, err := f.st.Builds(f.ctx, f.repo.ID, "", 100)
	if err != nil {
		f.t.Fatal(err)
	}
	return bs
}

// clone clones the repository into a fresh work tree.
func (f *webCommitFixture) clone() string {
	f.t.Helper()
	wt := filepath.Join(f.t.TempDir(), "wt")
	gitOut(f.t, filepath.Dir(wt), "clone", "-q", f.dir, wt)
	return wt
}

func TestWebCommitCreateEditRenameDelete(t *testing.T) {
	f := newWebCommitFixture(t)
	// A first file on an empty repository creates the branch, in a folder.
	c1 := f.mustCommit("", "Add the greeting", put("docs/hello.txt", "hello\n"))
	if c1.Old != "" || c1.Rebased || !c1.BuildQueued || c1.Build.Commit != c1.Commit || c1.Build.PushedBy != "alice" {
		t.Fatalf("first commit: %+v", c1)
	}
	wt := f.clone()
	if b, _ := os.ReadFile(filepath.Join(wt, "docs/hello.txt")); string(b) != "hello\n" {
		t.Fatalf("content %q", b)
	}
	if got := gitOut(t, wt, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s|%P"); got != "alice <alice@users.noreply.git.example.com>|alice <alice@users.noreply.git.example.com>|Add the greeting|" {
		t.Fatalf("first commit: %q", got)
	}
	// Edit it, keeping the executable bit of another file.
	gitOut(t, wt, "config", "core.fileMode", "true")
	os.WriteFile(filepath.Join(wt, "run.sh"), []byte("#!/bin/sh\n"), 0o755)
	gitOut(t, wt, "add", "run.sh")
	gitOut(t, wt, "commit", "-qm", "Add run.sh")
	gitOut(t, wt, "push", "-q", "origin", "main")
	head := f.head()
	c2 := f.mustCommit(head, "Edit both\r\n\r\nWith a body.", put("docs/hello.txt", "hello, world\n"), put("run.sh", "#!/bin/sh\necho hi\n"))
	if c2.Old != head || c2.Rebased {
		t.Fatalf("edit: %+v", c2)
	}
	gitOut(t, wt, "pull", "-q", "--ff-only")
	if got := gitOut(t, wt, "log", "-1", "--format=%B"); got != "Edit both\n\nWith a body." {
		t.Fatalf("message %q", got)
	}
	if got := gitOut(t, wt, "ls-tree", "HEAD", "run.sh"); !strings.HasPrefix(got, "100755 ") {
		t.Fatalf("run.sh lost its mode: %q", got)
	}
	// Rename: the old path deleted, the new one written, in one commit.
	c3 := f.mustCommit(c2.Commit, "Move the greeting", del("docs/hello.txt"), put("greeting/hello.md", "hello, world\n"))
	gitOut(t, wt, "pull", "-q", "--ff-only")
	if _, err := os.Stat(filepath.Join(wt, "docs")); !os.IsNotExist(err) {
		t.Fatalf("docs/ should be gone with its last file: %v", err)
	}
	if got := gitOut(t, wt, "show", "--no-renames", "--format=", "--name-status", "HEAD"); got != "D\tdocs/hello.txt\nA\tgreeting/hello.md" {
		t.Fatalf("rename: %q", got)
	}
	// Delete.
	c4 := f.mustCommit(c3.Commit, "Remove the greeting", del("greeting/hello.md"))
	gitOut(t, wt, "pull", "-q", "--ff-only")
	if got := gitOut(t, wt, "ls-files"); got != "run.sh" {
		t.Fatalf("files after delete: %q", got)
	}
	// One build per commit (the pushed "Add run.sh" gets none here: this
	// test's repository has no hooks).
	bs := f.builds()
	want := []string{c4.Commit, c3.Commit, c2.Commit, c1.Commit}
	if len(bs) != len(want) {
		t.Fatalf("%d builds, want %d", len(bs), len(want))
	}
	for i, b := range bs {
		if b.Commit != want[i] {
			t.Fatalf("build %d is of %s, want %s", i, b.Commit, want[i])
		}
	}
	// Queued builds are superseded (squashed): the newest covers the
	// whole history, none having been claimed.
	if bs[0].CommitCount != 5 {
		t.Fatalf("commit count %d, want 5", bs[0].CommitCount)
	}
}

func TestWebCommitRefusals(t *testing.T) {
	f := newWebCommitFixture(t)
	c1 := f.mustCommit("", "init", put("a.txt", "a\n"), put("dir/b.txt", "b\n"))
	for _, tc := range []struct {
		name    string
		changes []service.FileChange
		msg     string
		kind    error
		text    string
	}{
		{"missing", []service.FileChange{del("nope.txt")}, "m", store.ErrInvalid, "nope.txt does not exist"},
		{"under a file", []service.FileChange{put("a.txt/x", "x")}, "m", store.ErrInvalid, "a.txt is a file, so a.txt/x cannot be created"},
		{"on a folder", []service.FileChange{put("dir", "x")}, "m", store.ErrInvalid, "dir is a folder"},
		{"unchanged", []service.FileChange{put("a.txt", "a\n")}, "m", store.ErrInvalid, "nothing to commit"},
		{"no message", []service.FileChange{put("c.txt", "c")}, "  \n", store.ErrInvalid, "commit message is required"},
		{"dotdot", []service.FileChange{put("../c.txt", "c")}, "m", store.ErrInvalid, `".." are not allowed`},
		{"dotgit", []service.FileChange{put("x/.GIT/config", "c")}, "m", store.ErrInvalid, `".git" is not allowed`},
		{"absolute", []service.FileChange{put("/etc/passwd", "c")}, "m", store.ErrInvalid, "must not start with /"},
		// What git refuses in an index (core.protectNTFS) it skips with
		// update-index --index-info: a rename's new name, dropped, would
		// delete the file.
		{"dotgit with dots", []service.FileChange{del("a.txt"), put(".Git. ./config", "a\n")}, "m", store.ErrInvalid, `".git" is not allowed`},
		{"dotgit stream", []service.FileChange{del("a.txt"), put("x/.git::$INDEX_ALLOCATION/c", "a\n")}, "m", store.ErrInvalid, `".git" is not allowed`},
		{"dotgit short name", []service.FileChange{del("a.txt"), put("x/GIT~1/config", "a\n")}, "m", store.ErrInvalid, `".git" is not allowed`},
		{"nul", []service.FileChange{put("a\x00b", "c")}, "m", store.ErrInvalid, "control characters"},
		{"long", []service.FileChange{put(strings.Repeat("a", 300), "c")}, "m", store.ErrInvalid, "longer than 255 bytes"},
		{"too large", []service.FileChange{put("big", strings.Repeat("x", service.MaxEditBytes+1))}, "m", store.ErrInvalid, "larger than"},
		{"file and folder", []service.FileChange{put("n", "1"), put("n/m", "2")}, "m", store.ErrInvalid, "both a file and a folder"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.commit(c1.Commit, tc.msg, tc.changes...)
			if !errors.Is(err, tc.kind) || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("got %v, want %v containing %q", err, tc.kind, tc.text)
			}
		})
	}
	if f.head() != c1.Commit || len(f.builds()) != 1 {
		t.Fatal("a refused commit changed the branch or queued a build")
	}
	// Bob may not read alice's restricted repository: not found.
	u := f.bob
	_, err := f.svc.CommitFiles(f.ctx, service.As(store.Principal{User: &u}, access.Web), f.repo,
		service.Edit{Parent: c1.Commit, Message: "m", Changes: []service.FileChange{put("c.txt", "c")}})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bob: %v", err)
	}
	// A mirror is read-only.
	mr, _, err := f.st.CreateMirror(f.ctx, store.NewRepo{OwnerID: f.alice.ID, Name: "mirror", Visibility: store.Restricted}, store.NewMirror{
		URL: "git@scm.example:octo/app.git", PublicKey: "ssh-ed25519 AAAA", PrivateKey: []byte("k"), KnownHosts: "h ssh-ed25519 AAAA", WebhookSecret: "w"})
	if err != nil {
		t.Fatal(err)
	}
	a := f.alice
	_, err = f.svc.CommitFiles(f.ctx, service.As(store.Principal{User: &a}, access.Web), mr,
		service.Edit{Message: "m", Changes: []service.FileChange{put("c.txt", "c")}})
	if !errors.Is(err, store.ErrForbidden) || !strings.Contains(err.Error(), "mirrors git@scm.example:octo/app.git") {
		t.Fatalf("mirror: %v", err)
	}
}

func TestWebCommitStaleParent(t *testing.T) {
	f := newWebCommitFixture(t)
	c1 := f.mustCommit("", "init", put("a.txt", "a\n"), put("dir/b.txt", "b\n"), put("c.txt", "c\n"))
	// Someone pushes a change of dir/b.txt.
	wt := f.clone()
	os.WriteFile(filepath.Join(wt, "dir/b.txt"), []byte("b by carol\n"), 0o644)
	gitOut(t, wt, "commit", "-qam", "Carol's change")
	gitOut(t, wt, "push", "-q", "origin", "main")
	carol := f.head()

	// An edit of another file, opened on c1, goes on top of Carol's.
	res := f.mustCommit(c1.Commit, "Alice's change", put("a.txt", "a by alice\n"))
	if !res.Rebased || res.Old != carol {
		t.Fatalf("not rebased onto carol's commit: %+v", res)
	}
	gitOut(t, wt, "pull", "-q", "--ff-only")
	if got := gitOut(t, wt, "log", "--format=%an %s", "-3"); got != "alice Alice's change\nCarol Carol's change\nalice init" {
		t.Fatalf("history: %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(wt, "dir/b.txt")); string(b) != "b by carol\n" {
		t.Fatalf("carol's change lost: %q", b)
	}
	// Overlapping edits, opened on c1, are refused: the same file, a file
	// below a changed one, a deleted one.
	for _, ch := range []service.FileChange{put("dir/b.txt", "b by alice\n"), del("a.txt"), put("c.txt", "other\n")} {
		_, err := f.commit(c1.Commit, "Alice's overlapping change", ch)
		var se *service.StaleError
		if ch.Path == "c.txt" {
			if err != nil {
				t.Fatalf("c.txt is untouched since c1: %v", err)
			}
			continue
		}
		if !errors.As(err, &se) || se.Path != ch.Path || !errors.Is(err, store.ErrConflict) ||
			err.Error() != ch.Path+" was changed by someone else since you opened it; your edit was not committed" {
			t.Fatalf("%s: %v", ch.Path, err)
		}
	}
	gitOut(t, wt, "pull", "-q", "--ff-only")
	if b, _ := os.ReadFile(filepath.Join(wt, "dir/b.txt")); string(b) != "b by carol\n" {
		t.Fatalf("carol's change lost: %q", b)
	}
	// A form rendered on an empty repository, committed after the first
	// push: refused if its file exists now.
	if _, err := f.commit("", "late first", put("a.txt", "x")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("empty parent: %v", err)
	}
	if _, err := f.commit(strings.Repeat("ab", 20), "bogus parent", put("z.txt", "x")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("unknown parent: %v", err)
	}
}

// Concurrent commits on one parent all land: each one that loses the
// update-ref race is redone on the new head.
func TestWebCommitConcurrent(t *testing.T) {
	f := newWebCommitFixture(t)
	c1 := f.mustCommit("", "init", put("a.txt", "a\n"))
	const n = webCommitAttempts // n-1 losses at worst for the last one
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = f.commit(c1.Commit, "parallel", put("p"+string(rune('0'+i))+".txt", "x\n"))
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	wt := f.clone()
	if got := gitOut(t, wt, "ls-files"); got != "a.txt\np0.txt\np1.txt\np2.txt" {
		t.Fatalf("files: %q", got)
	}
	if got := gitOut(t, wt, "rev-list", "--count", "HEAD"); got != "4" {
		t.Fatalf("%s commits", got)
	}
	if len(f.builds()) != 4 {
		t.Fatalf("%d builds", len(f.builds()))
	}
}

// BenchmarkWebIDECommit measures a Web IDE commit until its build is queued
// (service.CommitFiles: policy, plumbing commit, update-ref, the trigger's
// enqueue in SQLite), against its peer: the same one-file change committed
// in a work tree and pushed with git (file transport, no hooks, no build).
// Compare the two in one run (ms/op).
func BenchmarkWebIDECommit(b *testing.B) {
	f := newWebCommitFixture(b)
	f.mustCommit("", "init", put("README.md", "hello\n"), put("src/main.go", "package main\n"))
	b.Run("ide", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			head := gitOut(b, f.dir, "rev-parse", "refs/heads/main")
			res, err := f.commit(head, "bench", put("src/main.go", fmt.Sprintf("package main // %d\n", i)))
			if err != nil || !res.BuildQueued {
				b.Fatalf("commit: %v %+v", err, res)
			}
		}
	})
	b.Run("git-commit-push", func(b *testing.B) {
		wt := f.clone()
		for i := 0; b.Loop(); i++ {
			if err := os.WriteFile(filepath.Join(wt, "src/main.go"), []byte(fmt.Sprintf("package main // push %d\n", i)), 0o644); err != nil {
				b.Fatal(err)
			}
			gitOut(b, wt, "commit", "-qam", "bench")
			gitOut(b, wt, "push", "-q", "origin", "main")
		}
	})
}

// A file written where a folder is, together with a change inside that
// folder (a rename of a/b/c to a), is refused: git's update-index would
// otherwise replace the folder, silently dropping its other files.
func TestWebCommitFileOverFolderWithOtherFiles(t *testing.T) {
	f := newWebCommitFixture(t)
	c1 := f.mustCommit("", "init", put("a/b/c.txt", "c\n"), put("a/x.txt", "x\n"))
	_, err := f.commit(c1.Commit, "rename a/b/c.txt to a", del("a/b/c.txt"), service.FileChange{Path: "a", Content: []byte("c\n"), New: true})
	if !errors.Is(err, store.ErrConflict) || err.Error() != "a already exists" {
		t.Fatalf("rename: got %v, want the refusal: a already exists", err)
	}
	_, err = f.commit(c1.Commit, "write a and a/b/c.txt", put("a/b/c.txt", "c2\n"), put("a", "a\n"))
	if !errors.Is(err, store.ErrInvalid) || err.Error() != "a is a folder" {
		t.Fatalf("write: got %v, want the refusal: a is a folder", err)
	}
	if f.head() != c1.Commit {
		t.Fatalf("the branch moved: %s", gitOut(t, f.dir, "ls-tree", "-r", "--name-only", "main"))
	}
	// A folder whose every file the commit deletes may become a file.
	f.mustCommit(c1.Commit, "a is a file now", del("a/b/c.txt"), del("a/x.txt"), service.FileChange{Path: "a", Content: []byte("c\n"), New: true, From: "a/b/c.txt"})
	if got := gitOut(t, f.dir, "ls-tree", "-r", "--name-only", "main"); got != "a" {
		t.Fatalf("files: %q", got)
	}
}

// Creating the default branch follows the push policy's directory/file
// rule: with refs/heads/main/x there, refs/heads/main is refused as a push
// of it would be (not a failed update-ref, an internal error).
func TestWebCommitCreateBranchConflict(t *testing.T) {
	f := newWebCommitFixture(t)
	tree := gitOut(t, f.dir, "hash-object", "-t", "tree", "-w", "/dev/null")
	c := gitOut(t, f.dir, "commit-tree", tree, "-m", "other")
	gitOut(t, f.dir, "update-ref", "refs/heads/main/x", c)
	_, err := f.commit("", "first", put("a.txt", "a\n"))
	if !errors.Is(err, store.ErrForbidden) || err.Error() != "rejected refs/heads/main: "+hooks.ReasonConflict("refs/heads/main/x") {
		t.Fatalf("got %v, want the push policy's refusal", err)
	}
	if len(f.builds()) != 0 {
		t.Fatal("a build was queued")
	}
}

// A rename keeps the file's mode: an executable stays executable, as
// git mv keeps it.
func TestWebCommitRenameKeepsMode(t *testing.T) {
	f := newWebCommitFixture(t)
	f.mustCommit("", "init", put("a.txt", "a\n"))
	wt := f.clone()
	gitOut(t, wt, "config", "core.fileMode", "true")
	os.WriteFile(filepath.Join(wt, "run.sh"), []byte("#!/bin/sh\n"), 0o755)
	gitOut(t, wt, "add", "run.sh")
	gitOut(t, wt, "commit", "-qm", "Add run.sh")
	gitOut(t, wt, "push", "-q", "origin", "main")
	f.mustCommit(f.head(), "Move run.sh", del("run.sh"), service.FileChange{Path: "bin/run.sh", Content: []byte("#!/bin/sh\necho moved\n"), New: true, From: "run.sh"})
	if got := gitOut(t, f.dir, "ls-tree", "main", "bin/run.sh"); !strings.HasPrefix(got, "100755 ") {
		t.Fatalf("bin/run.sh lost its mode: %q", got)
	}
}

// TestWebCommitRenameKeepsContent: a rename with Keep moves the file's blob
// as it is (a binary file's bytes never pass through the form), with its
// mode; Keep is refused for anything but a rename of an existing file.
func TestWebCommitRenameKeepsContent(t *testing.T) {
	f := newWebCommitFixture(t)
	f.mustCommit("", "init", put("a.txt", "a\n"))
	wt := f.clone()
	gitOut(t, wt, "config", "core.fileMode", "true")
	bin := []byte("\x00\x01binary\xff")
	os.WriteFile(filepath.Join(wt, "logo.png"), bin, 0o755)
	gitOut(t, wt, "add", "logo.png")
	gitOut(t, wt, "commit", "-qm", "Add logo")
	gitOut(t, wt, "push", "-q", "origin", "main")
	blob := gitOut(t, f.dir, "rev-parse", "main:logo.png")

	f.mustCommit(f.head(), "Move logo", del("logo.png"), service.FileChange{Path: "img/logo.png", New: true, From: "logo.png", Keep: true})
	if got := gitOut(t, f.dir, "ls-tree", "main", "img/logo.png"); !strings.HasPrefix(got, "100755 blob "+blob+"\t") {
		t.Fatalf("img/logo.png: %q, want mode 100755 and blob %s", got, blob)
	}
	if got := gitOut(t, f.dir, "ls-tree", "main", "logo.png"); got != "" {
		t.Fatalf("logo.png still there: %q", got)
	}

	head := f.head()
	for name, changes := range map[string][]service.FileChange{
		"a copy (From not deleted)": {{Path: "copy.png", New: true, From: "img/logo.png", Keep: true}},
		"content given too":         {del("a.txt"), {Path: "b.txt", New: true, From: "a.txt", Keep: true, Content: []byte("x")}},
		"not a new file":            {del("a.txt"), {Path: "img/logo.png", From: "a.txt", Keep: true}},
		"no From":                   {del("a.txt"), {Path: "b.txt", New: true, Keep: true}},
		"From that does not exist":  {del("nope.txt"), {Path: "b.txt", New: true, From: "nope.txt", Keep: true}},
	} {
		if _, err := f.commit(head, "m", changes...); err == nil {
			t.Errorf("%s: committed", name)
		}
	}
	if f.head() != head {
		t.Fatal("a refused edit moved the branch")
	}
}
