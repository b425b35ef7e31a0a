package main

// Two gitserver nodes on one PostgreSQL database and one repository root
// (contract §12): what one node writes, the other serves; build claims,
// credentials and locks are shared through the database.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gitserver/store/postgres/pgtest"
)

// startNodes starts two nodes on a fresh PostgreSQL database, each with its
// own data directory (keys, hook socket, pack cache) and both on one
// repository root and one secret key. The database URL (password
// included) reaches them through the environment.
func startNodes(t *testing.T) (a, b *TestServer) {
	t.Helper()
	url := pgtest.Start(t)
	shared := t.TempDir()
	env := WithEnv("GITSERVER_DATABASE_URL=" + url)
	args := WithArgs("--repos-dir", filepath.Join(shared, "repos"), "--secret-key-file", filepath.Join(shared, "secret.key"))
	a = StartServer(t, env, args)
	b = StartServer(t, env, args)
	if a.AdminPassword == "" {
		t.Fatalf("the first node created no admin\n%s", a.Output())
	}
	if b.AdminPassword != "" {
		t.Fatalf("the second node created another admin")
	}
	return a, b
}

func lsRemoteHead(t *testing.T, g *GitEnv, url string) string {
	t.Helper()
	out := g.Must("", "ls-remote", url, "refs/heads/master")
	id, _, _ := strings.Cut(strings.TrimSpace(out), "\t")
	return id
}

