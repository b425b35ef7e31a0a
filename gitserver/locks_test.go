package gitserver

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// A receive-pack killed mid-push leaves ref locks and a quarantine
// directory; without removeStaleLocks every later update of that ref fails.
func TestRemoveStaleLocks(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r.git")
	git := func(args ...string) (string, error) {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
		out, err := cmd.CombinedOutput()
		return strings.TrimSpace(string(out)), err
	}
	if out, err := exec.Command("git", "init", "-q", "--bare", dir).CombinedOutput(); err != nil {
		t.Fatalf("init: %v %s", err, out)
	}
	tree, err := git("mktree")
	if err != nil {
		t.Fatal(err)
	}
	commit, err := git("commit-tree", tree, "-m", "x")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "refs", "heads", "feature"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"refs/heads/master.lock", "refs/heads/feature/x.lock", "packed-refs.lock"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	incoming := killedPushQuarantine(t, dir)
	legacy := filepath.Join(dir, "objects", "incoming-abc123") // gits before tmp-objdir
	if err := os.MkdirAll(filepath.Join(legacy, "pack"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := git("update-ref", "refs/heads/master", commit); err == nil {
		t.Fatal("update-ref succeeded despite a lock file: the test does not exercise anything")
	}
	removeStaleLocks(dir, 0)
	if out, err := git("update-ref", "refs/heads/master", commit); err != nil {
		t.Fatalf("update-ref after removing stale locks: %v %s", err, out)
	}
	for _, q := range []string{incoming, legacy} {
		if _, err := os.Stat(q); !os.IsNotExist(err) {
			t.Fatalf("quarantine directory %s still there: %v", filepath.Base(q), err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "refs/heads/feature/x.lock")); !os.IsNotExist(err) {
		t.Fatalf("nested ref lock still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		t.Fatalf("HEAD removed: %v", err)
	}
}

// killedPushQuarantine pushes a commit into the bare repository dir with a
// pre-receive hook that kills receive-pack with SIGKILL (a server killed
// mid-push), and returns the quarantine directory git really left behind,
// whatever this git names it.
func killedPushQuarantine(t *testing.T, dir string) string {
	t.Helper()
	hooks := t.TempDir()
	script := "#!/bin/sh\nkill -9 $PPID\nsleep 5\n"
	if err := os.WriteFile(filepath.Join(hooks, "pre-receive"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	env := append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@e")
	for _, args := range [][]string{
		{"init", "-q", "-b", "main", work},
		{"-C", work, "commit", "-q", "--allow-empty", "-m", "killed push"},
	} {
		cmd := exec.Command("git", args...)
		cmd.Env = env
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	before, _ := os.ReadDir(filepath.Join(dir, "objects"))
	push := exec.Command("git", "-C", work, "push", "--receive-pack=git -c core.hooksPath="+hooks+" receive-pack", dir, "main:refs/heads/killed")
	push.Env = env
	var out bytes.Buffer
	push.Stdout, push.Stderr = &out, &out
	if push.Run() == nil {
		t.Fatalf("push survived a killed receive-pack:\n%s", out.String())
	}
	after, _ := os.ReadDir(filepath.Join(dir, "objects"))
	var left []string
	for _, e := range after {
		if !slices.ContainsFunc(before, func(b os.DirEntry) bool { return b.Name() == e.Name() }) && e.IsDir() {
			left = append(left, e.Name())
		}
	}
	if len(left) != 1 || len(left[0]) == 2 {
		t.Fatalf("killed push left %v in objects/, want one quarantine directory\n%s", left, out.String())
	}
	t.Logf("git left quarantine directory objects/%s", left[0])
	return filepath.Join(dir, "objects", left[0])
}

// With shared repositories (another node may be pushing), only old locks
// are stale: a fresh ref lock and a fresh quarantine stay.
func TestRemoveStaleLocksShared(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"refs/heads", "objects/tmp_objdir-incoming-fresh", "objects/tmp_objdir-incoming-old"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fresh, stale := filepath.Join(dir, "refs/heads/live.lock"), filepath.Join(dir, "refs/heads/dead.lock")
	for _, f := range []string{fresh, stale} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * time.Minute)
	os.Chtimes(stale, long, long)
	day := time.Now().Add(-25 * time.Hour)
	os.Chtimes(filepath.Join(dir, "objects/tmp_objdir-incoming-old"), day, day)
	removeStaleLocks(dir, time.Minute)
	for f, want := range map[string]bool{
		fresh: true, stale: false,
		filepath.Join(dir, "objects/tmp_objdir-incoming-fresh"): true,
		filepath.Join(dir, "objects/tmp_objdir-incoming-old"):   false,
	} {
		if _, err := os.Stat(f); (err == nil) != want {
			t.Errorf("%s: present %v, want %v", strings.TrimPrefix(f, dir), err == nil, want)
		}
	}
}
