package packcache

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the hook process when PACKCACHE_HELPER is set,
// so that a producer can be killed like the real one.
func TestMain(m *testing.M) {
	if os.Getenv("PACKCACHE_HELPER") == "1" {
		args := os.Args[1:]
		if IsDirectHook(args, os.Getenv) {
			os.Exit(MainEnv(args, os.Getenv, os.Stdin, os.Stdout, os.Stderr))
		}
		if len(args) >= 2 && args[0] == "hook" && args[1] == "pack-objects" {
			args = args[2:] // as cmd/gitserver passes them on
		}
		os.Exit(Main(args, os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func gitEnv(home string) []string {
	return []string{
		"HOME=" + home, "PATH=" + os.Getenv("PATH"), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=T", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=T", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_AUTHOR_DATE=2020-01-01T00:00:00Z", "GIT_COMMITTER_DATE=2020-01-01T00:00:00Z", "LANG=C",
	}
}

func git(t testing.TB, dir string, stdin io.Reader, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir, cmd.Env, cmd.Stdin = dir, gitEnv(t.TempDir()), stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// makeRepo builds a bare repository with n commits of a few changing files
// (via fast-import) and returns its directory and commit ids, oldest first.
func makeRepo(t testing.TB, n int) (string, []string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo.git")
	git(t, "", nil, "init", "-q", "--bare", dir)
	var fi bytes.Buffer
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&fi, "commit refs/heads/master\nmark :%d\ncommitter T <t@example.com> %d +0000\ndata <<EOM\ncommit %d\nEOM\n", i, 1577836800+i, i)
		if i > 1 {
			fmt.Fprintf(&fi, "from :%d\n", i-1)
		}
		for f := 0; f < 5; f++ {
			content := strings.Repeat(fmt.Sprintf("file %d line for commit %d %d\n", f, i, i*f), 50+f*20)
			fmt.Fprintf(&fi, "M 100644 inline dir%d/file%d.txt\ndata %d\n%s\n", f%3, f, len(content), content)
		}
	}
	git(t, dir, &fi, "fast-import", "--quiet")
	ids := strings.Fields(git(t, dir, nil, "rev-list", "--reverse", "master"))
	return dir, ids
}

var packArgs = []string{"pack-objects", "--revs", "--thin", "--stdout", "--delta-base-offset", "--include-tag"}

func request(repo, want string) Request {
	return Request{Dir: repo, Args: packArgs, Env: gitEnv(os.TempDir()), Stdin: strings.NewReader(want + "\n--not\n\n")}
}

// indexPack checks that pack is a complete, valid pack with git index-pack
// --strict and returns the number of objects.
func indexPack(t testing.TB, pack []byte) int {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "check.git")
	git(t, "", nil, "init", "-q", "--bare", dir)
	git(t, dir, bytes.NewReader(pack), "index-pack", "--strict", "--stdin")
	out := git(t, dir, nil, "count-objects", "-v")
	for _, l := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(l, "in-pack: "); ok {
			var n int
			fmt.Sscan(v, &n)
			return n
		}
	}
	t.Fatalf("no in-pack count in %q", out)
	return 0
}

func serve(t testing.TB, c *Cache, r Request) ([]byte, string, int) {
	var out, errb bytes.Buffer
	code := c.Serve(r, &out, &errb)
	return out.Bytes(), errb.String(), code
}

func packFiles(t testing.TB, dir string, suffix string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*"+suffix))
	return m
}

func TestIdenticalRequestsServedFromCache(t *testing.T) {
	t.Parallel()
	repo, ids := makeRepo(t, 40)
	c := &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
	head := ids[len(ids)-1]

	first, errs, code := serve(t, c, request(repo, head))
	if code != 0 {
		t.Fatalf("first request: exit %d: %s", code, errs)
	}
	if s := ReadStats(c.Dir); s.Misses != 1 || s.Hits != 0 {
		t.Fatalf("after first request: %+v, want one miss", s)
	}
	if got := len(packFiles(t, c.Dir, ".pack")); got != 1 {
		t.Fatalf("%d cache entries, want 1", got)
	}
	second, errs, code := serve(t, c, request(repo, head))
	if code != 0 {
		t.Fatalf("second request: exit %d: %s", code, errs)
	}
	if s := ReadStats(c.Dir); s.Misses != 1 || s.Hits != 1 {
		t.Fatalf("after second request: %+v, want one miss and one hit", s)
	}
	if !bytes.Equal(first, second) {
		t.Fatalf("cached pack differs from the produced one (%d vs %d bytes)", len(first), len(second))
	}
	// 40 commits + their trees and blobs: a real pack, not an empty one.
	if n := indexPack(t, second); n < 40*3 {
		t.Fatalf("pack has %d objects", n)
	}

	// A different request (another want, other args) is a different key.
	if _, _, code := serve(t, c, request(repo, ids[10])); code != 0 {
		t.Fatal("request for an older commit failed")
	}
	r := request(repo, head)
	r.Args = append(append([]string{}, packArgs...), "--filter=blob:none")
	filtered, _, code := serve(t, c, r)
	if code != 0 {
		t.Fatal("filtered request failed")
	}
	if s := ReadStats(c.Dir); s.Misses != 3 || s.Hits != 1 {
		t.Fatalf("after distinct requests: %+v, want 3 misses", s)
	}
	if len(filtered) >= len(first) {
		t.Fatalf("blob:none pack (%d bytes) is not smaller than the full one (%d)", len(filtered), len(first))
	}
}

func TestKeyCoversRequest(t *testing.T) {
	t.Parallel()
	base := Request{Dir: "/srv/a.git", Args: packArgs, Env: []string{"GIT_CONFIG_PARAMETERS='pack.usebitmaps'='true'", "HOME=/x"}}
	in := []byte("abc\n--not\n\n")
	k := Key(base, in)
	same := base
	same.Env = []string{"HOME=/y", "GIT_TRACE=1", "GIT_PROTOCOL=version=2", "GIT_CONFIG_PARAMETERS='pack.usebitmaps'='true'"}
	if Key(same, in) != k {
		t.Fatal("diagnostic env variables changed the key")
	}
	variants := map[string]func(r *Request, in *[]byte){
		"repo":     func(r *Request, _ *[]byte) { r.Dir = "/srv/b.git" },
		"args":     func(r *Request, _ *[]byte) { r.Args = append(append([]string{}, packArgs...), "--shallow") },
		"stdin":    func(_ *Request, in *[]byte) { *in = []byte("abd\n--not\n\n") },
		"haves":    func(_ *Request, in *[]byte) { *in = []byte("abc\n--not\ndef\n\n") },
		"config":   func(r *Request, _ *[]byte) { r.Env = []string{"GIT_CONFIG_PARAMETERS='pack.usebitmaps'='false'"} },
		"objects":  func(r *Request, _ *[]byte) { r.Env = append(r.Env, "GIT_OBJECT_DIRECTORY=/q") },
		"git dir":  func(r *Request, _ *[]byte) { r.Env = append(r.Env, "GIT_DIR=../b.git") },
		"arg join": func(r *Request, _ *[]byte) { r.Args = []string{"pack-objects --revs"} },
	}
	for name, f := range variants {
		r := base
		r.Env = append([]string{}, base.Env...)
		i := append([]byte{}, in...)
		f(&r, &i)
		if Key(r, i) == k {
			t.Errorf("changing %s did not change the key", name)
		}
	}
}

// slowGit is a git wrapper that delays pack-objects' output, so that
// concurrent requests overlap with the producer.
func slowGit(t testing.TB, delay string) string {
	p := filepath.Join(t.TempDir(), "slowgit")
	script := "#!/bin/sh\nsleep " + delay + "\nexec git \"$@\"\n"
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConcurrentIdenticalRequestsProduceOnce(t *testing.T) {
	t.Parallel()
	repo, ids := makeRepo(t, 60)
	c := &Cache{Dir: filepath.Join(t.TempDir(), "cache"), GitPath: slowGit(t, "0.5")}
	head := ids[len(ids)-1]
	const n = 8
	outs := make([][]byte, n)
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var errs string
			outs[i], errs, codes[i] = serve(t, c, request(repo, head))
			if codes[i] != 0 {
				t.Errorf("request %d: exit %d: %s", i, codes[i], errs)
			}
		}()
	}
	wg.Wait()
	s := ReadStats(c.Dir)
	if s.Misses != 1 || s.Hits+s.Joins != n-1 {
		t.Fatalf("stats %+v: want exactly one producer for %d identical requests", s, n)
	}
	if s.Joins == 0 {
		t.Fatalf("stats %+v: no request joined the running producer", s)
	}
	for i := 1; i < n; i++ {
		if !bytes.Equal(outs[i], outs[0]) {
			t.Fatalf("request %d got %d bytes, request 0 got %d", i, len(outs[i]), len(outs[0]))
		}
	}
	indexPack(t, outs[0])
}

