package main

// End-to-end tests of build triggering, the build-system API, versions and
// crash reconciliation (docs/api.md §7, §8) with the real git client.

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// jsonNum reads a JSON number field.
func jsonNum(t *testing.T, m map[string]any, key string) int64 {
	t.Helper()
	f, ok := m[key].(float64)
	if !ok {
		t.Fatalf("field %q missing or not a number in %v", key, m)
	}
	return int64(f)
}

func jsonStr(m map[string]any, key string) string {
	s, _ := m[key].(string)
	return s
}

// claimBuild polls for a build as a worker; status is 200 or 204.
func claimBuild(t *testing.T, s *TestServer, tok, worker string, wait, lease int) (int, map[string]any) {
	t.Helper()
	return s.JSON("POST", "/api/v1/builds/claim", Cred{Secret: tok},
		map[string]any{"worker": worker, "wait_seconds": wait, "lease_seconds": lease})
}

func completeBuild(t *testing.T, s *TestServer, tok string, id int64, lease, status string) (int, map[string]any) {
	t.Helper()
	return s.JSON("POST", fmt.Sprintf("/api/v1/builds/%d/complete", id), Cred{Secret: tok},
		map[string]any{"lease_token": lease, "status": status, "message": "by test", "log_url": "https://ci.example/logs/1"})
}

// runBuild claims the next build (which must be for commit) and completes
// it with status.
func runBuild(t *testing.T, s *TestServer, tok, commit, status string) map[string]any {
	t.Helper()
	code, b := claimBuild(t, s, tok, "w", 30, 300)
	if code != http.StatusOK {
		t.Fatalf("claim: %d %v", code, b)
	}
	if jsonStr(b, "commit") != commit {
		t.Fatalf("claimed build of %s, want %s", jsonStr(b, "commit"), commit)
	}
	code, done := completeBuild(t, s, tok, jsonNum(t, b, "id"), jsonStr(b, "lease_token"), status)
	if code != http.StatusOK || jsonStr(done, "status") != status {
		t.Fatalf("complete: %d %v", code, done)
	}
	return done
}

func buildsFor(t *testing.T, s *TestServer, c Cred, owner, name, commit string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, b := range s.Builds(c, owner, name) {
		if jsonStr(b, "commit") == commit {
			out = append(out, b)
		}
	}
	return out
}

