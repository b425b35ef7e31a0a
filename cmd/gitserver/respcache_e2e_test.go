package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"gitserver/gitserver/packcache"
)

// The response cache (issue 15) answers identical clone requests over
// smart HTTP by streaming a file. It keeps a key from its second request
// on, so a series of identical clones goes: uncached, produced (written),
// then hits; upload-pack runs without the pack-objects hook for them.

func respStats(s *TestServer) packcache.Stats {
	return packcache.ReadStats(filepath.Join(s.Data, "cache", "responses"))
}

// TestResponseCachePushBetweenClones: identical clones are served from the
// response cache until a push moves the refs; the next clone has the new
// commit (not a stale hit), and the series starts again. A push to another
// branch also ends the hits of a shallow clone of HEAD, whose wants did not
// change (the key holds the refs' version, not just the wants).
func TestResponseCachePushBetweenClones(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "rc", "restricted")
	url := s.RepoURL(admin, "admin", "rc")
	g := NewGitEnv(t)
	work := g.Init(url)
	for i := range 20 {
		g.Commit(work, fmt.Sprintf("d%d/f.txt", i%3), strings.Repeat("line\n", 50+i), "commit")
	}
	g.Must(work, "tag", "-a", "-m", "release", "v1")
	g.Must(work, "push", "-q", "origin", "master", "v1")

	var heads []string
	for range 4 {
		c := g.Clone(url, "--no-local", "--bare")
		g.Must(c, "fsck", "--strict", "--no-dangling")
		heads = append(heads, strings.TrimSpace(g.Must(c, "rev-parse", "master", "v1")))
	}
	if st := respStats(s); st.Uncached != 1 || st.Misses != 1 || st.Hits != 2 {
		t.Fatalf("after 4 identical clones: response cache %+v, want 1 uncached, 1 miss, 2 hits", st)
	}
	if st := packcache.ReadStats(filepath.Join(s.Data, "cache", "packs")); st != (packcache.Stats{}) {
		t.Fatalf("the pack-objects hook ran for clones the response cache answers: %+v", st)
	}
	for _, h := range heads[1:] {
		if h != heads[0] {
			t.Fatalf("clones disagree: %q", heads)
		}
	}

	// A push between two identical clones: the second has the new refs.
	newHead := g.Commit(work, "new.txt", "new\n", "after")
	g.Must(work, "tag", "v2")
	g.Must(work, "push", "-q", "origin", "master", "v2")
	c := g.Clone(url, "--no-local", "--bare")
	g.Must(c, "fsck", "--strict", "--no-dangling")
	if got := strings.TrimSpace(g.Must(c, "rev-parse", "master")); got != newHead {
		t.Fatalf("clone after push has master %s, want %s", got, newHead)
	}
	if got := strings.TrimSpace(g.Must(c, "rev-parse", "v2^{commit}")); got != newHead {
		t.Fatalf("clone after push has v2 %s, want %s", got, newHead)
	}
	if st := respStats(s); st.Hits != 2 || st.Uncached != 2 {
		t.Fatalf("clone after push: response cache %+v, want no new hit", st)
	}

	// Shallow clones of HEAD: hits, until a push to another branch.
	shallow := func() {
		c := g.Clone(url, "--depth", "1", "--no-local")
		if n := strings.TrimSpace(g.Must(c, "rev-list", "--count", "HEAD")); n != "1" {
			t.Fatalf("shallow clone has %s commits", n)
		}
		g.Must(c, "fsck")
		if got := strings.TrimSpace(g.Must(c, "rev-parse", "HEAD")); got != newHead {
			t.Fatalf("shallow clone at %s, want %s", got, newHead)
		}
	}
	before := respStats(s)
	for range 4 {
		shallow()
	}
	if st := respStats(s); st.Hits != before.Hits+2 {
		t.Fatalf("4 identical shallow clones: response cache %+v (before %+v), want two more hits", st, before)
	}
	g.Must(work, "checkout", "-q", "-b", "other")
	g.Commit(work, "other.txt", "other\n", "other branch")
	g.Must(work, "push", "-q", "origin", "other")
	before = respStats(s)
	shallow()
	if st := respStats(s); st.Hits != before.Hits || st.Uncached != before.Uncached+1 {
		t.Fatalf("shallow clone after a push to another branch: response cache %+v (before %+v), want a first sighting, not a hit", st, before)
	}

	// Protocol v0 has its own entries, and its hits are valid clones too.
	before = respStats(s)
	for range 4 {
		v0 := filepath.Join(t.TempDir(), "v0")
		g.Must("", "-c", "protocol.version=0", "clone", "-q", "--bare", url, v0)
		g.Must(v0, "fsck", "--strict", "--no-dangling")
		if got := strings.TrimSpace(g.Must(v0, "rev-parse", "master")); got != newHead {
			t.Fatalf("v0 clone has master %s, want %s", got, newHead)
		}
	}
	if st := respStats(s); st.Hits != before.Hits+2 {
		t.Fatalf("4 identical v0 clones: response cache %+v (before %+v), want two more hits", st, before)
	}

	status, body := s.Do("GET", "/metrics", Cred{}, nil)
	if status != 200 || !strings.Contains(string(body), `gitserver_response_cache_requests_total{result="hit"}`) {
		t.Fatalf("/metrics: %d, no response cache counters", status)
	}
}

