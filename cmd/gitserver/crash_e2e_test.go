package main

// Crash test: many clients push concurrently over smart HTTP, the server is
// killed with SIGKILL in the middle, and after a restart on the same data
// directory nothing a client saw acknowledged is lost, every repository is
// intact, and every owed build is queued.

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ackedPush is a push a client saw succeed (git push exited 0).
type ackedPush struct {
	client int
	repo   string
	ref    string
	commit string
}

func TestCrashDuringConcurrentPushes(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test is slow-ish")
	}
	const (
		nRepos      = 4
		nClients    = 20
		perClient   = 3  // successive commits per branch per client
		killAfter   = 30 // acknowledged pushes before the SIGKILL (of 120 planned)
		maxAttempts = 40 // push attempts per commit when racing others on master
	)
	start := time.Now()
	phase := func(name string) { t.Logf("%6.1fs %s", time.Since(start).Seconds(), name) }
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	tok := s.Token("admin", "repo:read", "repo:write", "builds")
	cred := Cred{"admin", tok}

	// Repositories, each seeded with one commit on master.
	type repoInfo struct {
		name string
		id   int64
		seed string
	}
	repos := make([]*repoInfo, nRepos)
	seedGit := NewGitEnv(t)
	for i := range repos {
		name := fmt.Sprintf("crash%d", i)
		m := s.CreateRepo(admin, "admin", name, "restricted")
		id, ok := m["id"].(float64)
		if !ok {
			t.Fatalf("repo %s has no id: %v", name, m)
		}
		work := seedGit.Init(s.RepoURL(cred, "admin", name))
		seed := seedGit.Commit(work, "README", "seed "+name+"\n", "seed")
		seedGit.Must(work, "push", "-q", "origin", "master")
		repos[i] = &repoInfo{name: name, id: int64(id), seed: seed}
	}

	// Each client clones its repository before the storm.
	type client struct {
		g    *GitEnv
		dir  string
		repo *repoInfo
		side string
	}
	clients := make([]*client, nClients)
	{
		var wg sync.WaitGroup
		errs := make(chan error, nClients)
		for i := range clients {
			c := &client{g: NewGitEnv(t), repo: repos[i%nRepos], side: fmt.Sprintf("side-%d", i)}
			c.dir = filepath.Join(t.TempDir(), "work")
			clients[i] = c
			wg.Add(1)
			go func() {
				defer wg.Done()
				if out, err := c.g.Run("", "clone", "-q", s.RepoURL(cred, "admin", c.repo.name), c.dir); err != nil {
					errs <- fmt.Errorf("clone: %v\n%s", err, out)
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}

	phase("repositories seeded and cloned")
	var (
		mu       sync.Mutex
		acked    []ackedPush
		nAcked   atomic.Int64
		killed   atomic.Bool
		killOnce sync.Once
		killDone = make(chan struct{})
	)
	kill := func() {
		killOnce.Do(func() {
			killed.Store(true)
			s.Kill()
			close(killDone)
		})
	}
	record := func(p ackedPush) {
		mu.Lock()
		acked = append(acked, p)
		mu.Unlock()
		if nAcked.Add(1) == killAfter {
			go kill()
		}
	}

	// clientRun pushes perClient commits to master (rebasing over the other
	// clients' pushes when rejected) and perClient commits to its own side
	// branch, alternating. It stops at the first failure after the kill.
	clientRun := func(i int, c *client) error {
		g, dir := c.g, c.dir
		run := func(args ...string) (string, error) { return g.Run(dir, args...) }
		sideTip := ""
		for k := 0; k < perClient; k++ {
			if killed.Load() {
				return nil
			}
			// A commit on master.
			file := fmt.Sprintf("c%02d-%d.txt", i, k)
			if err := os.WriteFile(filepath.Join(dir, file), []byte(fmt.Sprintf("client %d commit %d\n", i, k)), 0o644); err != nil {
				return err
			}
			if out, err := run("add", file); err != nil {
				return fmt.Errorf("add: %v\n%s", err, out)
			}
			if out, err := run("commit", "-q", "-m", file); err != nil {
				return fmt.Errorf("commit: %v\n%s", err, out)
			}
			pushed := false
			for a := 0; a < maxAttempts && !pushed; a++ {
				out, err := run("push", "-q", "origin", "HEAD:refs/heads/master")
				if err == nil {
					head, herr := run("rev-parse", "HEAD")
					if herr != nil {
						return herr
					}
					record(ackedPush{client: i, repo: c.repo.name, ref: "refs/heads/master", commit: strings.TrimSpace(head)})
					pushed = true
					break
				}
				if killed.Load() {
					return nil
				}
				if !strings.Contains(out, "rejected") && !strings.Contains(out, "non-fast-forward") && !strings.Contains(out, "fetch first") {
					return fmt.Errorf("push master (attempt %d): %v\n%s", a, err, out)
				}
				// Someone else moved master: replay our commits on top.
				if out, err := run("pull", "-q", "--rebase", "origin", "master"); err != nil {
					if killed.Load() {
						return nil
					}
					return fmt.Errorf("pull --rebase: %v\n%s", err, out)
				}
			}
			if !pushed {
				return fmt.Errorf("client %d: could not push to master in %d attempts", i, maxAttempts)
			}

			// A commit on the client's own side branch (no contention):
			// the current tree, parented on the previous side commit.
			if killed.Load() {
				return nil
			}
			args := []string{"commit-tree", "HEAD^{tree}", "-m", fmt.Sprintf("side %d.%d", i, k)}
			if sideTip != "" {
				args = append(args, "-p", sideTip)
			} else {
				args = append(args, "-p", "HEAD")
			}
			out, err := run(args...)
			if err != nil {
				return fmt.Errorf("commit-tree: %v\n%s", err, out)
			}
			commit := strings.TrimSpace(out)
			out, err = run("push", "-q", "origin", commit+":refs/heads/"+c.side)
			if err != nil {
				if killed.Load() {
					return nil
				}
				return fmt.Errorf("push %s: %v\n%s", c.side, err, out)
			}
			sideTip = commit
			record(ackedPush{client: i, repo: c.repo.name, ref: "refs/heads/" + c.side, commit: commit})
		}
		return nil
	}

	var wg sync.WaitGroup
	errs := make(chan error, nClients)
	for i, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := clientRun(i, c); err != nil {
				errs <- fmt.Errorf("client %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if !killed.Load() {
		t.Fatalf("all clients finished after %d acknowledged pushes without reaching the kill threshold %d", nAcked.Load(), killAfter)
	}
	<-killDone
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("killed the server after %d acknowledged pushes; %d acknowledged in total", killAfter, len(acked))

	// Restart on the same data directory: the store must open and the
	// server must answer.
	phase("all clients stopped")
	// git processes spawned by the killed server live on in their own
	// process groups and may still update refs; their post-receive cannot
	// reach the new daemon. Wait for them so that the start-up
	// reconciliation sees their ref updates (see the report: the daemon
	// should kill its children when it dies).
	waitNoProcessesIn(t, filepath.Join(s.Data, "repos"))
	phase("orphaned git processes gone")
	s.Restart()
	phase("restarted")
	if status, body := s.Do("GET", "/readyz", Cred{}, nil); status != 200 {
		t.Fatalf("readyz after restart: %d %s", status, body)
	}

	// Every repository directory is intact.
	for _, r := range repos {
		dir := filepath.Join(s.Data, "repos", strconv.FormatInt(r.id, 10)+".git")
		v := NewGitEnv(t)
		if out, err := v.Run(dir, "fsck", "--strict", "--no-dangling", "--no-progress"); err != nil {
			t.Errorf("git fsck --strict in %s (%s): %v\n%s", dir, r.name, err, out)
		}
	}

	phase("fsck done")
	// Every acknowledged push is present: its commit is reachable from the
	// ref it was pushed to, as the server now serves it.
	v := NewGitEnv(t)
	heads := map[string]map[string]string{} // repo -> ref -> commit
	mirrors := map[string]string{}
	for _, r := range repos {
		url := s.RepoURL(cred, "admin", r.name)
		out := v.Must("", "ls-remote", url)
		refs := map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 {
				refs[f[1]] = f[0]
			}
		}
		heads[r.name] = refs
		m := filepath.Join(t.TempDir(), "mirror.git")
		v.Must("", "init", "-q", "--bare", m)
		v.Must(m, "fetch", "-q", url, "+refs/heads/*:refs/heads/*")
		mirrors[r.name] = m
	}
	for _, p := range acked {
		tip, ok := heads[p.repo][p.ref]
		if !ok {
			t.Errorf("client %d: acknowledged push of %s to %s:%s lost: the ref does not exist", p.client, p.commit, p.repo, p.ref)
			continue
		}
		if out, err := v.Run(mirrors[p.repo], "merge-base", "--is-ancestor", p.commit, tip); err != nil {
			t.Errorf("client %d: acknowledged push of %s to %s:%s lost: not reachable from %s (%v %s)", p.client, p.commit, p.repo, p.ref, tip, err, out)
		}
	}

	// Owed builds are queued: every repository whose default branch moved
	// has a build of its current head.
	moved := 0
	for _, r := range repos {
		head := heads[r.name]["refs/heads/master"]
		if head == "" {
			t.Errorf("%s: master is gone", r.name)
			continue
		}
		if head == r.seed {
			continue
		}
		moved++
		found := false
		for _, b := range s.Builds(cred, "admin", r.name) {
			if b["commit"] == head {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: master moved to %s but no build exists for it", r.name, head)
		}
	}
	if moved == 0 {
		t.Errorf("no repository's default branch moved: the test exercised nothing")
	}

	phase("acknowledged pushes and owed builds checked")
	// The server still takes pushes to every branch (no stale locks left by
	// the killed git processes), and queues a build for them.
	{
		var wg sync.WaitGroup
		errs := make(chan error, nClients)
		for i, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				g, dir := c.g, c.dir
				// The port changed with the restart.
				if out, err := g.Run(dir, "remote", "set-url", "origin", s.RepoURL(cred, "admin", c.repo.name)); err != nil {
					errs <- fmt.Errorf("client %d: set-url: %v\n%s", i, err, out)
					return
				}
				if out, err := g.Run(dir, "commit", "-q", "--allow-empty", "-m", fmt.Sprintf("after restart %d", i)); err != nil {
					errs <- fmt.Errorf("client %d: commit: %v\n%s", i, err, out)
					return
				}
				if out, err := g.Run(dir, "push", "-q", "origin", "HEAD:refs/heads/after-"+strconv.Itoa(i)); err != nil {
					errs <- fmt.Errorf("client %d: push after restart: %v\n%s", i, err, out)
					return
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// And master of each repository moves once more.
		for _, r := range repos {
			g := NewGitEnv(t)
			work := g.Clone(s.RepoURL(cred, "admin", r.name))
			head := g.Commit(work, "after-restart.txt", "ok\n", "after restart")
			g.Must(work, "push", "-q", "origin", "master")
			found := false
			for _, b := range s.Builds(cred, "admin", r.name) {
				if b["commit"] == head {
					found = true
				}
			}
			if !found {
				t.Errorf("%s: push after restart queued no build for %s", r.name, head)
			}
		}
	}
	phase("pushes after restart checked")
	if t.Failed() {
		t.Logf("server output:\n%s", truncateTrace(s.Output()))
	}
}

// waitNoProcessesIn waits until no process has its working directory under
// dir (Linux /proc; a no-op elsewhere).
func waitNoProcessesIn(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for first := true; ; first = false {
		busy := processesIn(t, dir)
		if len(busy) == 0 {
			return
		}
		if first {
			t.Logf("%d process(es) of the killed server still running:\n%s", len(busy), strings.Join(busy, "\n"))
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still running in %s 30s after the kill:\n%s", dir, strings.Join(busy, "\n"))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// processesIn lists ("pid: command line") the processes whose working
// directory is dir or under it (Linux /proc; none elsewhere).
func processesIn(t *testing.T, dir string) []string {
	t.Helper()
	if _, err := os.Stat("/proc/self/cwd"); err != nil {
		return nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	var busy []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err == nil && (cwd == abs || strings.HasPrefix(cwd, abs+"/")) {
			cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			busy = append(busy, e.Name()+": "+strings.ReplaceAll(string(cmdline), "\x00", " "))
		}
	}
	return busy
}