// TestTwoNodesE2E: a push through one node is cloned through the other,
// both ways; the nodes are ready and export the pool's metrics; the URL's
// password is never printed; a credential revoked through one node stops
// working on the other at the next request (its password cache warm).
func TestTwoNodesE2E(t *testing.T) {
	t.Parallel()
	a, b := startNodes(t)
	admin := Cred{"admin", a.AdminPassword}
	a.CreateRepo(admin, "admin", "shared", "restricted")
	g := NewGitEnv(t)

	work := g.Init(a.RepoURL(admin, "admin", "shared"))
	first := g.Commit(work, "README", "one\n", "first")
	g.Must(work, "push", "-q", "origin", "master")
	clone := g.Clone(b.RepoURL(admin, "admin", "shared"))
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != first {
		t.Fatalf("clone through B: HEAD %s, pushed %s through A", got, first)
	}
	second := g.Commit(clone, "README", "two\n", "second")
	g.Must(clone, "push", "-q", "origin", "master")
	if got := lsRemoteHead(t, g, a.RepoURL(admin, "admin", "shared")); got != second {
		t.Fatalf("A serves %s, pushed %s through B", got, second)
	}
	// Builds queued by either node are listed by both.
	for _, s := range []*TestServer{a, b} {
		if len(buildsFor(t, s, admin, "admin", "shared", second)) != 1 {
			t.Fatalf("%s lists no build of %s", s.URL, second)
		}
	}

	for _, s := range []*TestServer{a, b} {
		if status, body := s.Do("GET", "/readyz", Cred{}, nil); status != http.StatusOK {
			t.Fatalf("readyz: %d %s", status, body)
		}
		resp, err := http.Get(s.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, name := range []string{"gitserver_db_pool_in_use_connections", "gitserver_db_pool_idle_connections", "gitserver_build_queue_depth 1"} {
			if !strings.Contains(string(m), name) {
				t.Errorf("metrics lack %q", name)
			}
		}
	}

	// Revocation through A, at once on B.
	bob := Cred{"bob", a.CreateUser("bob", false)}
	if status, _ := b.Do("GET", "/api/v1/user", bob, nil); status != http.StatusOK {
		t.Fatalf("bob on B: %d", status)
	}
	if _, err := a.Admin("a-brand-new-password\n", "user", "passwd", "bob", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if status, _ := b.Do("GET", "/api/v1/user", bob, nil); status != http.StatusUnauthorized {
		t.Fatalf("bob's old password on B after a change through A: %d, want 401", status)
	}
	bob = Cred{"bob", "a-brand-new-password"}
	status, m := a.JSON("POST", "/api/v1/user/tokens", bob, map[string]any{"name": "laptop"})
	if status != http.StatusCreated {
		t.Fatalf("create token: %d %v", status, m)
	}
	tok := Cred{"", m["token"].(string)}
	if status, _ := b.Do("GET", "/api/v1/user", tok, nil); status != http.StatusOK {
		t.Fatalf("token on B: %d", status)
	}
	if status, _ := a.Do("DELETE", fmt.Sprintf("/api/v1/user/tokens/%d", int64(m["id"].(float64))), bob, nil); status != http.StatusNoContent {
		t.Fatalf("revoke token through A: %d", status)
	}
	if status, _ := b.Do("GET", "/api/v1/user", tok, nil); status != http.StatusUnauthorized {
		t.Fatalf("token revoked through A, on B: %d, want 401", status)
	}
	if status, _ := b.Do("GET", "/api/v1/user", bob, nil); status != http.StatusOK {
		t.Fatalf("bob's new password on B: %d", status)
	}
	if status, m := a.JSON("PATCH", "/api/v1/admin/users/bob", admin, map[string]any{"disabled": true}); status != http.StatusOK {
		t.Fatalf("disable bob through A: %d %v", status, m)
	}
	if status, _ := b.Do("GET", "/api/v1/user", bob, nil); status != http.StatusUnauthorized {
		t.Fatalf("bob disabled through A, on B: %d, want 401", status)
	}

	for _, s := range []*TestServer{a, b} {
		if strings.Contains(s.Output(), pgtest.Password) {
			t.Fatalf("a node printed the database password:\n%s", s.Output())
		}
	}
}

type claimResult struct {
	code  int
	build map[string]any
}

func claimAsync(t *testing.T, s *TestServer, tok, worker string, wait int) <-chan claimResult {
	ch := make(chan claimResult, 1)
	go func() {
		code, b := s.JSON("POST", "/api/v1/builds/claim", Cred{Secret: tok},
			map[string]any{"worker": worker, "wait_seconds": wait, "lease_seconds": 300})
		ch <- claimResult{code, b}
	}()
	return ch
}

// pushNew creates owner/name through s, pushes one commit to it through s
// and returns the commit.
func pushNew(t *testing.T, g *GitEnv, s *TestServer, c Cred, name string) string {
	t.Helper()
	s.CreateRepo(c, c.User, name, "restricted")
	work := g.Init(s.RepoURL(c, c.User, name))
	commit := g.Commit(work, "README", name+"\n", "first of "+name)
	g.Must(work, "push", "-q", "origin", "master")
	return commit
}

// TestTwoNodesClaimsE2E: a claim waiting on node B is answered by a push
// through node A; 8 claimers spread over both nodes get 8 distinct builds,
// one per push.
func TestTwoNodesClaimsE2E(t *testing.T) {
	t.Parallel()
	a, b := startNodes(t)
	admin := Cred{"admin", a.AdminPassword}
	worker := a.Token("admin", "builds")
	g := NewGitEnv(t)

	waiting := claimAsync(t, b, worker, "on-b", 60)
	time.Sleep(500 * time.Millisecond) // let it wait (it would also find the build queued)
	commit := pushNew(t, g, a, admin, "first")
	select {
	case r := <-waiting:
		if r.code != http.StatusOK || jsonStr(r.build, "commit") != commit {
			t.Fatalf("claim waiting on B: %d %v, want the build of %s pushed through A", r.code, r.build, commit)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the claim waiting on B was not answered")
	}

	const n = 8
	var results []<-chan claimResult
	for i := 0; i < n; i++ {
		node := a
		if i%2 == 1 {
			node = b
		}
		results = append(results, claimAsync(t, node, worker, fmt.Sprintf("w%d", i), 60))
	}
	pushed := map[string]bool{}
	for i := 0; i < n; i++ {
		node := a
		if i%2 == 0 {
			node = b
		}
		pushed[pushNew(t, g, node, admin, fmt.Sprintf("r%d", i))] = true
	}
	ids := map[int64]bool{}
	for i, ch := range results {
		r := <-ch
		if r.code != http.StatusOK {
			t.Fatalf("claimer %d: %d %v", i, r.code, r.build)
		}
		id := jsonNum(t, r.build, "id")
		if ids[id] {
			t.Fatalf("build %d claimed twice", id)
		}
		ids[id] = true
		if !pushed[jsonStr(r.build, "commit")] {
			t.Fatalf("claimer %d got %v, not one of the pushed commits", i, r.build)
		}
		delete(pushed, jsonStr(r.build, "commit"))
	}
	if len(pushed) != 0 {
		t.Fatalf("pushes whose build nobody claimed: %v", pushed)
	}
	if code, r := claimBuild(t, b, worker, "late", 0, 300); code != http.StatusNoContent {
		t.Fatalf("a ninth claim: %d %v, want 204", code, r)
	}
}

// TestTwoNodesSameRepoRaceE2E: two pushes of different commits onto one
// branch, at once, one through each node: git's ref locking on the shared
// repository lets exactly one of them in, and the branch is that one.
func TestTwoNodesSameRepoRaceE2E(t *testing.T) {
	t.Parallel()
	a, b := startNodes(t)
	admin := Cred{"admin", a.AdminPassword}
	g := NewGitEnv(t)
	base := pushNew(t, g, a, admin, "race")
	wa := g.Clone(a.RepoURL(admin, "admin", "race"))
	wb := g.Clone(b.RepoURL(admin, "admin", "race"))
	for round := 0; round < 4; round++ {
		ca := g.Commit(wa, "a.txt", fmt.Sprint(round), "a")
		cb := g.Commit(wb, "b.txt", fmt.Sprint(round), "b")
		var errA, errB error
		var wg sync.WaitGroup
		wg.Go(func() { _, errA = g.Run(wa, "push", "-q", "origin", "master") })
		wg.Go(func() { _, errB = g.Run(wb, "push", "-q", "origin", "master") })
		wg.Wait()
		head := lsRemoteHead(t, g, b.RepoURL(admin, "admin", "race"))
		switch {
		case errA == nil && errB == nil:
			t.Fatalf("round %d: both racing pushes were accepted (head %s, base %s)", round, head, base)
		case errA == nil && head != ca, errB == nil && head != cb:
			t.Fatalf("round %d: the accepted push is not the branch: head %s, a %s (%v), b %s (%v)", round, head, ca, errA, cb, errB)
		case errA != nil && errB != nil:
			// Both refused is allowed (each saw the other's lock);
			// the branch kept its value.
			if head != base {
				t.Fatalf("round %d: both pushes refused, yet the branch moved to %s", round, head)
			}
		}
		// Both clients catch up for the next round.
		for _, w := range []string{wa, wb} {
			g.Must(w, "fetch", "-q", "origin")
			g.Must(w, "reset", "-q", "--hard", "origin/master")
		}
		base = head
	}
}

// TestTwoNodesKillE2E: kill -9 of one node while pushes run through both
// loses no acknowledged push; the pushers that used it carry on through
// the other node, which keeps serving.
func TestTwoNodesKillE2E(t *testing.T) {
	t.Parallel()
	a, b := startNodes(t)
	admin := Cred{"admin", a.AdminPassword}
	g := NewGitEnv(t)
	const pushers = 4
	type state struct {
		mu     sync.Mutex
		acked  string
		pushes int
	}
	states := make([]*state, pushers)
	works := make([]string, pushers)
	for i := range pushers {
		name := fmt.Sprintf("k%d", i)
		a.CreateRepo(admin, "admin", name, "restricted")
		works[i] = g.Init(a.RepoURL(admin, "admin", name))
		states[i] = &state{}
	}
	killed := make(chan struct{})
	var wg sync.WaitGroup
	for i := range pushers {
		wg.Go(func() {
			st, work := states[i], works[i]
			node := a
			if i%2 == 1 {
				node = b
			}
			url := node.RepoURL(admin, "admin", fmt.Sprintf("k%d", i))
			after := 0 // pushes acknowledged after the kill
			for k := 0; after < 3; k++ {
				c := g.Commit(work, "f.txt", fmt.Sprint(k), fmt.Sprint("push ", k))
				var giveUp time.Time
				for {
					out, err := g.Run(work, "push", "-q", url, "master")
					if err == nil {
						break
					}
					select {
					case <-killed:
					default:
						t.Errorf("pusher %d: push failed before any kill: %v %s", i, err, out)
						return
					}
					// Node A is gone: the load balancer sends us to B.
					// A ref lock A's git left behind refuses pushes to
					// that branch until it is old enough to be stale
					// (the sweep: SharedLockAge and its period).
					url = b.RepoURL(admin, "admin", fmt.Sprintf("k%d", i))
					if giveUp.IsZero() {
						giveUp = time.Now().Add(3 * time.Minute)
					} else if time.Now().After(giveUp) {
						t.Errorf("pusher %d: B refuses pushes after A's death: %v %s", i, err, out)
						return
					}
					time.Sleep(250 * time.Millisecond)
				}
				st.mu.Lock()
				st.acked, st.pushes = c, st.pushes+1
				st.mu.Unlock()
				select {
				case <-killed:
					after++
				default:
				}
			}
		})
	}
	// Kill A once every pusher has been acknowledged twice.
	for deadline := time.Now().Add(60 * time.Second); ; {
		ready := true
		for _, st := range states {
			st.mu.Lock()
			ready = ready && st.pushes >= 2
			st.mu.Unlock()
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("pushers made no progress")
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(killed) // first: a push failing as A dies must know why
	a.Kill()
	wg.Wait()
	if t.Failed() {
		return
	}
	for i, st := range states {
		name := fmt.Sprintf("k%d", i)
		if got := lsRemoteHead(t, g, b.RepoURL(admin, "admin", name)); got != st.acked {
			t.Errorf("%s: B serves %s, the last acknowledged push was %s", name, got, st.acked)
		}
		clone := g.Clone(b.RepoURL(admin, "admin", name))
		g.Must(clone, "fsck", "--no-progress")
		// The acknowledged head has its build (queued by whichever
		// node took the push, before acknowledging it).
		if len(buildsFor(t, b, admin, "admin", name, st.acked)) != 1 {
			t.Errorf("%s: no build of the acknowledged head %s", name, st.acked)
		}
	}
	if status, body := b.Do("GET", "/readyz", Cred{}, nil); status != http.StatusOK {
		t.Fatalf("B after A's death: readyz %d %s", status, body)
	}
}

// TestReadyzFollowsTheDatabaseE2E: /readyz fails while the PostgreSQL
// database refuses connections, and passes again, with the API working,
// once it accepts them: the node reconnects by itself.
func TestReadyzFollowsTheDatabaseE2E(t *testing.T) {
	t.Parallel()
	url := pgtest.Start(t)
	s := StartServer(t, WithEnv("GITSERVER_DATABASE_URL="+url))
	admin := Cred{"admin", s.AdminPassword}
	if status, _ := s.Do("GET", "/readyz", Cred{}, nil); status != http.StatusOK {
		t.Fatalf("readyz: %d", status)
	}
	ctx := context.Background()
	name := url[strings.LastIndex(url, "/")+1 : strings.Index(url, "?")]
	other := strings.Replace(url, "/"+name+"?", "/postgres?", 1)
	exec := func(u, sql string) {
		t.Helper()
		conn, err := pgx.Connect(ctx, u)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec(other, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS false`)
	exec(other, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '`+name+`'`)
	if status, body := s.Do("GET", "/readyz", Cred{}, nil); status != http.StatusServiceUnavailable || strings.Contains(string(body), pgtest.Password) {
		t.Fatalf("readyz with the database refusing connections: %d %s, want 503", status, body)
	}
	exec(other, `ALTER DATABASE `+name+` ALLOW_CONNECTIONS true`)
	for i := 0; ; i++ {
		status, _ := s.Do("GET", "/readyz", Cred{}, nil)
		if status == http.StatusOK {
			break
		}
		if i == 100 {
			t.Fatalf("readyz after the database came back: %d", status)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status, body := s.Do("GET", "/api/v1/user", admin, nil); status != http.StatusOK {
		t.Fatalf("API after the database came back: %d %s", status, body)
	}
	if strings.Contains(s.Output(), pgtest.Password) {
		t.Fatalf("the node printed the database password:\n%s", s.Output())
	}
}