// TestResponseCacheConcurrentPushesNeverMixRefs: clones racing a stream of
// pushes (new commits, tags, a branch moved by force, a branch deleted)
// are all complete and consistent: every ref a clone got points at objects
// its pack carried (git fsck checks connectivity from every ref).
func TestResponseCacheConcurrentPushesNeverMixRefs(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "race", "restricted")
	url := s.RepoURL(admin, "admin", "race")
	g := NewGitEnv(t)
	work := g.Init(url)
	for i := range 10 {
		g.Commit(work, "f.txt", strings.Repeat("x\n", i+1), "c")
	}
	g.Must(work, "push", "-q", "origin", "master")
	// Moving the branch "moving" by force needs non-fast-forward pushes,
	// which the server refuses; it is deleted and recreated instead.
	done := make(chan struct{})
	var pushErr error
	go func() {
		defer close(done)
		for i := range 12 {
			head := g.Commit(work, fmt.Sprintf("p%d.txt", i), fmt.Sprintf("push %d\n", i), fmt.Sprintf("push %d", i))
			args := []string{"push", "-q", "origin", "master", fmt.Sprintf("%s:refs/tags/t%d", head, i)}
			if i%3 == 0 {
				args = append(args, fmt.Sprintf("%s:refs/heads/b%d", head, i))
			}
			if i%3 == 1 && i > 3 {
				args = append(args, ":refs/heads/b"+fmt.Sprint(i-1))
			}
			if out, err := g.Run(work, args...); err != nil {
				pushErr = fmt.Errorf("push %d: %v: %s", i, err, out)
				return
			}
			time.Sleep(150 * time.Millisecond)
		}
	}()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var failures []string
	clones := 0
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-done:
					if i >= 3 {
						return
					}
				default:
				}
				dir := filepath.Join(t.TempDir(), fmt.Sprintf("c%d-%d", w, i))
				args := []string{"clone", "-q", "--bare", "--no-local", url, dir}
				if i%2 == 1 {
					args = []string{"clone", "-q", "--depth", "1", "--no-local", url, dir}
				}
				out, err := g.Run("", args...)
				if err == nil {
					out, err = g.Run(dir, "fsck", "--strict", "--no-dangling")
				}
				if err == nil {
					// Every ref resolves to a commit whose tree is complete.
					out, err = g.Run(dir, "for-each-ref", "--format=%(objectname) %(refname)")
				}
				mu.Lock()
				clones++
				if err != nil {
					failures = append(failures, fmt.Sprintf("clone %d-%d: %v: %s", w, i, err, out))
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if pushErr != nil {
		t.Fatal(pushErr)
	}
	if len(failures) > 0 {
		t.Fatalf("%d of %d clones failed:\n%s", len(failures), clones, strings.Join(failures, "\n"))
	}
	st := respStats(s)
	t.Logf("%d clones; response cache %+v", clones, st)
	if st.Misses == 0 {
		t.Fatalf("no response was ever cached (%+v): the test did not exercise the cache", st)
	}
	// Once the pushes are over, a clone has exactly the final refs.
	c := g.Clone(url, "--no-local", "--bare", "--mirror")
	g.Must(c, "fsck", "--strict", "--no-dangling")
	want := g.Must(work, "ls-remote", "origin")
	got := g.Must(c, "for-each-ref", "--format=%(objectname)\t%(refname)")
	if !sameLines(refLines(want), got) {
		t.Fatalf("final clone refs:\n%s\nserver:\n%s", got, want)
	}
}

// refLines drops HEAD and peeled lines from ls-remote output.
func refLines(s string) string {
	var out []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		if strings.HasSuffix(l, "\tHEAD") || strings.HasSuffix(l, "^{}") {
			continue
		}
		out = append(out, l)
	}
	return strings.Join(out, "\n")
}

func sameLines(a, b string) bool {
	split := func(s string) map[string]bool {
		m := map[string]bool{}
		for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
			m[strings.TrimSpace(l)] = true
		}
		return m
	}
	x, y := split(a), split(b)
	if len(x) != len(y) {
		return false
	}
	for k := range x {
		if !y[k] {
			return false
		}
	}
	return true
}