func TestBuildTriggerE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	worker := s.Token("admin", "builds")
	s.CreateRepo(admin, "admin", "trig", "restricted")
	url := s.RepoURL(admin, "admin", "trig")
	g := NewGitEnv(t)
	work := g.Init(url)

	// Three commits in one (first) push: one build of the head.
	g.Commit(work, "a", "1", "c1")
	g.Commit(work, "a", "2", "c2")
	h1 := g.Commit(work, "a", "3", "c3")
	g.Must(work, "push", "-q", "origin", "master")
	builds := s.Builds(admin, "admin", "trig")
	if len(builds) != 1 {
		t.Fatalf("%d builds after one push, want 1: %v", len(builds), builds)
	}
	b1 := builds[0]
	if jsonStr(b1, "commit") != h1 || jsonNum(t, b1, "commit_count") != 3 || jsonStr(b1, "previous_commit") != "" ||
		jsonStr(b1, "status") != "queued" || jsonStr(b1, "branch") != "master" || jsonStr(b1, "repo") != "admin/trig" ||
		jsonStr(b1, "pushed_by") != "admin" || jsonNum(t, b1, "attempt") != 1 || jsonStr(b1, "queued_at") == "" {
		t.Errorf("first build %v", b1)
	}
	if cu := jsonStr(b1, "clone_url"); !strings.HasSuffix(cu, "/git/admin/trig.git") {
		t.Errorf("clone_url %q", cu)
	}
	for _, k := range []string{"id", "repo", "clone_url", "branch", "commit", "previous_commit", "commit_count", "status",
		"attempt", "pushed_by", "queued_at", "started_at", "finished_at", "worker", "message", "log_url"} {
		if _, ok := b1[k]; !ok {
			t.Errorf("build object lacks %q", k)
		}
	}
	if _, ok := b1["lease_token"]; ok {
		t.Errorf("a listed build shows its lease token")
	}
	runBuild(t, s, worker, h1, "succeeded")

	// Two more commits: previous_commit is the old head, count 2.
	g.Commit(work, "a", "4", "c4")
	h2 := g.Commit(work, "a", "5", "c5")
	g.Must(work, "push", "-q", "origin", "master")
	got := buildsFor(t, s, admin, "admin", "trig", h2)
	if len(got) != 1 || jsonStr(got[0], "previous_commit") != h1 || jsonNum(t, got[0], "commit_count") != 2 {
		t.Fatalf("second push's builds %v; want one with previous %s and count 2", got, h1)
	}
	runBuild(t, s, worker, h2, "succeeded")

	// Other branches and tags queue nothing.
	n := len(s.Builds(admin, "admin", "trig"))
	g.Must(work, "checkout", "-q", "-b", "feature")
	g.Commit(work, "f", "1", "f1")
	g.Must(work, "tag", "v1")
	g.Must(work, "tag", "-a", "-m", "annotated", "v1a", h1)
	g.Must(work, "push", "-q", "origin", "feature", "v1", "v1a")
	g.Must(work, "push", "-q", "origin", ":feature")
	if m := len(s.Builds(admin, "admin", "trig")); m != n {
		t.Errorf("pushes to a branch and tags queued %d builds", m-n)
	}
	// Pushing master unchanged (with a tag) queues nothing either.
	g.Must(work, "checkout", "-q", "master")
	g.Must(work, "tag", "v2")
	g.Must(work, "push", "-q", "origin", "master", "v2")
	if m := len(s.Builds(admin, "admin", "trig")); m != n {
		t.Errorf("a push that did not move master queued %d builds", m-n)
	}

	// Two quick pushes: one queued build; the older superseded, and the
	// queued one covers both pushes' commits.
	q1 := g.Commit(work, "a", "6", "c6")
	g.Must(work, "push", "-q", "origin", "master")
	g.Commit(work, "a", "7", "c7")
	q2 := g.Commit(work, "a", "8", "c8")
	g.Must(work, "push", "-q", "origin", "master")
	sup := buildsFor(t, s, admin, "admin", "trig", q1)
	cur := buildsFor(t, s, admin, "admin", "trig", q2)
	if len(sup) != 1 || jsonStr(sup[0], "status") != "superseded" || jsonStr(sup[0], "finished_at") == "" {
		t.Errorf("older quick push: %v, want one superseded build", sup)
	}
	if len(cur) != 1 || jsonStr(cur[0], "status") != "queued" || jsonStr(cur[0], "previous_commit") != h2 || jsonNum(t, cur[0], "commit_count") != 3 {
		t.Errorf("newer quick push: %v, want queued, previous %s, count 3", cur, h2)
	}
	code, b := s.Do("GET", "/api/v1/repos/admin/trig/builds?status=queued", admin, nil)
	var queued []map[string]any
	json.Unmarshal(b, &queued)
	if code != http.StatusOK || len(queued) != 1 {
		t.Errorf("queued builds: %d %s; want exactly one", code, b)
	}

	// A claimed build is not superseded by a newer push.
	code, running := claimBuild(t, s, worker, "w1", 0, 300)
	if code != http.StatusOK || jsonStr(running, "commit") != q2 {
		t.Fatalf("claim: %d %v", code, running)
	}
	q3 := g.Commit(work, "a", "9", "c9")
	g.Must(work, "push", "-q", "origin", "master")
	code, after := s.JSON("GET", fmt.Sprintf("/api/v1/builds/%d", jsonNum(t, running, "id")), admin, nil)
	if code != http.StatusOK || jsonStr(after, "status") != "running" || jsonStr(after, "worker") != "w1" {
		t.Errorf("claimed build after a newer push: %d %v", code, after)
	}
	nb := buildsFor(t, s, admin, "admin", "trig", q3)
	if len(nb) != 1 || jsonStr(nb[0], "status") != "queued" || jsonStr(nb[0], "previous_commit") != q2 || jsonNum(t, nb[0], "commit_count") != 1 {
		t.Errorf("push after a claim: %v; want queued, previous %s, count 1", nb, q2)
	}
	// The running build can still be completed.
	if code, done := completeBuild(t, s, worker, jsonNum(t, running, "id"), jsonStr(running, "lease_token"), "failed"); code != http.StatusOK {
		t.Errorf("complete after a newer push: %d %v", code, done)
	}
}

