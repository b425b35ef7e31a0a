package gitserver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
	incoming := filepath.Join(dir, "objects", "incoming-abc123")
	if err := os.MkdirAll(filepath.Join(incoming, "pack"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := git("update-ref", "refs/heads/master", commit); err == nil {
		t.Fatal("update-ref succeeded despite a lock file: the test does not exercise anything")
	}
	removeStaleLocks(dir)
	if out, err := git("update-ref", "refs/heads/master", commit); err != nil {
		t.Fatalf("update-ref after removing stale locks: %v %s", err, out)
	}
	if _, err := os.Stat(incoming); !os.IsNotExist(err) {
		t.Fatalf("quarantine directory still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "refs/heads/feature/x.lock")); !os.IsNotExist(err) {
		t.Fatalf("nested ref lock still there: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil {
		t.Fatalf("HEAD removed: %v", err)
	}
}
