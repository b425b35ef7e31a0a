package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gitserver/gitserver/packcache"
)

// TestPackCacheE2E: the second identical clone through the server is
// answered from the pack cache, both clones are complete (fsck), and a push
// moves the head so the next clone is a fresh pack with the new commit.
func TestPackCacheE2E(t *testing.T) {
	t.Parallel()
	// HTTP clones go to the response cache (respcache_e2e_test.go) with
	// upload-pack running without the pack-objects hook; this test is
	// about the pack cache, which then serves them as it serves SSH and
	// incremental fetches.
	s := StartServer(t, WithArgs("--response-cache=false"))
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "cached", "restricted")
	url := s.RepoURL(admin, "admin", "cached")
	g := NewGitEnv(t)
	work := g.Init(url)
	for i := range 30 {
		g.Commit(work, "f"+strings.Repeat("x", i%4)+".txt", strings.Repeat("line\n", 100+i), "commit")
	}
	g.Must(work, "push", "-q", "origin", "master")
	cacheDir := filepath.Join(s.Data, "cache", "packs")

	// The server caches a key from its second request on (MinOccurrences
	// 1): the first clone is served uncached, the second writes the entry,
	// the third is a hit.
	var heads []string
	want := []packcache.Stats{{Uncached: 1}, {Uncached: 1, Misses: 1}, {Uncached: 1, Misses: 1, Hits: 1}}
	for i := range 3 {
		clone := g.Clone(url, "--no-local")
		g.Must(clone, "fsck", "--strict", "--no-dangling")
		heads = append(heads, strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")))
		if st := packcache.ReadStats(cacheDir); st != want[i] {
			t.Fatalf("after clone %d: cache stats %+v, want %+v\n%s", i+1, st, want[i], s.Output())
		}
	}
	if heads[0] != heads[1] || heads[1] != heads[2] {
		t.Fatalf("clones disagree: %v", heads)
	}
	// Protocol v0 asks pack-objects for the same pack with the same args:
	// also a hit.
	v0 := filepath.Join(t.TempDir(), "v0")
	g.Must("", "-c", "protocol.version=0", "clone", "-q", url, v0)
	g.Must(v0, "fsck", "--strict")
	if st := packcache.ReadStats(cacheDir); st.Hits != 2 {
		t.Fatalf("protocol v0 clone: stats %+v, want a hit", st)
	}

	// A push changes the wants: the next clone is a first sighting again
	// and has the new commit; an incremental fetch works too.
	newHead := g.Commit(work, "new.txt", "new\n", "after")
	g.Must(work, "push", "-q", "origin", "master")
	clone := g.Clone(url)
	g.Must(clone, "fsck", "--strict")
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != newHead {
		t.Fatalf("clone after push has %s, want %s", got, newHead)
	}
	if st := packcache.ReadStats(cacheDir); st.Uncached != 2 || st.Misses != 1 {
		t.Fatalf("clone after push: stats %+v, want a second uncached request", st)
	}
	old := filepath.Join(t.TempDir(), "old")
	g.Must("", "clone", "-q", "--branch", "master", url, old)
	g.Must(old, "reset", "-q", "--hard", "HEAD~1")
	g.Must(old, "pull", "-q", "--ff-only")
	if got := strings.TrimSpace(g.Must(old, "rev-parse", "HEAD")); got != newHead {
		t.Fatalf("fetch got %s, want %s", got, newHead)
	}

	// The counters are exported.
	status, body := s.Do("GET", "/metrics", Cred{}, nil)
	if status != 200 || !strings.Contains(string(body), `gitserver_pack_cache_requests_total{result="hit"}`) {
		t.Fatalf("/metrics: %d, no pack cache counters", status)
	}
}

// TestPackCacheShallowAndFilter: shallow and partial clones go through the
// hook (with its quoted --filter and empty --shallow-file arguments) and come
// out correct.
func TestPackCacheShallowAndFilter(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithArgs("--response-cache=false")) // see TestPackCacheE2E
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "shallow", "restricted")
	url := s.RepoURL(admin, "admin", "shallow")
	g := NewGitEnv(t)
	work := g.Init(url)
	for i := range 10 {
		g.Commit(work, "a/b.txt", strings.Repeat("v\n", i+1), "c")
	}
	g.Must(work, "push", "-q", "origin", "master")
	for range 3 {
		c := g.Clone(url, "--depth", "3")
		if n := strings.TrimSpace(g.Must(c, "rev-list", "--count", "HEAD")); n != "3" {
			t.Fatalf("shallow clone has %s commits", n)
		}
		g.Must(c, "fsck")
		f := g.Clone(url, "--filter=blob:none", "--no-checkout")
		if out := g.Must(f, "rev-list", "--objects", "--missing=print", "HEAD"); !strings.Contains(out, "?") {
			t.Fatalf("blob:none clone has all blobs")
		}
	}
	if st := packcache.ReadStats(filepath.Join(s.Data, "cache", "packs")); st.Uncached != 2 || st.Misses != 2 || st.Hits != 2 {
		t.Fatalf("stats %+v, want 2 uncached, 2 misses and 2 hits", st)
	}
}

// TestMaintenanceAfterPushE2E: a push leads, after the debounce delay, to a
// repacked repository with a bitmap and a commit-graph, and clones keep
// working.
func TestMaintenanceAfterPushE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithEnv("GITSERVER_MAINTENANCE_DELAY=200ms"))
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "maint", "restricted")
	url := s.RepoURL(admin, "admin", "maint")
	g := NewGitEnv(t)
	work := g.Init(url)
	for i := range 5 {
		g.Commit(work, "f.txt", strings.Repeat("x\n", i+1), "c")
	}
	g.Must(work, "push", "-q", "origin", "master")
	deadline := time.Now().Add(60 * time.Second)
	var bitmaps []string
	for time.Now().Before(deadline) {
		// gc writes the bitmap with the pack, then the commit-graph.
		bitmaps, _ = filepath.Glob(filepath.Join(s.Data, "repos", "*.git", "objects", "pack", "*.bitmap"))
		graphs, _ := filepath.Glob(filepath.Join(s.Data, "repos", "*.git", "objects", "info", "commit-graph"))
		if len(bitmaps) > 0 && len(graphs) > 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(bitmaps) != 1 {
		t.Fatalf("no bitmap after push: %v\n%s", bitmaps, s.Output())
	}
	repoDir := filepath.Dir(filepath.Dir(filepath.Dir(bitmaps[0])))
	if _, err := os.Stat(filepath.Join(repoDir, "objects", "info", "commit-graph")); err != nil {
		t.Fatalf("no commit-graph: %v", err)
	}
	clone := g.Clone(url)
	g.Must(clone, "fsck", "--strict")
}