func TestBuildWorkerAPIE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	worker := s.Token("admin", "builds")
	s.CreateRepo(admin, "admin", "api", "restricted")
	url := s.RepoURL(admin, "admin", "api")
	g := NewGitEnv(t)
	work := g.Init(url)

	t.Run("scope", func(t *testing.T) {
		plain := s.Token("admin") // repo:read repo:write
		code, m := s.JSON("POST", "/api/v1/builds/claim", Cred{Secret: plain}, map[string]any{"worker": "w", "wait_seconds": 0})
		if code != http.StatusForbidden {
			t.Errorf("claim without the builds scope: %d %v, want 403", code, m)
		}
		code, _ = s.JSON("POST", "/api/v1/builds/claim", Cred{}, map[string]any{"worker": "w"})
		if code != http.StatusUnauthorized {
			t.Errorf("anonymous claim: %d, want 401", code)
		}
		code, m = s.JSON("POST", "/api/v1/builds/claim", Cred{Secret: worker}, map[string]any{"wait_seconds": 0})
		if code != http.StatusBadRequest || m["error"] == nil {
			t.Errorf("claim without a worker name: %d %v, want 400 with an error object", code, m)
		}
		code, _ = s.JSON("POST", "/api/v1/builds/claim", Cred{Secret: worker}, `{"worker":`)
		if code != http.StatusBadRequest {
			t.Errorf("claim with broken JSON: %d, want 400", code)
		}
	})

	t.Run("204 when nothing is queued", func(t *testing.T) {
		code, b := s.Do("POST", "/api/v1/builds/claim", Cred{Secret: worker}, map[string]any{"worker": "w", "wait_seconds": 1})
		if code != http.StatusNoContent || len(b) != 0 {
			t.Errorf("claim on an empty queue: %d %q, want 204", code, b)
		}
	})

	var head string
	t.Run("long poll returns once a push is done", func(t *testing.T) {
		type result struct {
			code int
			b    map[string]any
		}
		res := make(chan result, 1)
		go func() {
			code, b := s.JSON("POST", "/api/v1/builds/claim", Cred{Secret: worker},
				map[string]any{"worker": "poller", "wait_seconds": 60, "lease_seconds": 1})
			res <- result{code, b}
		}()
		g.Commit(work, "a", "1", "c1")
		head = g.Commit(work, "a", "2", "c2")
		g.Must(work, "push", "-q", "origin", "master")
		select {
		case r := <-res:
			if r.code != http.StatusOK || jsonStr(r.b, "commit") != head || jsonStr(r.b, "status") != "running" ||
				jsonStr(r.b, "lease_token") == "" || jsonStr(r.b, "worker") != "poller" || jsonStr(r.b, "started_at") == "" {
				t.Fatalf("long-poll claim: %d %v", r.code, r.b)
			}
		case <-time.After(90 * time.Second):
			t.Fatal("long-poll claim never returned")
		}
	})

	builds := buildsFor(t, s, admin, "admin", "api", head)
	if len(builds) != 1 {
		t.Fatalf("builds of %s: %v", head, builds)
	}
	id := jsonNum(t, builds[0], "id")
	buildPath := fmt.Sprintf("/api/v1/builds/%d", id)

	t.Run("lease expiry re-queues, then fails after 3 attempts", func(t *testing.T) {
		// The first lease (1s, from the long poll) runs out: the next claim
		// gets attempt 2 of the same build.
		var tokens []string
		for attempt := 2; attempt <= 3; attempt++ {
			code, b := claimBuild(t, s, worker, fmt.Sprintf("w%d", attempt), 60, 1)
			if code != http.StatusOK || jsonNum(t, b, "id") != id || jsonNum(t, b, "attempt") != int64(attempt) {
				t.Fatalf("re-claim %d: %d %v", attempt, code, b)
			}
			tokens = append(tokens, jsonStr(b, "lease_token"))
		}
		if tokens[0] == tokens[1] {
			t.Error("a re-claim reused the lease token")
		}
		// The third lease runs out too: the build fails. Claims drive the
		// expiry; poll (bounded) until it shows.
		deadline := time.Now().Add(60 * time.Second)
		for {
			code, b := s.JSON("GET", buildPath, Cred{Secret: worker}, nil)
			if code != http.StatusOK {
				t.Fatalf("get build: %d %v", code, b)
			}
			if jsonStr(b, "status") == "failed" {
				if jsonNum(t, b, "attempt") != 3 || jsonStr(b, "finished_at") == "" || jsonStr(b, "message") == "" {
					t.Errorf("failed build %v", b)
				}
				break
			}
			if jsonStr(b, "status") != "running" {
				t.Fatalf("build went %s, want running until it fails", jsonStr(b, "status"))
			}
			if time.Now().After(deadline) {
				t.Fatalf("build still %v after its last lease ran out", b)
			}
			if code, b := claimBuild(t, s, worker, "w4", 1, 1); code != http.StatusNoContent {
				t.Fatalf("claim while the only build is failing: %d %v", code, b)
			}
		}
		// Stale tokens of expired leases get 409.
		for _, tok := range tokens {
			code, m := s.JSON("POST", buildPath+"/heartbeat", Cred{Secret: worker}, map[string]any{"lease_token": tok})
			if code != http.StatusConflict || m["error"] == nil {
				t.Errorf("heartbeat with a stale lease: %d %v, want 409", code, m)
			}
			if code, m := completeBuild(t, s, worker, id, tok, "succeeded"); code != http.StatusConflict {
				t.Errorf("complete with a stale lease: %d %v, want 409", code, m)
			}
		}
		if _, b := s.JSON("GET", buildPath, admin, nil); jsonStr(b, "status") != "failed" {
			t.Errorf("stale completes changed the build: %v", b)
		}
	})

	t.Run("heartbeat, stale token and complete", func(t *testing.T) {
		h := g.Commit(work, "a", "3", "c3")
		g.Must(work, "push", "-q", "origin", "master")
		code, b := claimBuild(t, s, worker, "w", 30, 300)
		if code != http.StatusOK || jsonStr(b, "commit") != h {
			t.Fatalf("claim: %d %v", code, b)
		}
		bid, tok := jsonNum(t, b, "id"), jsonStr(b, "lease_token")
		p := fmt.Sprintf("/api/v1/builds/%d", bid)
		code, hb := s.JSON("POST", p+"/heartbeat", Cred{Secret: worker}, map[string]any{"lease_token": tok})
		if code != http.StatusOK || jsonStr(hb, "status") != "running" {
			t.Errorf("heartbeat: %d %v", code, hb)
		}
		if _, ok := hb["lease_token"]; ok {
			t.Errorf("heartbeat answer repeats the lease token")
		}
		code, _ = s.JSON("POST", p+"/heartbeat", Cred{Secret: worker}, map[string]any{"lease_token": tok + "x"})
		if code != http.StatusConflict {
			t.Errorf("heartbeat with a wrong token: %d, want 409", code)
		}
		if code, _ := completeBuild(t, s, worker, bid, "", "succeeded"); code != http.StatusConflict {
			t.Errorf("complete without a token: %d, want 409", code)
		}
		if code, _ := completeBuild(t, s, worker, bid, tok, "done"); code != http.StatusBadRequest {
			t.Errorf("complete with a bad status: %d, want 400", code)
		}
		if code, _ := completeBuild(t, s, s.Token("admin"), bid, tok, "succeeded"); code != http.StatusForbidden {
			t.Errorf("complete without the builds scope: %d, want 403", code)
		}
		code, done := completeBuild(t, s, worker, bid, tok, "succeeded")
		if code != http.StatusOK || jsonStr(done, "status") != "succeeded" || jsonStr(done, "log_url") != "https://ci.example/logs/1" ||
			jsonStr(done, "message") != "by test" || jsonStr(done, "finished_at") == "" {
			t.Errorf("complete: %d %v", code, done)
		}
		if code, _ := completeBuild(t, s, worker, bid, tok, "failed"); code != http.StatusConflict {
			t.Errorf("second complete: %d, want 409", code)
		}
		if code, _ := s.JSON("POST", "/api/v1/builds/999999/heartbeat", Cred{Secret: worker}, map[string]any{"lease_token": tok}); code != http.StatusNotFound {
			t.Errorf("heartbeat of a missing build: %d, want 404", code)
		}
	})

	t.Run("get build and status filter", func(t *testing.T) {
		code, b := s.JSON("GET", buildPath, admin, nil)
		if code != http.StatusOK || jsonNum(t, b, "id") != id || jsonStr(b, "repo") != "admin/api" || jsonStr(b, "commit") != head {
			t.Errorf("GET build: %d %v", code, b)
		}
		if code, _ := s.JSON("GET", "/api/v1/builds/424242", admin, nil); code != http.StatusNotFound {
			t.Errorf("GET missing build: %d, want 404", code)
		}
		// Someone without access to the repository does not see its build.
		bobPw := s.CreateUser("bob", false)
		if code, _ := s.JSON("GET", buildPath, Cred{"bob", bobPw}, nil); code != http.StatusNotFound {
			t.Errorf("GET a restricted repo's build as another user: %d, want 404", code)
		}
		for status, want := range map[string]int{"failed": 1, "succeeded": 1, "queued": 0, "running": 0} {
			code, raw := s.Do("GET", "/api/v1/repos/admin/api/builds?status="+status, admin, nil)
			var list []map[string]any
			if err := json.Unmarshal(raw, &list); code != http.StatusOK || err != nil {
				t.Fatalf("?status=%s: %d %s", status, code, raw)
			}
			if len(list) != want {
				t.Errorf("?status=%s: %d builds, want %d", status, len(list), want)
			}
			for _, b := range list {
				if jsonStr(b, "status") != status {
					t.Errorf("?status=%s returned a %s build", status, jsonStr(b, "status"))
				}
			}
		}
		all := s.Builds(admin, "admin", "api")
		if len(all) != 2 || jsonNum(t, all[0], "id") <= jsonNum(t, all[1], "id") {
			t.Errorf("builds not newest first: %v", all)
		}
		code, m := s.JSON("GET", "/api/v1/repos/admin/api/builds?status=bogus", admin, nil)
		if code != http.StatusBadRequest || m["error"] == nil {
			t.Errorf("?status=bogus: %d %v, want 400", code, m)
		}
	})
}