func TestKilledProducerIsNeverServed(t *testing.T) {
	t.Parallel()
	repo, ids := makeRepo(t, 60)
	cacheDir := filepath.Join(t.TempDir(), "cache")
	head := ids[len(ids)-1]

	// A producer whose pack-objects writes the first 2000 bytes and then
	// stalls; it runs as a separate process so it can be SIGKILLed.
	stall := filepath.Join(t.TempDir(), "stallgit")
	os.WriteFile(stall, []byte("#!/bin/sh\ngit \"$@\" | { head -c 2000; sleep 60; }\n"), 0o755)
	self, _ := os.Executable()
	prod := exec.Command(self, "--dir", cacheDir, "--git", stall, "git", "pack-objects", "--revs", "--thin", "--stdout", "--delta-base-offset", "--include-tag")
	prod.Dir = repo
	prod.Env = append(gitEnv(t.TempDir()), "PACKCACHE_HELPER=1")
	prod.Stdin = strings.NewReader(head + "\n--not\n\n")
	prod.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // the whole group dies, as under upload-pack
	var prodOut bytes.Buffer
	prod.Stdout = &prodOut
	if err := prod.Start(); err != nil {
		t.Fatal(err)
	}
	c := &Cache{Dir: cacheDir}
	// Wait until the producer has written its partial output.
	deadline := time.Now().Add(20 * time.Second)
	for {
		parts := packFiles(t, cacheDir, ".part")
		if len(parts) == 1 {
			if st, err := os.Stat(parts[0]); err == nil && st.Size() >= 2000 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("producer did not write its partial entry")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// A reader joins mid-write...
	type result struct {
		out  []byte
		errs string
		code int
	}
	joined := make(chan result, 1)
	go func() {
		o, e, code := serve(t, c, request(repo, head))
		joined <- result{o, e, code}
	}()
	time.Sleep(200 * time.Millisecond)
	// ...and the producer is killed.
	syscall.Kill(-prod.Process.Pid, syscall.SIGKILL)
	prod.Wait()

	r := <-joined
	if r.code == 0 {
		t.Fatalf("reader of a killed producer succeeded with %d bytes", len(r.out))
	}
	if !strings.Contains(r.errs, "incomplete or corrupt") {
		t.Fatalf("reader failed with %q", r.errs)
	}
	if len(packFiles(t, cacheDir, ".pack")) != 0 {
		t.Fatal("a killed producer left a complete entry")
	}
	if s := ReadStats(cacheDir); s.Joins != 1 {
		t.Fatalf("stats %+v: the reader did not join the producer", s)
	}

	// The next request produces afresh and gets a valid pack; the one after
	// is a hit with the same bytes.
	out, errs, code := serve(t, c, request(repo, head))
	if code != 0 {
		t.Fatalf("request after the killed producer: exit %d: %s", code, errs)
	}
	indexPack(t, out)
	again, _, code := serve(t, c, request(repo, head))
	if code != 0 || !bytes.Equal(again, out) {
		t.Fatal("hit after recovery differs")
	}
	if s := ReadStats(cacheDir); s.Misses != 2 || s.Hits != 1 {
		t.Fatalf("stats %+v, want 2 misses (the killed producer, the recovery) and 1 hit", s)
	}
}

func TestCorruptEntryIsNotServed(t *testing.T) {
	t.Parallel()
	repo, ids := makeRepo(t, 20)
	c := &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
	head := ids[len(ids)-1]
	good, _, code := serve(t, c, request(repo, head))
	if code != 0 {
		t.Fatal("first request failed")
	}
	entry := packFiles(t, c.Dir, ".pack")[0]

	// Truncated: rejected before a byte is sent, and rebuilt.
	data, _ := os.ReadFile(entry)
	os.WriteFile(entry, data[:len(data)-100], 0o640)
	out, _, code := serve(t, c, request(repo, head))
	if code != 0 || !bytes.Equal(out, good) {
		t.Fatal("request over a truncated entry did not rebuild it")
	}
	if s := ReadStats(c.Dir); s.Misses != 2 {
		t.Fatalf("stats %+v: truncated entry was not treated as a miss", s)
	}

	// A flipped bit in the middle: the CRC fails, the request fails and the
	// entry is removed.
	data, _ = os.ReadFile(entry)
	data[len(data)/2] ^= 0x40
	os.WriteFile(entry, data, 0o640)
	_, errs, code := serve(t, c, request(repo, head))
	if code == 0 || !strings.Contains(errs, "corrupt") {
		t.Fatalf("corrupt entry served: exit %d %q", code, errs)
	}
	if _, err := os.Stat(entry); !os.IsNotExist(err) {
		t.Fatal("corrupt entry was kept")
	}
}

func TestEvictionKeepsCap(t *testing.T) {
	t.Parallel()
	repo, ids := makeRepo(t, 30)
	c := &Cache{Dir: filepath.Join(t.TempDir(), "cache")}
	// Size the cap from a real entry: room for about three.
	if _, _, code := serve(t, c, request(repo, ids[len(ids)-1])); code != 0 {
		t.Fatal("request failed")
	}
	st, _ := os.Stat(packFiles(t, c.Dir, ".pack")[0])
	c.MaxBytes = st.Size()*3 + st.Size()/2
	var last string
	for i := len(ids) - 2; i >= len(ids)-12; i-- {
		if _, _, code := serve(t, c, request(repo, ids[i])); code != 0 {
			t.Fatalf("request %d failed", i)
		}
		var total int64
		for _, p := range packFiles(t, c.Dir, ".pack") {
			st, _ := os.Stat(p)
			total += st.Size()
		}
		if total > c.MaxBytes {
			t.Fatalf("cache holds %d bytes, cap %d", total, c.MaxBytes)
		}
		last = ids[i]
		time.Sleep(10 * time.Millisecond) // distinct mtimes for LRU
	}
	s := ReadStats(c.Dir)
	if s.Evictions == 0 {
		t.Fatalf("stats %+v: nothing evicted", s)
	}
	// The newest entry survived eviction: asking again is a hit.
	before := s.Hits
	serve(t, c, request(repo, last))
	if ReadStats(c.Dir).Hits != before+1 {
		t.Fatal("the most recent entry was evicted")
	}
}

func TestExpiredEntryIsRebuilt(t *testing.T) {
	t.Parallel()
	repo, ids := makeRepo(t, 10)
	c := &Cache{Dir: filepath.Join(t.TempDir(), "cache"), MaxAge: time.Second}
	head := ids[len(ids)-1]
	serve(t, c, request(repo, head))
	time.Sleep(2100 * time.Millisecond)
	out, _, code := serve(t, c, request(repo, head))
	if code != 0 {
		t.Fatal("request failed")
	}
	if s := ReadStats(c.Dir); s.Misses != 2 || s.Hits != 0 {
		t.Fatalf("stats %+v: expired entry was served", s)
	}
	indexPack(t, out)
}

func TestHookCommandRoundTrip(t *testing.T) {
	t.Parallel()
	repo, ids := makeRepo(t, 10)
	dir := filepath.Join(t.TempDir(), "it's cache")
	c := &Cache{Dir: dir, MaxBytes: 1 << 20, MaxAge: time.Minute}
	self, _ := os.Executable()
	hook := c.HookCommand(self)
	// As git does: `sh -c 'HOOK "$@"' HOOK git pack-objects ...`.
	cmd := exec.Command("sh", "-c", hook+` "$@"`, hook, "git", "pack-objects", "--revs", "--stdout")
	cmd.Dir = repo
	cmd.Env = append(gitEnv(t.TempDir()), "PACKCACHE_HELPER=1")
	cmd.Stdin = strings.NewReader(ids[len(ids)-1] + "\n--not\n\n")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", hook, err)
	}
	indexPack(t, out)
	if s := ReadStats(dir); s.Misses != 1 {
		t.Fatalf("stats %+v in %s", s, dir)
	}
}

// TestDirectHookThroughGit: git runs a hook path without shell
// metacharacters directly (no sh), the options reach it through the
// environment, and a clone through real upload-pack is answered from the
// cache the second time.
func TestDirectHookThroughGit(t *testing.T) {
	t.Parallel()
	repo, _ := makeRepo(t, 10)
	c := &Cache{Dir: filepath.Join(t.TempDir(), "cache"), MaxBytes: 1 << 20, MaxAge: time.Minute}
	self, _ := os.Executable()
	hook, ok := c.DirectHook(self)
	if !ok {
		t.Skipf("test binary path %q needs quoting", self)
	}
	if _, ok := c.DirectHook("/path with space/gitserver"); ok {
		t.Fatal("a path with a space must not be a direct hook")
	}
	for i := range 2 {
		dst := filepath.Join(t.TempDir(), "clone.git")
		cmd := exec.Command("git", "clone", "-q", "--bare", "--no-local",
			"--upload-pack", "git -c uploadpack.packObjectsHook="+hook+" upload-pack", repo, dst)
		cmd.Env = append(append(gitEnv(t.TempDir()), "PACKCACHE_HELPER=1", "GIT_TRACE=1"), c.HookEnv()...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("clone %d: %v\n%s", i, err, out)
		}
		// git traces the hook's command line: run directly, not via sh -c.
		if !strings.Contains(string(out), "run_command: "+self+" git pack-objects") || strings.Contains(string(out), "sh -c") {
			t.Fatalf("clone %d: hook not run directly:\n%s", i, out)
		}
		git(t, dst, nil, "fsck", "--strict")
	}
	if s := ReadStats(c.Dir); s.Misses != 1 || s.Hits != 1 {
		t.Fatalf("stats %+v, want 1 miss and 1 hit", s)
	}
}
