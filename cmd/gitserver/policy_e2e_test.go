package main

// End-to-end tests of the push policy (docs/api.md §6) with the real git client.

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// lsRemoteRefs lists the refs a client sees (upload-pack advertisement).
func lsRemoteRefs(t *testing.T, g *GitEnv, url string, extra ...string) map[string]string {
	t.Helper()
	out := g.Must("", append(append([]string{}, extra...), "ls-remote", url)...)
	refs := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		id, ref, ok := strings.Cut(line, "\t")
		if !ok {
			t.Fatalf("ls-remote line %q", line)
		}
		refs[ref] = id
	}
	return refs
}

// pushFails runs a push that must be refused and returns its output.
func pushFails(t *testing.T, g *GitEnv, dir string, args ...string) string {
	t.Helper()
	out, err := g.Run(dir, append([]string{"push"}, args...)...)
	if err == nil {
		t.Fatalf("git push %s succeeded, want it refused:\n%s", strings.Join(args, " "), out)
	}
	return out
}

// wantRefs fails unless the server's refs equal want (missing = absent).
func wantRefs(t *testing.T, got map[string]string, want map[string]string) {
	t.Helper()
	for ref, id := range want {
		if id == "" {
			if v, ok := got[ref]; ok {
				t.Errorf("%s exists (%s), want it absent", ref, v)
			}
			continue
		}
		if got[ref] != id {
			t.Errorf("%s = %q, want %s", ref, got[ref], id)
		}
	}
}

func noLeaks(t *testing.T, s *TestServer, out string) {
	t.Helper()
	for _, leak := range []string{s.Data, "goroutine ", "panic", ".go:"} {
		if strings.Contains(out, leak) {
			t.Errorf("push output leaks %q:\n%s", leak, out)
		}
	}
}

