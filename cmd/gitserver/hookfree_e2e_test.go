package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// spyHooks replaces s's installed hooks with scripts that note each run in
// the returned file and then run the real hook: what git really started,
// independently of the server's own account.
func spyHooks(t *testing.T, s *TestServer) (runs func() []string) {
	t.Helper()
	log := filepath.Join(t.TempDir(), "hook-runs")
	for _, name := range []string{"pre-receive", "post-receive"} {
		path := filepath.Join(s.Data, "hooks", name)
		bin, err := os.Readlink(path)
		if err != nil {
			t.Fatalf("installed hook: %v", err)
		}
		script := "#!/bin/sh\necho " + name + " >> '" + log + "'\nexec '" + bin + "' hook " + name + "\n"
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return func() []string {
		b, err := os.ReadFile(log)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		return strings.Fields(string(b))
	}
}

// TestHookFreePushE2E: a fast-forward of one existing branch over smart
// HTTP starts no hook (gitserver/fastpush.go), yet does all the hook path
// does: the build is queued before `git push` returns and announced to the
// pusher, and a non-fast-forward is refused with the policy's line and
// changes nothing. Every other push still runs the hooks.
func TestHookFreePushE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	runs := spyHooks(t, s)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "fast", "restricted")
	url := s.RepoURL(admin, "admin", "fast")
	g := NewGitEnv(t)
	work := g.Init(url)
	c1 := g.Commit(work, "a.txt", "1\n", "c1")

	// Creating the branch: the hook path.
	g.Must(work, "push", "-q", "origin", "master", "master:topic")
	if got := strings.Join(runs(), " "); got != "pre-receive post-receive" {
		t.Fatalf("creation ran hooks %q, want pre-receive post-receive", got)
	}

	// A fast-forward of the default branch: no hook, build queued and
	// announced.
	c2 := g.Commit(work, "a.txt", "2\n", "c2")
	out := g.Must(work, "push", "origin", "master")
	if got := len(runs()); got != 2 {
		t.Fatalf("a fast-forward ran hooks: %v", runs())
	}
	if !regexp.MustCompile(`remote: gitserver: build \d+ queued for ` + c2[:12] + ` \(\d+ commit\(s\)\)`).MatchString(out) {
		t.Errorf("no build line in the push output:\n%s", out)
	}
	builds := s.Builds(admin, "admin", "fast")
	if len(builds) != 2 || builds[0]["commit"] != c2 {
		t.Fatalf("builds when the push returned: %v", builds)
	}
	wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/master": c2, "refs/heads/topic": c1})

	// A fast-forward of another branch: no hook, no build.
	g.Must(work, "checkout", "-q", "-b", "topic", c1)
	t2 := g.Commit(work, "b.txt", "t\n", "t2")
	out = g.Must(work, "push", "origin", "topic")
	if len(runs()) != 2 || strings.Contains(out, "queued") || len(s.Builds(admin, "admin", "fast")) != 2 {
		t.Fatalf("topic push: hooks %v, builds %d, output:\n%s", runs(), len(s.Builds(admin, "admin", "fast")), out)
	}

	// A non-fast-forward: refused by git itself, with the policy's line.
	g.Must(work, "checkout", "-q", "-b", "rewrite", c1)
	g.Commit(work, "a.txt", "rewritten\n", "rewrite")
	for _, ref := range []string{"master", "topic"} {
		out = pushFails(t, g, work, "--force", "origin", "rewrite:"+ref)
		line := "remote: rejected refs/heads/" + ref + ": non-fast-forward update would rewrite history"
		if !strings.Contains(out, line) || strings.Contains(out, "denying") {
			t.Errorf("force push to %s: output lacks %q:\n%s", ref, line, out)
		}
	}
	if len(runs()) != 2 {
		t.Fatalf("refused pushes ran hooks: %v", runs())
	}
	wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/master": c2, "refs/heads/topic": t2})
	if n := len(s.Builds(admin, "admin", "fast")); n != 2 {
		t.Fatalf("%d builds after refused pushes, want 2", n)
	}

	// Two refs at once: the hook path again (atomicity is the hook's).
	g.Must(work, "checkout", "-q", "master")
	g.Commit(work, "a.txt", "3\n", "c3")
	g.Must(work, "checkout", "-q", "topic")
	g.Commit(work, "b.txt", "t3\n", "t3")
	g.Must(work, "push", "-q", "origin", "master", "topic")
	if got := strings.Join(runs(), " "); got != "pre-receive post-receive pre-receive post-receive" {
		t.Fatalf("two-ref push ran hooks %q", got)
	}

	// The server's account agrees.
	status, body := s.Do("GET", "/metrics", Cred{}, nil)
	for _, want := range []string{`gitserver_pushes_total{hooks="none"} 4`, `gitserver_pushes_total{hooks="run"} 2`} {
		if status != 200 || !strings.Contains(string(body), want) {
			t.Errorf("/metrics (%d) lacks %s", status, want)
		}
	}
}

// TestHookFreePushSSHE2E: over SSH too. The server runs receive-pack as
// smart HTTP does (advertisement, then the request) so that it reads the
// commands first; a fast-forward then starts no hook, and everything else
// is as before.
func TestHookFreePushSSHE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	runs := spyHooks(t, s)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "fastssh", "restricted")
	g := NewGitEnv(t)
	url := sshGitEnv(t, s, g, "fastssh")
	work := g.Init(url)
	c1 := g.Commit(work, "a.txt", "1\n", "c1")
	g.Must(work, "push", "-q", "origin", "master")
	if got := strings.Join(runs(), " "); got != "pre-receive post-receive" {
		t.Fatalf("creation ran hooks %q, want pre-receive post-receive", got)
	}
	c2 := g.Commit(work, "a.txt", "2\n", "c2")
	out := g.Must(work, "push", "origin", "master")
	if len(runs()) != 2 {
		t.Fatalf("a fast-forward ran hooks: %v", runs())
	}
	if !regexp.MustCompile(`remote: gitserver: build \d+ queued for ` + c2[:12]).MatchString(out) {
		t.Errorf("no build line in the push output:\n%s", out)
	}
	if b := s.Builds(admin, "admin", "fastssh"); len(b) != 2 || b[0]["commit"] != c2 {
		t.Fatalf("builds when the push returned: %v", b)
	}
	// Nothing to push: the client sends no command at all.
	if out := g.Must(work, "push", "origin", "master"); !strings.Contains(out, "Everything up-to-date") {
		t.Errorf("empty push:\n%s", out)
	}
	g.Must(work, "checkout", "-q", "-b", "rewrite", c1)
	g.Commit(work, "a.txt", "rewritten\n", "rewrite")
	out = pushFails(t, g, work, "--force", "origin", "rewrite:master")
	if line := "remote: rejected refs/heads/master: non-fast-forward update would rewrite history"; !strings.Contains(out, line) {
		t.Errorf("output lacks %q:\n%s", line, out)
	}
	if got := strings.TrimSpace(g.Must(work, "ls-remote", "origin", "refs/heads/master")); !strings.HasPrefix(got, c2) {
		t.Fatalf("master after the refused push: %s", got)
	}
	if len(runs()) != 2 {
		t.Fatalf("hooks ran: %v", runs())
	}
}
