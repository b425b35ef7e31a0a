package gitserver

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitserver/store"
)

type maintFixture struct {
	t     *testing.T
	git   *Git
	repos *Repos
	home  string
}

func newMaintFixture(t *testing.T) *maintFixture {
	t.Helper()
	path, _, err := FindGit()
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	g := &Git{Path: path, Home: home}
	root := filepath.Join(t.TempDir(), "repos")
	os.MkdirAll(root, 0o750)
	return &maintFixture{t: t, git: g, repos: &Repos{Root: root, Git: g}, home: home}
}

func (f *maintFixture) run(dir string, args ...string) string {
	f.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + f.home, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@e", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@e"}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		f.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// repoWithPushes creates repo id with several pushes (one pack each, as
// receive-pack leaves them) and returns it.
func (f *maintFixture) repoWithPushes(id int64, pushes int) store.Repo {
	f.t.Helper()
	r := store.Repo{ID: id, Owner: "o", Name: fmt.Sprint("r", id), DefaultBranch: "master"}
	if err := f.repos.Init(context.Background(), r); err != nil {
		f.t.Fatal(err)
	}
	// unpackLimit=1 makes every push keep its pack, like large pushes.
	f.run(f.repos.Dir(r), "config", "receive.unpackLimit", "1")
	work := filepath.Join(f.t.TempDir(), "work")
	f.run("", "init", "-q", "-b", "master", work)
	for p := range pushes {
		for c := range 3 {
			os.WriteFile(filepath.Join(work, fmt.Sprint("f", c)), []byte(strings.Repeat(fmt.Sprintf("%d %d\n", p, c), 200)), 0o644)
			f.run(work, "add", ".")
			f.run(work, "commit", "-q", "-m", fmt.Sprint(p, c))
		}
		f.run(work, "push", "-q", f.repos.Dir(r), "master")
	}
	return r
}

func packs(dir, ext string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "*."+ext))
	return m
}

func TestMaintenanceWritesBitmapAndCommitGraph(t *testing.T) {
	t.Parallel()
	f := newMaintFixture(t)
	r := f.repoWithPushes(1, 4)
	dir := f.repos.Dir(r)
	if n := len(packs(dir, "pack")); n != 4 {
		t.Fatalf("%d packs before maintenance, want 4", n)
	}
	if !NeedsMaintenance(dir) {
		t.Fatal("repo without a bitmap does not need maintenance")
	}
	// An unreachable commit (a deleted branch): kept, not pruned at once.
	f.run(dir, "branch", "gone", "master~2")
	orphan := f.run(dir, "commit-tree", "-p", "master", "-m", "orphan", "master^{tree}")
	f.run(dir, "update-ref", "refs/heads/gone", orphan)
	f.run(dir, "update-ref", "-d", "refs/heads/gone")

	m := &Maintainer{Git: f.git, Repos: f.repos}
	defer m.Close()
	if err := m.Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if NeedsMaintenance(dir) {
		t.Fatal("still needs maintenance after a run")
	}
	if b := packs(dir, "bitmap"); len(b) != 1 {
		t.Fatalf("bitmaps: %v", b)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "info", "commit-graph")); err != nil {
		t.Fatalf("no commit-graph: %v", err)
	}
	if n := len(packs(dir, "pack")); n > 2 { // the pack, plus at most a cruft pack
		t.Fatalf("%d packs after maintenance", n)
	}
	f.run(dir, "cat-file", "-e", orphan) // still there (cruft pack, pruned after two weeks)
	f.run(dir, "fsck", "--strict", "--no-dangling")
	// The bitmap is usable: rev-list answers from it.
	if out := f.run(dir, "rev-list", "--use-bitmap-index", "--count", "--objects", "master"); out == "0" {
		t.Fatal("empty bitmap walk")
	}
}

func TestMaintenanceDebouncedPerRepo(t *testing.T) {
	t.Parallel()
	f := newMaintFixture(t)
	r1 := f.repoWithPushes(1, 2)
	r2 := f.repoWithPushes(2, 2)
	var mu sync.Mutex
	runs := map[int64]int{}
	done := make(chan struct{}, 10)
	m := &Maintainer{Git: f.git, Repos: f.repos, Delay: 300 * time.Millisecond, Concurrency: 1,
		OnDone: func(r store.Repo, err error) {
			if err != nil {
				t.Errorf("maintain %s: %v", r.FullName(), err)
			}
			mu.Lock()
			runs[r.ID]++
			mu.Unlock()
			done <- struct{}{}
		}}
	defer m.Close()
	for range 10 { // a burst of pushes
		m.Schedule(r1)
		m.Schedule(r2)
		time.Sleep(10 * time.Millisecond)
	}
	mu.Lock()
	early := runs[1] + runs[2]
	mu.Unlock()
	if early != 0 {
		t.Fatal("maintenance ran before the debounce delay")
	}
	for range 2 {
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			t.Fatal("maintenance did not run")
		}
	}
	time.Sleep(700 * time.Millisecond) // no further runs
	mu.Lock()
	defer mu.Unlock()
	if runs[1] != 1 || runs[2] != 1 {
		t.Fatalf("runs %v, want one per repository", runs)
	}
	for _, r := range []store.Repo{r1, r2} {
		if NeedsMaintenance(f.repos.Dir(r)) {
			t.Fatalf("%s not maintained", r.FullName())
		}
	}
}