// TestResponseCacheNeverServesWithoutAccess: once a restricted
// repository's clone response is cached (and served as a hit to its
// owner), the very same request without credentials, or from a user who
// may not read the repository, gets no byte of it.
func TestResponseCacheNeverServesWithoutAccess(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithArgs("--anonymous-read"))
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "secret", "restricted")
	s.CreateRepo(admin, "admin", "open", "public")
	url := s.RepoURL(admin, "admin", "secret")
	g := NewGitEnv(t)
	work := g.Init(url)
	head := g.Commit(work, "secret.txt", "top secret\n", "secret")
	g.Must(work, "push", "-q", "origin", "master")
	s.CreateUser("eve", false)
	eve := Cred{"eve", "pw-eve-secret"}

	pkt := func(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }
	body := pkt("command=fetch\n") + pkt("agent=git/2.39.5\n") + pkt("object-format=sha1\n") + "0001" +
		pkt("no-progress\n") + pkt("want "+head+"\n") + pkt("done\n") + "0000"
	post := func(c Cred, repo string) (int, []byte) {
		req, _ := http.NewRequest("POST", s.URL+"/git/admin/"+repo+".git/git-upload-pack", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
		req.Header.Set("Git-Protocol", "version=2")
		if c.User != "" {
			req.SetBasicAuth(c.User, c.Secret)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	for i := range 4 {
		status, b := post(admin, "secret")
		if status != 200 || !bytes.Contains(b, []byte("PACK")) {
			t.Fatalf("authorized fetch %d: %d %q", i, status, b[:min(len(b), 200)])
		}
	}
	if st := respStats(s); st.Hits != 2 {
		t.Fatalf("response cache %+v, want the 3rd and 4th authorized fetches to be hits", st)
	}
	for _, c := range []Cred{{}, eve, {"eve", "wrong"}} {
		status, b := post(c, "secret")
		if status == 200 || bytes.Contains(b, []byte("PACK")) || bytes.Contains(b, []byte("top secret")) {
			t.Fatalf("fetch as %q: %d, %d bytes: got the cached response", c.User, status, len(b))
		}
	}
	if _, err := g.Run("", "clone", "-q", s.RepoURL(Cred{}, "admin", "secret"), filepath.Join(t.TempDir(), "anon")); err == nil {
		t.Fatal("anonymous clone of a restricted repository succeeded")
	}
	// The same wants against another repository (anonymous read of a
	// public one) is another key: never this repository's response.
	status, b := post(Cred{}, "open")
	if status == 200 && bytes.Contains(b, []byte("PACK")) {
		t.Fatalf("fetch of a foreign object from a public repository: %d, got a pack", status)
	}
	if st := respStats(s); st.Hits != 2 {
		t.Fatalf("response cache %+v after the refused requests, want no new hit", st)
	}
}

// TestResponseCacheShallowAndFilteredClones: shallow (--depth 1) and
// partial (--filter=blob:none) clones of the default branch, served from the
// response cache, are valid: fsck passes, log works, the depth holds, the
// blobs are missing until checkout fetches them.
func TestResponseCacheShallowAndFilteredClones(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "build", "restricted")
	url := s.RepoURL(admin, "admin", "build")
	g := NewGitEnv(t)
	work := g.Init(url)
	for i := range 12 {
		g.Commit(work, fmt.Sprintf("src/d%d/f.go", i%4), strings.Repeat("package x\n", i+1), fmt.Sprint("c", i))
	}
	g.Must(work, "push", "-q", "origin", "master")
	head := strings.TrimSpace(g.Must(work, "rev-parse", "HEAD"))

	for i := range 4 {
		for _, proto := range []string{"2", "0"} {
			d := filepath.Join(t.TempDir(), "shallow")
			g.Must("", "-c", "protocol.version="+proto, "clone", "-q", "--depth", "1", url, d)
			if n := strings.TrimSpace(g.Must(d, "rev-list", "--count", "HEAD")); n != "1" {
				t.Fatalf("shallow clone %d (v%s) has %s commits", i, proto, n)
			}
			if got := strings.TrimSpace(g.Must(d, "log", "-1", "--format=%H")); got != head {
				t.Fatalf("shallow clone %d (v%s) at %s, want %s", i, proto, got, head)
			}
			g.Must(d, "fsck")
			if b, err := os.ReadFile(filepath.Join(d, "src", "d3", "f.go")); err != nil || !strings.HasPrefix(string(b), "package x") {
				t.Fatalf("shallow clone %d: work tree: %v", i, err)
			}
		}

		f := filepath.Join(t.TempDir(), "filtered")
		g.Must("", "clone", "-q", "--filter=blob:none", "--no-checkout", url, f)
		if out := g.Must(f, "rev-list", "--objects", "--missing=print", "HEAD"); !strings.Contains(out, "?") {
			t.Fatalf("filtered clone %d has every blob", i)
		}
		if n := strings.TrimSpace(g.Must(f, "rev-list", "--count", "HEAD")); n != "12" {
			t.Fatalf("filtered clone %d has %s commits", i, n)
		}
		g.Must(f, "fsck")
		g.Must(f, "log", "--stat", "-3") // fetches the blobs it needs
		g.Must(f, "checkout", "-q", "master")
		if b, err := os.ReadFile(filepath.Join(f, "src", "d3", "f.go")); err != nil || !strings.HasPrefix(string(b), "package x") {
			t.Fatalf("filtered clone %d: checkout: %v", i, err)
		}
	}
	// Each kind (v2 shallow, v0 shallow, filtered) was requested 4 times:
	// two hits each.
	if st := respStats(s); st.Hits < 6 {
		t.Fatalf("response cache %+v, want at least 6 hits", st)
	}
}
