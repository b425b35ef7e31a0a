package main

import (
	"context"
	"path/filepath"
	"testing"

	"gitserver/gitserver"
	"gitserver/store"
)

// The Web IDE lists the default branch's files only: with refs/heads/main
// absent and refs/heads/main/x and main/y present (for-each-ref's pattern
// refs/heads/main matches both), the branch has no commit yet.
func TestWebGitFilesDefaultBranchOnly(t *testing.T) {
	path, _, err := gitserver.FindGit()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	repos := &gitserver.Repos{Root: root, Git: &gitserver.Git{Path: path, Home: t.TempDir()}}
	r := store.Repo{ID: 1, Owner: "alice", Name: "app", DefaultBranch: "main"}
	ctx := context.Background()
	if err := repos.Init(ctx, r); err != nil {
		t.Fatal(err)
	}
	dir := repos.Dir(r)
	g := NewGitEnv(t)
	wt := filepath.Join(t.TempDir(), "wt")
	g.Must("", "init", "-q", wt)
	c := g.Commit(wt, "other.txt", "x\n", "other")
	g.Must(wt, "push", "-q", dir, "HEAD:refs/heads/main/x", "HEAD:refs/heads/main/y")
	head, files, _, err := webGit{git: repos.Git, repos: repos}.Files(ctx, r, 10)
	if err != nil || head != "" || len(files) != 0 {
		t.Fatalf("Files = %q, %q, %v; want no head and no files", head, files, err)
	}
	g.Must(dir, "update-ref", "-d", "refs/heads/main/x")
	g.Must(dir, "update-ref", "-d", "refs/heads/main/y")
	g.Must(dir, "update-ref", "refs/heads/main", c)
	head, files, _, err = webGit{git: repos.Git, repos: repos}.Files(ctx, r, 10)
	if err != nil || head != c || len(files) != 1 || files[0] != "other.txt" {
		t.Fatalf("Files = %q, %q, %v; want %s [other.txt]", head, files, err, c)
	}
}