func TestMaintenanceRescheduledWhilePushedDuringRun(t *testing.T) {
	t.Parallel()
	f := newMaintFixture(t)
	r := f.repoWithPushes(1, 2)
	var runs atomic.Int32
	started := make(chan struct{})
	release := make(chan struct{})
	m := &Maintainer{Git: f.git, Repos: f.repos, Delay: 50 * time.Millisecond}
	m.OnDone = func(store.Repo, error) {
		if runs.Add(1) == 1 {
			close(started)
			<-release // hold the job "running" while a push arrives
		}
	}
	defer m.Close()
	m.Schedule(r)
	<-started
	m.Schedule(r) // a push during the run
	close(release)
	deadline := time.Now().Add(30 * time.Second)
	for runs.Load() < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if runs.Load() != 2 {
		t.Fatalf("%d runs, want a second one for the push during the first", runs.Load())
	}
}

// Clones and pushes running while maintenance repacks all succeed.
func TestMaintenanceConcurrentWithClonesAndPushes(t *testing.T) {
	t.Parallel()
	f := newMaintFixture(t)
	r := f.repoWithPushes(1, 6)
	dir := f.repos.Dir(r)
	m := &Maintainer{Git: f.git, Repos: f.repos}
	defer m.Close()

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var clones atomic.Int32
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				dst := filepath.Join(t.TempDir(), fmt.Sprint("c", i, "-", n))
				cmd := exec.Command("git", "clone", "-q", "--no-local", "--bare", dir, dst)
				cmd.Env = []string{"HOME=" + f.home, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1"}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("clone during maintenance: %v\n%s", err, out)
					return
				}
				clones.Add(1)
				os.RemoveAll(dst)
			}
		}()
	}
	work := filepath.Join(t.TempDir(), "pusher")
	f.run("", "clone", "-q", dir, work)
	for i := range 3 {
		if err := m.Run(context.Background(), r); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(work, "new"), []byte(fmt.Sprint(i)), 0o644)
		f.run(work, "add", ".")
		f.run(work, "commit", "-q", "-m", "during")
		f.run(work, "push", "-q", "origin", "master")
	}
	close(stop)
	wg.Wait()
	if clones.Load() == 0 {
		t.Fatal("no clone overlapped maintenance")
	}
	f.run(dir, "fsck", "--strict", "--no-dangling")
	if got, want := f.run(dir, "rev-parse", "master"), f.run(work, "rev-parse", "HEAD"); got != want {
		t.Fatalf("master %s, pushed %s", got, want)
	}
}

func TestNeedsMaintenanceEmptyRepo(t *testing.T) {
	t.Parallel()
	f := newMaintFixture(t)
	r := store.Repo{ID: 7, DefaultBranch: "master"}
	if err := f.repos.Init(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if NeedsMaintenance(f.repos.Dir(r)) {
		t.Fatal("an empty repository needs no maintenance")
	}
}

// TestMaintenanceGeometricAfterFullGC: the first run is the full gc; later
// runs roll the packs of new pushes up geometrically, with a multi-pack
// index and its bitmap, and leave a repository that fsck accepts and whose
// bitmap answers; once FullEvery has passed, the full gc runs again.
func TestMaintenanceGeometricAfterFullGC(t *testing.T) {
	t.Parallel()
	f := newMaintFixture(t)
	r := f.repoWithPushes(1, 3)
	dir := f.repos.Dir(r)
	m := &Maintainer{Git: f.git, Repos: f.repos}
	defer m.Close()
	if err := m.Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, fullGCMarker)); err != nil {
		t.Fatalf("first run was not the full gc: %v", err)
	}
	// More pushes: one pack each.
	work := filepath.Join(t.TempDir(), "more")
	f.run("", "clone", "-q", dir, work)
	for p := range 6 {
		os.WriteFile(filepath.Join(work, "g"), []byte(strings.Repeat(fmt.Sprintf("more %d\n", p), 300)), 0o644)
		f.run(work, "add", ".")
		f.run(work, "commit", "-q", "-m", fmt.Sprint("more ", p))
		f.run(work, "push", "-q", "origin", "master")
	}
	before := len(packs(dir, "pack"))
	if before < 7 {
		t.Fatalf("%d packs after 6 more pushes", before)
	}
	if err := m.Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	after := len(packs(dir, "pack"))
	if after >= before || after > 3 {
		t.Fatalf("geometric repack: %d packs before, %d after", before, after)
	}
	if mb, _ := filepath.Glob(filepath.Join(dir, "objects", "pack", "multi-pack-index*.bitmap")); len(mb) != 1 {
		t.Fatalf("no multi-pack bitmap: %v", mb)
	}
	if _, err := os.Stat(filepath.Join(dir, "objects", "info", "commit-graphs", "commit-graph-chain")); err != nil {
		t.Fatalf("no split commit-graph: %v", err)
	}
	f.run(dir, "fsck", "--strict", "--no-dangling")
	want := f.run(dir, "rev-list", "--count", "--objects", "master")
	if got := f.run(dir, "rev-list", "--use-bitmap-index", "--count", "--objects", "master"); got != want {
		t.Fatalf("bitmap walk counts %s objects, plain walk %s", got, want)
	}
	clone := filepath.Join(t.TempDir(), "c")
	f.run("", "clone", "-q", "--bare", "--no-local", dir, clone)
	f.run(clone, "fsck", "--strict")

	// FullEvery passed: the full gc again, over the multi-pack index.
	old := time.Now().Add(-25 * time.Hour)
	os.Chtimes(filepath.Join(dir, fullGCMarker), old, old)
	if err := m.Run(context.Background(), r); err != nil {
		t.Fatal(err)
	}
	if n := len(packs(dir, "pack")); n > 2 {
		t.Fatalf("%d packs after the full gc", n)
	}
	f.run(dir, "fsck", "--strict", "--no-dangling")
	if got := f.run(dir, "rev-list", "--use-bitmap-index", "--count", "--objects", "master"); got != want {
		t.Fatalf("after the full gc: bitmap walk counts %s objects, want %s", got, want)
	}
}