func TestPushPolicyE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "policy", "restricted")
	url := s.RepoURL(admin, "admin", "policy")
	g := NewGitEnv(t)
	work := g.Init(url)
	c1 := g.Commit(work, "a.txt", "1\n", "c1")
	g.Must(work, "tag", "v1")
	c2 := g.Commit(work, "a.txt", "2\n", "c2")
	g.Must(work, "push", "-q", "origin", "master", "v1")
	want := map[string]string{"refs/heads/master": c2, "refs/tags/v1": c1}
	wantRefs(t, lsRemoteRefs(t, g, url), want)

	// A diverging commit: the "rewritten" history.
	g.Must(work, "checkout", "-q", "-b", "rewrite", c1)
	c3 := g.Commit(work, "a.txt", "3\n", "c3 rewrites c2")

	t.Run("force push refused", func(t *testing.T) {
		out := pushFails(t, g, work, "--force", "origin", "rewrite:master")
		line := "remote: rejected refs/heads/master: non-fast-forward update would rewrite history"
		if !strings.Contains(out, line) {
			t.Errorf("output lacks %q:\n%s", line, out)
		}
		noLeaks(t, s, out)
		wantRefs(t, lsRemoteRefs(t, g, url), want)
	})
	t.Run("force push refused over protocol v0", func(t *testing.T) {
		out := pushFails(t, g, work, "--force", "origin", "+"+c3+":refs/heads/master")
		if !strings.Contains(out, "rejected refs/heads/master: non-fast-forward") {
			t.Errorf("output:\n%s", out)
		}
		wantRefs(t, lsRemoteRefs(t, g, url, "-c", "protocol.version=0"), want)
	})
	t.Run("default branch deletion refused", func(t *testing.T) {
		out := pushFails(t, g, work, "origin", ":master")
		if !strings.Contains(out, "remote: rejected refs/heads/master: deleting the default branch") {
			t.Errorf("output:\n%s", out)
		}
		wantRefs(t, lsRemoteRefs(t, g, url), want)
	})
	t.Run("tag move refused", func(t *testing.T) {
		g.Must(work, "tag", "-f", "v1", c2)
		defer g.Must(work, "tag", "-f", "v1", c1)
		out := pushFails(t, g, work, "--force", "origin", "refs/tags/v1")
		if !strings.Contains(out, "remote: rejected refs/tags/v1: moving a tag would rewrite history") {
			t.Errorf("output:\n%s", out)
		}
		wantRefs(t, lsRemoteRefs(t, g, url), want)
	})
	t.Run("tag delete refused", func(t *testing.T) {
		out := pushFails(t, g, work, "origin", ":refs/tags/v1")
		if !strings.Contains(out, "remote: rejected refs/tags/v1: deleting a tag would rewrite history") {
			t.Errorf("output:\n%s", out)
		}
		wantRefs(t, lsRemoteRefs(t, g, url), want)
	})
	t.Run("mixed good and bad push changes nothing", func(t *testing.T) {
		g.Must(work, "checkout", "-q", "-b", "good-branch", c2)
		good := g.Commit(work, "b.txt", "good\n", "good")
		g.Must(work, "checkout", "-q", "-b", "bad-force", c3)
		g.Must(work, "checkout", "-q", "-b", "good-tag", c2)
		out := pushFails(t, g, work, "origin", "good-branch", "+bad-force:master", c2+":refs/tags/v2", "v1:refs/heads/ok-too")
		if !strings.Contains(out, "remote: rejected refs/heads/master: non-fast-forward") {
			t.Errorf("output:\n%s", out)
		}
		if n := strings.Count(out, "remote: rejected "); n != 1 {
			t.Errorf("%d remote rejection lines, want one (only master is bad):\n%s", n, out)
		}
		got := lsRemoteRefs(t, g, url)
		wantRefs(t, got, want)
		wantRefs(t, got, map[string]string{"refs/heads/good-branch": "", "refs/tags/v2": "", "refs/heads/ok-too": ""})
		// The good part alone goes through.
		g.Must(work, "push", "-q", "origin", "good-branch")
		wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/good-branch": good})
		g.Must(work, "push", "-q", "origin", ":good-branch")
	})
	t.Run("several bad refs: one line each", func(t *testing.T) {
		out := pushFails(t, g, work, "--force", "origin", "bad-force:master", ":refs/tags/v1", "good-branch:refs/heads/fine")
		for _, line := range []string{
			"remote: rejected refs/heads/master: non-fast-forward update would rewrite history",
			"remote: rejected refs/tags/v1: deleting a tag would rewrite history",
		} {
			if strings.Count(out, line) != 1 {
				t.Errorf("want exactly one %q:\n%s", line, out)
			}
		}
		wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/master": c2, "refs/tags/v1": c1, "refs/heads/fine": ""})
	})
	t.Run("feature branch create, update and delete allowed", func(t *testing.T) {
		g.Must(work, "checkout", "-q", "-b", "feature", c2)
		f1 := g.Commit(work, "f.txt", "f1\n", "f1")
		g.Must(work, "push", "-q", "origin", "feature")
		wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/feature": f1})
		f2 := g.Commit(work, "f.txt", "f2\n", "f2")
		g.Must(work, "push", "-q", "origin", "feature")
		wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/feature": f2})
		// Deleting a non-default branch is allowed even when it is not merged.
		g.Must(work, "push", "-q", "origin", ":feature")
		wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/feature": "", "refs/heads/master": c2})
		// A fast-forward of the default branch and a new tag are fine.
		g.Must(work, "checkout", "-q", "master")
		c4 := g.Commit(work, "a.txt", "4\n", "c4")
		g.Must(work, "tag", "v4")
		g.Must(work, "push", "-q", "origin", "master", "v4")
		want = map[string]string{"refs/heads/master": c4, "refs/tags/v1": c1, "refs/tags/v4": c4}
		wantRefs(t, lsRemoteRefs(t, g, url), want)
	})
	t.Run("reserved namespace refused", func(t *testing.T) {
		for _, ref := range []string{"refs/gitserver/x", "refs/gitserver/pins/" + c2} {
			out := pushFails(t, g, work, "origin", "master:"+ref)
			noLeaks(t, s, out)
			got := lsRemoteRefs(t, g, url)
			if _, ok := got[ref]; ok {
				t.Errorf("%s was created", ref)
			}
		}
		for ref := range lsRemoteRefs(t, g, url) {
			if strings.HasPrefix(ref, "refs/gitserver/") {
				t.Errorf("ls-remote shows %s", ref)
			}
		}
	})
	t.Run("reserved namespace in a mixed push changes nothing", func(t *testing.T) {
		g.Must(work, "checkout", "-q", "master")
		c5 := g.Commit(work, "a.txt", "5\n", "c5")
		out := pushFails(t, g, work, "origin", "master", "master:refs/gitserver/y")
		if !strings.Contains(out, "remote: rejected refs/gitserver/y: ") {
			t.Errorf("output lacks the reserved-namespace rejection:\n%s", out)
		}
		got := lsRemoteRefs(t, g, url)
		wantRefs(t, got, want)
		if got["refs/heads/master"] == c5 {
			t.Errorf("master moved although the same push wrote refs/gitserver/y (not atomic)")
		}
		bare := filepath.Join(s.Data, "repos")
		disk, _ := exec.Command("git", "--git-dir", repoDirOf(t, bare), "for-each-ref", "refs/gitserver/").CombinedOutput()
		if strings.TrimSpace(string(disk)) != "" {
			t.Errorf("reserved refs on disk: %s", disk)
		}
		g.Must(work, "reset", "-q", "--hard", want["refs/heads/master"])
	})
	t.Run("rejections are atomic on disk too", func(t *testing.T) {
		dir := repoDirOf(t, filepath.Join(s.Data, "repos"))
		out, err := exec.Command("git", "--git-dir", dir, "for-each-ref", "--format=%(objectname) %(refname)").CombinedOutput()
		if err != nil {
			t.Fatal(err, string(out))
		}
		disk := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			id, ref, _ := strings.Cut(l, " ")
			disk[ref] = id
		}
		for _, ref := range []string{"refs/heads/good-branch", "refs/heads/ok-too", "refs/heads/fine", "refs/tags/v2", "refs/gitserver/x", "refs/gitserver/y"} {
			if _, ok := disk[ref]; ok {
				t.Errorf("%s exists on disk after a refused push", ref)
			}
		}
		if disk["refs/heads/master"] != want["refs/heads/master"] {
			t.Errorf("master on disk %s, want %s", disk["refs/heads/master"], want["refs/heads/master"])
		}
	})
}

