package gitserver

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gitserver/store"
)

// TestSetHeadRealGit: an empty repository's HEAD takes any valid branch
// name; once it has branches, only one of them; a bad name never.
func TestSetHeadRealGit(t *testing.T) {
	path, _, err := FindGit()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(t.TempDir(), "repos")
	if err := os.MkdirAll(root, 0o750); err != nil {
		t.Fatal(err)
	}
	rs := &Repos{Root: root, Git: &Git{Path: path, Home: t.TempDir()}}
	ctx := context.Background()
	r := store.Repo{ID: 7, Owner: "alice", Name: "p", DefaultBranch: "master"}
	if err := rs.Init(ctx, r); err != nil {
		t.Fatal(err)
	}
	head := func() string {
		b, err := os.ReadFile(filepath.Join(rs.Dir(r), "HEAD"))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if err := rs.SetHead(ctx, r, "main"); err != nil || head() != "ref: refs/heads/main" {
		t.Fatalf("empty repository: %v, HEAD %q", err, head())
	}
	if err := rs.SetHead(ctx, r, "a..b"); !errors.Is(err, store.ErrInvalid) || head() != "ref: refs/heads/main" {
		t.Fatalf("a bad name: %v, HEAD %q", err, head())
	}

	// Push two branches from a work tree.
	work := t.TempDir()
	git := func(args ...string) {
		t.Helper()
		cmd := exec.Command(path, args...)
		cmd.Dir = work
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+t.TempDir(), "GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@e",
			"GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@e")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
	}
	git("init", "-q", "-b", "main", ".")
	git("commit", "-q", "--allow-empty", "-m", "one")
	git("push", "-q", rs.Dir(r), "main", "main:dev")
	if err := rs.SetHead(ctx, r, "nope"); !errors.Is(err, store.ErrInvalid) || !strings.Contains(err.Error(), `no branch "nope"`) || head() != "ref: refs/heads/main" {
		t.Fatalf("a missing branch: %v, HEAD %q", err, head())
	}
	if err := rs.SetHead(ctx, r, "dev"); err != nil || head() != "ref: refs/heads/dev" {
		t.Fatalf("dev: %v, HEAD %q", err, head())
	}
}