func TestBuildConcurrentClaimersE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	worker := s.Token("admin", "builds")
	const repos, pushes, claimers = 4, 3, 6

	var mu sync.Mutex
	claimedBy := map[int64]string{}
	var dups []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < claimers; w++ {
		wg.Add(1)
		go func(name string) {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				code, b := s.JSON("POST", "/api/v1/builds/claim", Cred{Secret: worker},
					map[string]any{"worker": name, "wait_seconds": 2, "lease_seconds": 300})
				if code == http.StatusNoContent {
					continue
				}
				if code != http.StatusOK {
					t.Errorf("%s claim: %d %v", name, code, b)
					return
				}
				id := int64(b["id"].(float64))
				mu.Lock()
				if other, ok := claimedBy[id]; ok {
					dups = append(dups, fmt.Sprintf("build %d claimed by %s and %s", id, other, name))
				}
				claimedBy[id] = name
				mu.Unlock()
				code, done := s.JSON("POST", fmt.Sprintf("/api/v1/builds/%d/complete", id), Cred{Secret: worker},
					map[string]any{"lease_token": b["lease_token"], "status": "succeeded"})
				if code != http.StatusOK {
					t.Errorf("%s complete %d: %d %v", name, id, code, done)
				}
			}
		}(fmt.Sprintf("w%d", w))
	}

	// Several repositories pushed in parallel, several times each.
	heads := make([][]string, repos)
	var pw sync.WaitGroup
	for r := 0; r < repos; r++ {
		name := fmt.Sprintf("cc%d", r)
		s.CreateRepo(admin, "admin", name, "restricted")
		pw.Add(1)
		go func(r int, name string) {
			defer pw.Done()
			g := NewGitEnv(t)
			work := g.Init(s.RepoURL(admin, "admin", name))
			for p := 0; p < pushes; p++ {
				heads[r] = append(heads[r], g.Commit(work, "a", fmt.Sprint(p), fmt.Sprintf("c%d", p)))
				if out, err := g.Run(work, "push", "-q", "origin", "master"); err != nil {
					t.Errorf("push %s: %v\n%s", name, err, out)
					return
				}
			}
		}(r, name)
	}
	pw.Wait()

	// Wait (bounded) until every repository's builds are finished.
	deadline := time.Now().Add(120 * time.Second)
	for {
		open := 0
		for r := 0; r < repos; r++ {
			for _, b := range s.Builds(admin, "admin", fmt.Sprintf("cc%d", r)) {
				if st := jsonStr(b, "status"); st == "queued" || st == "running" {
					open++
				}
			}
		}
		if open == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d builds still open", open)
		}
		time.Sleep(100 * time.Millisecond)
	}
	close(stop)
	wg.Wait()

	if len(dups) > 0 {
		t.Fatalf("builds claimed twice:\n%s", strings.Join(dups, "\n"))
	}
	for r := 0; r < repos; r++ {
		name := fmt.Sprintf("cc%d", r)
		builds := s.Builds(admin, "admin", name)
		lastHead := heads[r][len(heads[r])-1]
		sawHead := false
		for _, b := range builds {
			id := jsonNum(t, b, "id")
			_, claimed := claimedBy[id]
			switch st := jsonStr(b, "status"); {
			case st == "succeeded" && claimed:
			case st == "superseded" && !claimed:
			default:
				t.Errorf("%s build %d: %s, claimed=%v", name, id, st, claimed)
			}
			if jsonStr(b, "commit") == lastHead {
				sawHead = true
				if jsonStr(b, "status") != "succeeded" {
					t.Errorf("%s: the final head's build is %s", name, jsonStr(b, "status"))
				}
			}
		}
		if !sawHead {
			t.Errorf("%s: no build of the final head %s", name, lastHead)
		}
	}
}