// repoDirOf is the only repository directory under root (one repo per
// server in these tests).
func repoDirOf(t *testing.T, root string) string {
	t.Helper()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, e := range entries {
		if e.IsDir() && strings.HasSuffix(e.Name(), ".git") {
			dirs = append(dirs, filepath.Join(root, e.Name()))
		}
	}
	if len(dirs) != 1 {
		t.Fatalf("want one repository under %s, found %v", root, dirs)
	}
	return dirs[0]
}

// TestPushPolicySSHE2E: the same policy holds over SSH.
func TestPushPolicySSHE2E(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("no ssh-keygen")
	}
	s := StartServer(t)
	if s.SSHAddr == "" {
		t.Fatal("server started without SSH")
	}
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "sshpolicy", "restricted")
	g := NewGitEnv(t)
	key := filepath.Join(g.Home, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	if _, err := s.Admin("", "key", "add", "admin", "--file", key+".pub"); err != nil {
		t.Fatalf("add key: %v", err)
	}
	g.Env = append(g.Env, "GIT_SSH_COMMAND=ssh -i "+key+" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")
	_, port, _ := strings.Cut(s.SSHAddr, ":")
	url := "ssh://git@127.0.0.1:" + port + "/admin/sshpolicy.git"

	work := g.Init(url)
	c1 := g.Commit(work, "a.txt", "1\n", "c1")
	c2 := g.Commit(work, "a.txt", "2\n", "c2")
	g.Must(work, "push", "-q", "origin", "master")
	g.Must(work, "reset", "-q", "--hard", c1)
	g.Commit(work, "a.txt", "3\n", "c3")
	out := pushFails(t, g, work, "--force", "origin", "master")
	if !strings.Contains(out, "remote: rejected refs/heads/master: non-fast-forward update would rewrite history") {
		t.Errorf("output:\n%s", out)
	}
	out = pushFails(t, g, work, "origin", ":master")
	if !strings.Contains(out, "remote: rejected refs/heads/master: deleting the default branch") {
		t.Errorf("output:\n%s", out)
	}
	wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/master": c2})
}