// gitIn runs git against a bare repository on the server's disk.
func gitIn(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("git", append([]string{"--git-dir", dir}, args...)...)
	cmd.Env = append(cmd.Environ(), "GIT_CONFIG_NOSYSTEM=1")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func TestVersionsE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	worker := s.Token("admin", "builds")
	code, repo := s.JSON("POST", "/api/v1/repos", admin,
		map[string]any{"owner": "admin", "name": "rel", "visibility": "restricted", "default_branch": "release"})
	if code != http.StatusCreated || jsonStr(repo, "default_branch") != "release" {
		t.Fatalf("create repo: %d %v", code, repo)
	}
	url := s.RepoURL(admin, "admin", "rel")
	g := NewGitEnv(t)
	work := g.Init(url)
	g.Must(work, "checkout", "-q", "-b", "release")
	publish := func(id int64, bump string) (int, map[string]any) {
		return s.JSON("POST", "/api/v1/repos/admin/rel/versions", admin,
			map[string]any{"build_id": id, "bump": bump, "release_notes": "notes for " + bump})
	}

	// A pushed commit, built and published.
	c1 := g.Commit(work, "a", "1", "c1")
	g.Must(work, "push", "-q", "origin", "release")
	b1 := runBuild(t, s, worker, c1, "succeeded")
	code, v := publish(jsonNum(t, b1, "id"), "minor")
	if code != http.StatusCreated || jsonStr(v, "version") != "0.1.0" || jsonStr(v, "commit") != c1 ||
		jsonNum(t, v, "build_id") != jsonNum(t, b1, "id") || jsonStr(v, "release_notes") != "notes for minor" ||
		jsonStr(v, "published_by") != "admin" || jsonStr(v, "published_at") == "" {
		t.Fatalf("publish: %d %v", code, v)
	}
	// The same build again: conflict.
	if code, m := publish(jsonNum(t, b1, "id"), "patch"); code != http.StatusConflict {
		t.Errorf("publishing a build twice: %d %v, want 409", code, m)
	}

	// A failed build and a queued one cannot be published.
	c2 := g.Commit(work, "a", "2", "c2")
	g.Must(work, "push", "-q", "origin", "release")
	failed := runBuild(t, s, worker, c2, "failed")
	if code, m := publish(jsonNum(t, failed, "id"), "minor"); code != http.StatusConflict || m["error"] == nil {
		t.Errorf("publishing a failed build: %d %v, want 409", code, m)
	}
	c3 := g.Commit(work, "a", "3", "c3")
	g.Must(work, "push", "-q", "origin", "release")
	q := buildsFor(t, s, admin, "admin", "rel", c3)
	if len(q) != 1 || jsonStr(q[0], "status") != "queued" {
		t.Fatalf("build of c3: %v", q)
	}
	if code, m := publish(jsonNum(t, q[0], "id"), "minor"); code != http.StatusConflict {
		t.Errorf("publishing a queued build: %d %v, want 409", code, m)
	}
	if code, _ := publish(jsonNum(t, q[0], "id"), "huge"); code != http.StatusBadRequest {
		t.Errorf("publishing with a bad bump: %d, want 400", code)
	}
	if code, _ := publish(987654, "minor"); code != http.StatusNotFound {
		t.Errorf("publishing a missing build: %d, want 404", code)
	}
	b3 := runBuild(t, s, worker, c3, "succeeded")

	// More versions: major, then patch, then minor.
	seq := []struct{ bump, want string }{{"major", "1.0.0"}, {"patch", "1.0.1"}, {"minor", "1.1.0"}}
	ids := []int64{jsonNum(t, b3, "id")}
	for i := 1; i < len(seq); i++ {
		c := g.Commit(work, "a", fmt.Sprint(10+i), fmt.Sprintf("c1%d", i))
		g.Must(work, "push", "-q", "origin", "release")
		ids = append(ids, jsonNum(t, runBuild(t, s, worker, c, "succeeded"), "id"))
	}
	for i, st := range seq {
		code, v := publish(ids[i], st.bump)
		if code != http.StatusCreated || jsonStr(v, "version") != st.want {
			t.Errorf("publish %s: %d %v, want %s", st.bump, code, v, st.want)
		}
	}
	code, raw := s.Do("GET", "/api/v1/repos/admin/rel/versions", admin, nil)
	var versions []map[string]any
	if err := json.Unmarshal(raw, &versions); code != http.StatusOK || err != nil {
		t.Fatalf("list versions: %d %s", code, raw)
	}
	var names []string
	for _, v := range versions {
		names = append(names, jsonStr(v, "version"))
	}
	if strings.Join(names, " ") != "1.1.0 1.0.1 1.0.0 0.1.0" {
		t.Errorf("versions %v, want newest first: 1.1.0 1.0.1 1.0.0 0.1.0", names)
	}

	// Pins are never advertised to clients, over any protocol version.
	for _, proto := range []string{"0", "1", "2"} {
		for ref := range lsRemoteRefs(t, g, url, "-c", "protocol.version="+proto) {
			if strings.HasPrefix(ref, "refs/gitserver/") {
				t.Errorf("ls-remote (protocol %s) shows %s", proto, ref)
			}
		}
	}
	mirror := filepath.Join(t.TempDir(), "mirror.git")
	g.Must("", "clone", "-q", "--mirror", url, mirror)
	if out := g.Must(mirror, "for-each-ref", "refs/gitserver/"); strings.TrimSpace(out) != "" {
		t.Errorf("a mirror clone fetched %s", out)
	}

	// A published commit stays reachable when every branch containing it
	// is gone and gc prunes. A branch deletion by push (side) and, since the
	// default branch cannot be deleted by a push, by hand on disk.
	g.Must(work, "push", "-q", "origin", c1+":refs/heads/side")
	g.Must(work, "push", "-q", "origin", ":side")
	dir := repoDirOf(t, filepath.Join(s.Data, "repos"))
	if out, err := gitIn(t, dir, "cat-file", "-e", c1+"^{commit}"); err != nil {
		t.Fatalf("repository dir %s: %v %s", dir, err, out)
	}
	// An unpublished commit on a deleted branch: the control that shows gc
	// really prunes here.
	g.Must(work, "checkout", "-q", "-b", "scratch")
	orphan := g.Commit(work, "scratch", "x", "unpublished")
	g.Must(work, "push", "-q", "origin", "scratch")
	g.Must(work, "push", "-q", "origin", ":scratch")
	for _, args := range [][]string{
		{"update-ref", "-d", "refs/heads/release"},
		{"reflog", "expire", "--expire=now", "--expire-unreachable=now", "--all"},
		{"gc", "--quiet", "--prune=now"},
	} {
		if out, err := gitIn(t, dir, args...); err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
	}
	if out, err := gitIn(t, dir, "for-each-ref", "refs/heads/"); err != nil || out != "" {
		t.Fatalf("branches left: %q %v", out, err)
	}
	if _, err := gitIn(t, dir, "cat-file", "-e", orphan+"^{commit}"); err == nil {
		t.Fatalf("gc kept an unreferenced commit: the pin check below would prove nothing")
	}
	for i, c := range []string{c1, c3} {
		if out, err := gitIn(t, dir, "cat-file", "-e", c+"^{commit}"); err != nil {
			t.Errorf("published commit %d (%s) lost after branch deletion and gc: %v %s", i, c, err, out)
		}
	}
	// c2 was never published, but it is history of the pinned c3.
	if _, err := gitIn(t, dir, "cat-file", "-e", c2+"^{commit}"); err != nil {
		t.Errorf("c2, an ancestor of a pinned commit, was lost")
	}
	// A restart re-pins from the store (and leaves the pins hidden).
	if out, err := gitIn(t, dir, "update-ref", "-d", "refs/gitserver/pins/"+c1); err != nil {
		t.Fatalf("drop pin: %v %s", err, out)
	}
	s.Restart()
	if out, err := gitIn(t, dir, "rev-parse", "--verify", "refs/gitserver/pins/"+c1); err != nil || out != c1 {
		t.Errorf("pin of %s not restored at start-up: %q %v", c1, out, err)
	}
}

func TestCrashBeforeEnqueueReconcileE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithFault("crash-before-enqueue"))
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "crash", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "crash"))
	g.Commit(work, "a", "1", "c1")
	head := g.Commit(work, "a", "2", "c2")
	// The daemon dies when the post-receive hook reaches it: the push may
	// well report an error.
	out, err := g.Run(work, "push", "origin", "master")
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		t.Fatalf("server did not crash at the fault (push err %v):\n%s\n%s", err, out, s.Output())
	}
	if !strings.Contains(s.Output(), "fault injection") {
		t.Fatalf("server stopped, but not at the injected fault:\n%s", s.Output())
	}

	s2 := StartServer(t, WithData(s.Data))
	admin = Cred{"admin", s2.AdminPassword}
	url := s2.RepoURL(admin, "admin", "crash")
	if got := lsRemoteRefs(t, g, url)["refs/heads/master"]; got != head {
		t.Fatalf("master = %q after the crash, want the pushed %s", got, head)
	}
	builds := s2.Builds(admin, "admin", "crash")
	if len(builds) != 1 || jsonStr(builds[0], "commit") != head || jsonStr(builds[0], "status") != "queued" ||
		jsonNum(t, builds[0], "commit_count") != 2 {
		t.Fatalf("builds after reconcile: %v; want exactly one queued build of %s covering 2 commits", builds, head)
	}
	// Restarting again owes nothing more.
	s2.Restart()
	if n := len(s2.Builds(Cred{"admin", s2.AdminPassword}, "admin", "crash")); n != 1 {
		t.Errorf("%d builds after a second restart, want 1", n)
	}
}
