// Command bench compares gitserver with plain C git serving the same
// repositories on the same machine in the same run, and reports ratios.
//
//	go run ./bench [-bundle PATH] [-out FILE] [-quick] [-size large|small] [-skip-mirrors] [-mirrors N]
//	               [-repack N] [-gitserver-bin PATH] [-skip-postgres | -only-postgres]        (make bench)
//	               [-skip-pages | -pages-only] [-pages-n N] [-pages-commits N] [-gitea PATH]
//	go run ./bench -gen-only [-size small]
//
// The repositories are go-git (the bundle) and a large generated one
// (largegen.go: fast-import, cached under ~/.cache/gitserver-bench). Plain
// git serves them as pushed and repacked with bitmaps; the clone
// measurements of issue 15 (clones.go) also compare identical clones with
// the same response bytes streamed from a file over loopback HTTP.
//
// Package main (this benchmark) is not part of the server and not run by
// make test. Plain git is `git http-backend` behind nginx + fcgiwrap, and
// `git daemon`.
// Install them with: apt-get install -y nginx-light fcgiwrap
//
// Server throughput is measured with a client that speaks protocol v2
// `fetch` directly (one HTTP POST, or one git:// connection), parses the
// pkt-line framing and discards the pack, so that the client's own indexing
// does not hide the server.
//
// The mirror section (issue 11; -skip-mirrors skips it) starts a second
// gitserver with SSH as the upstream and measures webhook -> build queued
// and the CPU cost of idle mirrors polling at the minimum interval.
//
// The web pages section (issue 13; bench/pages.go, -skip-pages skips it,
// -pages-only runs it alone) times the repository pages against Gitea 1.26.
//
// Imports: gitserver/...
package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"gitserver/store/postgres/pgtest"
)

var (
	flagBundle = flag.String("bundle", "/work/shared/data/go-git.bundle", "git bundle of the real-history repository")
	flagOut    = flag.String("out", "", "write the results as markdown to this file")
	flagQuick  = flag.Bool("quick", false, "fewer iterations (smoke run)")
	flagKeep   = flag.Bool("keep", false, "keep the temporary directory")
	flagBin    = flag.String("gitserver-bin", "", "benchmark this gitserver binary instead of building ./cmd/gitserver (e.g. an older commit's)")
	flagNoMir  = flag.Bool("skip-mirrors", false, "skip the mirror measurements (issue 11)")
	flagMirN   = flag.Int("mirrors", 100, "mirrors polling at the minimum interval in the idle-polling measurement (-quick: 20)")
	flagNoPG   = flag.Bool("skip-postgres", false, "skip two nodes on PostgreSQL against one on SQLite (issue 14; also skipped when PostgreSQL is not installed)")
	flagOnlyPG = flag.Bool("only-postgres", false, "run only the PostgreSQL comparison")
)

func main() {
	flag.Parse()
	if *flagServeFile != "" {
		if err := serveFile(*flagServeFile, *flagListen); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	if *flagGenOnly {
		if err := genOnly(); err != nil {
			fmt.Fprintln(os.Stderr, "bench:", err)
			os.Exit(1)
		}
		return
	}
	run := run
	if *flagPagesOnly {
		run = pagesOnly // bench/pages.go
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func need() error {
	var missing []string
	for _, p := range []string{"nginx", "fcgiwrap"} {
		if _, err := exec.LookPath(p); err != nil {
			if _, err := os.Stat("/usr/sbin/" + p); err != nil {
				missing = append(missing, p)
			}
		}
	}
	execPath := gitOut("", "--exec-path")
	for _, p := range []string{"git-http-backend", "git-daemon"} {
		if _, err := os.Stat(filepath.Join(execPath, p)); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("missing %s: the benchmark compares against plain C git behind a real web server.\n"+
			"Install with (Debian/Ubuntu, as root):  apt-get install -y nginx-light fcgiwrap git", strings.Join(missing, ", "))
	}
	return nil
}

func sbin(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	return "/usr/sbin/" + name
}

var gitEnv = []string{"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "GIT_TERMINAL_PROMPT=0",
	"GIT_AUTHOR_NAME=Bench", "GIT_AUTHOR_EMAIL=bench@example.com", "GIT_COMMITTER_NAME=Bench", "GIT_COMMITTER_EMAIL=bench@example.com"}

func gitCmd(dir string, args ...string) *exec.Cmd {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), gitEnv...)
	return cmd
}

func gitRun(dir string, args ...string) error {
	out, err := gitCmd(dir, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return nil
}

func gitOut(dir string, args ...string) string {
	out, err := gitCmd(dir, args...).Output()
	if err != nil {
		fmt.Fprintf(os.Stderr, "git %s: %v\n", strings.Join(args, " "), err)
		cleanup()
		os.Exit(1)
	}
	return strings.TrimSpace(string(out))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		cleanup()
		os.Exit(1)
	}
}

// cleanup stops every started server and removes the temporary directory;
// it runs on every exit path.
var cleanup = func() {}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s "+format+"\n", append([]any{time.Now().Format("15:04:05")}, a...)...)
}

type server struct {
	name   string
	http   string // base URL of /git/ (HTTP servers)
	daemon string // host:port (git daemon)
	auth   string // Authorization header
	// file: http is the file-streaming peer's URL (any path answers).
	file bool
	// repoSuffix is appended to repository names (plain+bitmaps: "-bm").
	repoSuffix string
}

func freePort() int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(err)
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

type proc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

func start(name string, args []string, env []string) *proc {
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	// Own process group: fcgiwrap and git daemon fork children, which
	// stopAll ends together with their parent.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(cmd.Start())
	return &proc{cmd, &out}
}

var procs []*proc

func stopAll() {
	for _, p := range procs {
		if p.cmd.Process != nil {
			syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
		}
	}
	for _, p := range procs {
		if p.cmd.Process == nil {
			continue
		}
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
		}
		syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL) // leftover children
	}
	procs = nil
}

// waitReady polls url until it answers 200 (30 s at most).
func waitReady(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 30s", url)
}

func waitTCP(addr string) error {
	for range 200 {
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not come up", addr)
}

type result struct {
	name, unit string
	// gitserver, http-backend as pushed, git daemon (as pushed),
	// http-backend on a copy repacked with bitmaps and a commit-graph, the
	// same bytes streamed from a file (0: not measured)
	gs, hb, dm, hbb, file float64
	higherIsBetter        bool
	target, comment       string
	// vs names the column the ratio is taken against: "hbb", "file" or ""
	// (http-backend as pushed).
	vs string
}

func run() error {
	if *flagOnlyPG {
		return runPostgresOnly()
	}
	if err := need(); err != nil {
		return err
	}
	if _, err := os.Stat(*flagBundle); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	tmp, err := os.MkdirTemp("", "gitserver-bench-")
	if err != nil {
		return err
	}
	cleanup = func() {
		stopAll()
		if !*flagKeep {
			os.RemoveAll(tmp)
		}
	}
	defer cleanup()
	// Interrupted: stop the servers (own process groups) before leaving.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		logf("interrupted")
		cleanup()
		os.Exit(1)
	}()
	if *flagKeep {
		logf("keeping %s", tmp)
	}

	bin := filepath.Join(tmp, "gitserver")
	if *flagBin != "" {
		bin = *flagBin
		logf("using %s", bin)
	} else {
		logf("building gitserver")
		build := exec.Command("go", "build", "-o", bin, "./cmd/gitserver")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			return fmt.Errorf("go build: %v: %s", err, out)
		}
	}

	// Source repositories: go-git (the bundle) and the generated large
	// repository (cached, see largegen.go).
	size, ok := genSizes[*flagSize]
	if !ok {
		return fmt.Errorf("-size %q: want large or small", *flagSize)
	}
	src := filepath.Join(tmp, "src")
	logf("preparing repositories (go-git bundle, generated %s repository)", size.Name)
	must(gitRun("", "clone", "-q", "--mirror", *flagBundle, filepath.Join(src, "gogit.git")))
	genDir, err := genRepo(size)
	if err != nil {
		return fmt.Errorf("generating the large repository: %w", err)
	}
	must(gitRun("", "clone", "-q", "--mirror", genDir, filepath.Join(src, "large.git")))
	objs, nrefs, packMB, err := repoStats(filepath.Join(src, "large.git"))
	if err != nil {
		return err
	}
	commits := gitOut(filepath.Join(src, "large.git"), "rev-list", "--count", "--all")
	setupNote = fmt.Sprintf("Repositories: go-git (bundle, %s objects); large = generated (%s, %d objects, %s commits, %d refs, %.0f MiB pack).\n",
		gitOut(filepath.Join(src, "gogit.git"), "count-objects", "-v"), size.Name, objs, commits, nrefs, packMB)
	setupNote = strings.Replace(setupNote, "\n", " ", 1)
	if i := strings.Index(setupNote, "count: "); i >= 0 {
		// keep just in-pack from count-objects -v
		f := strings.Fields(gitOut(filepath.Join(src, "gogit.git"), "count-objects", "-v"))
		for j := range f {
			if f[j] == "in-pack:" && j+1 < len(f) {
				setupNote = fmt.Sprintf("Repositories: go-git (bundle, %s objects); large = generated (%s: %d objects, %s commits, %d refs, %.0f MiB pack).\n",
					f[j+1], size.Name, objs, commits, nrefs, packMB)
			}
		}
	}

	// Plain git: the same repositories as a push leaves them (one pack
	// each, no bitmap, no commit-graph), served by http-backend and daemon;
	// and REPO-bm.git, what a careful admin runs: `git repack -adb` and a
	// commit-graph.
	plain := filepath.Join(tmp, "plain")
	for _, r := range []string{"gogit", "large"} {
		must(gitRun("", "clone", "-q", "--mirror", filepath.Join(src, r+".git"), filepath.Join(plain, r+".git")))
		bm := filepath.Join(plain, r+"-bm.git")
		must(gitRun("", "clone", "-q", "--mirror", filepath.Join(src, r+".git"), bm))
		// Partial clone needs the server's consent (gitserver sets it too).
		must(gitRun(filepath.Join(plain, r+".git"), "config", "uploadpack.allowFilter", "true"))
		must(gitRun(bm, "config", "uploadpack.allowFilter", "true"))
		d, err := gitTime(bm, "repack", "-a", "-d", "-b", "-q")
		must(err)
		must(gitRun(bm, "commit-graph", "write", "--reachable"))
		logf("  plain %s-bm: repack -adb %.1fs", r, d.Seconds())
		if r == "large" {
			setupNote += fmt.Sprintf("Plain large-bm: `git repack -adb` took %.1f s (%s).\n", d.Seconds(), loadavg())
		}
	}
	must(gitRun("", "init", "-q", "--bare", filepath.Join(plain, "push.git")))
	must(gitRun(filepath.Join(plain, "push.git"), "config", "http.receivepack", "true"))

	// gitserver.
	data := filepath.Join(tmp, "data")
	gsPort := freePort()
	gsProc := start(bin, []string{"serve", "--data", data, "--http-addr", fmt.Sprintf("127.0.0.1:%d", gsPort), "--ssh-addr", "",
		"--log-level", "warn"}, []string{"GITSERVER_MAINTENANCE_DELAY=1s"})
	procs = append(procs, gsProc)
	must(waitTCP(fmt.Sprintf("127.0.0.1:%d", gsPort)))
	// The server binds its ports before it creates its data directory:
	// ready is /readyz, not an open port.
	must(waitReady(fmt.Sprintf("http://127.0.0.1:%d/readyz", gsPort)))
	tokCmd := exec.Command(bin, "admin", "token", "create", "admin", "--scope", "repo:read", "--scope", "repo:write",
		"--scope", "builds", "--scope", "admin", "--data", data)
	var tokErr bytes.Buffer
	tokCmd.Stderr = &tokErr
	tokOut, err := tokCmd.Output()
	if err != nil {
		return fmt.Errorf("token: %v: %s", err, strings.TrimSpace(tokErr.String()))
	}
	token := strings.TrimSpace(string(tokOut))
	gsBase := fmt.Sprintf("http://127.0.0.1:%d", gsPort)
	api := func(method, path string, body any) (int, map[string]any) {
		j, _ := json.Marshal(body)
		req, _ := http.NewRequest(method, gsBase+path, bytes.NewReader(j))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		must(err)
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	gsURL := func(repo string) string {
		return fmt.Sprintf("http://admin:%s@127.0.0.1:%d/git/admin/%s.git", token, gsPort, repo)
	}
	for _, r := range []string{"gogit", "large", "push", "wake"} {
		if code, m := api("POST", "/api/v1/repos", map[string]any{"owner": "admin", "name": r, "visibility": "restricted"}); code != 201 {
			return fmt.Errorf("create repo %s: %d %v", r, code, m)
		}
	}
	for _, r := range []string{"gogit", "large"} {
		logf("pushing %s to gitserver", r)
		d, err := gitTime(filepath.Join(src, r+".git"), "push", "-q", gsURL(r), "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*")
		must(err)
		logf("  %.1fs", d.Seconds())
		if r == "large" {
			setupNote += fmt.Sprintf("Initial push of large to gitserver (HTTP, hooks, fsck): %.1f s (%s).\n", d.Seconds(), loadavg())
		}
	}

	// nginx + fcgiwrap + http-backend; git daemon.
	hbPort, dmPort := freePort(), freePort()
	fcgiSock := filepath.Join(tmp, "fcgiwrap.sock")
	procs = append(procs, start(sbin("fcgiwrap"), []string{"-c", "32", "-s", "unix:" + fcgiSock}, nil))
	ngDir := filepath.Join(tmp, "nginx")
	os.MkdirAll(filepath.Join(ngDir, "logs"), 0o755)
	conf := fmt.Sprintf(`worker_processes 2;
user root;
error_log %[1]s/logs/error.log;
pid %[1]s/nginx.pid;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path %[1]s/body;
  client_max_body_size 0;
  server {
    listen 127.0.0.1:%[2]d;
    location ~ ^/git(/.*)$ {
      fastcgi_pass unix:%[3]s;
      fastcgi_buffering off;
      fastcgi_request_buffering off;
      fastcgi_read_timeout 600s;
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME %[4]s/git-http-backend;
      fastcgi_param GIT_PROJECT_ROOT %[5]s;
      fastcgi_param GIT_HTTP_EXPORT_ALL 1;
      fastcgi_param GIT_PROTOCOL $http_git_protocol;
      fastcgi_param GIT_CONFIG_NOSYSTEM 1;
      fastcgi_param PATH_INFO $1;
    }
  }
}
`, ngDir, hbPort, fcgiSock, gitOut("", "--exec-path"), plain)
	must(os.WriteFile(filepath.Join(ngDir, "nginx.conf"), []byte(conf), 0o644))
	procs = append(procs, start(sbin("nginx"), []string{"-p", ngDir, "-c", filepath.Join(ngDir, "nginx.conf"), "-g", "daemon off;"}, nil))
	procs = append(procs, start("git", []string{"daemon", "--reuseaddr", "--export-all", "--base-path=" + plain,
		"--listen=127.0.0.1", fmt.Sprintf("--port=%d", dmPort), "--max-connections=64", plain}, gitEnv))
	must(waitTCP(fmt.Sprintf("127.0.0.1:%d", hbPort)))
	must(waitTCP(fmt.Sprintf("127.0.0.1:%d", dmPort)))

	gs := &server{name: "gitserver", http: gsBase + "/git/admin/", auth: "Bearer " + token}
	hb := &server{name: "http-backend", http: fmt.Sprintf("http://127.0.0.1:%d/git/", hbPort)}
	dm := &server{name: "git daemon", daemon: fmt.Sprintf("127.0.0.1:%d", dmPort)}

	// Wait for gitserver's maintenance (bitmaps) on both repositories.
	logf("waiting for gitserver's background maintenance")
	maintStart := time.Now()
	deadline := time.Now().Add(10 * time.Minute)
	for {
		// Done: both bitmaps and commit-graphs written, and no gc still
		// running (gc.pid exists while it does; the commit-graph of the
		// large repository comes seconds after its bitmap). Measuring
		// while it runs would charge gitserver for its own maintenance.
		b, _ := filepath.Glob(filepath.Join(data, "repos", "*.git", "objects", "pack", "*.bitmap"))
		cg, _ := filepath.Glob(filepath.Join(data, "repos", "*.git", "objects", "info", "commit-graph"))
		running, _ := filepath.Glob(filepath.Join(data, "repos", "*.git", "gc.pid"))
		if len(b) >= 2 && len(cg) >= 2 && len(running) == 0 {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("gitserver did not write bitmaps")
		}
		time.Sleep(200 * time.Millisecond)
	}
	setupNote += fmt.Sprintf("gitserver's maintenance after the pushes (both repositories): %.0f s until bitmaps and commit-graph.\n", time.Since(maintStart).Seconds())

	// Sanity: every server answers a real clone identically.
	for _, u := range []string{gsURL("gogit"), hb.http + "gogit.git", "git://" + dm.daemon + "/gogit.git"} {
		d := filepath.Join(tmp, "sanity")
		must(gitRun("", "clone", "-q", "--bare", u, d))
		if got, want := gitOut(d, "rev-parse", "master"), gitOut(filepath.Join(src, "gogit.git"), "rev-parse", "master"); got != want {
			return fmt.Errorf("%s: master %s, want %s", u, got, want)
		}
		os.RemoveAll(d)
	}

	var results []result
	scale := 1
	if !*flagQuick {
		scale = 2
	}
	hbb := &server{name: "http-backend+bitmaps", http: hb.http}
	for _, repo := range []string{"gogit", "large"} {
		cs := cloneSet{gs: gs, hbb: hbb, hb: hb}
		if repo == "gogit" {
			cs.dm = dm
		}
		sc := scale
		if repo == "large" {
			sc = 1 // keeps make bench within its time budget
		}
		rs, err := measureClones(tmp, repo, filepath.Join(src, repo+".git"), cs, sc, repo == "large")
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}

	// Small pushes (hooks included on gitserver).
	pushes := 20 * scale
	logf("small pushes (%d each)", pushes)
	gsPush, err := pushTimes(tmp, gsURL("push"), pushes)
	if err != nil {
		return err
	}
	hbPush, err := pushTimes(tmp, hb.http+"push.git", pushes)
	if err != nil {
		return err
	}
	results = append(results, result{name: "small push, median wall time (git push, 1 commit)", unit: "ms",
		gs: median(gsPush), hb: median(hbPush), target: "<= 1.2x", comment: fmt.Sprintf("p90 %.0f vs %.0f ms", pct(gsPush, 0.9), pct(hbPush, 0.9))})

	// 16 concurrent large clones, distinct commits (no cache hit: every
	// byte passes through the server), RSS of the gitserver process.
	logf("16 concurrent large clones")
	gsPID := gsProc.cmd.Process.Pid
	peak, fails16 := rssDuring(gs, "large", filepath.Join(src, "large.git"), gsPID, 16)
	hwm := statusKB(gsPID, "VmHWM")
	results = append(results, result{name: "16 concurrent large full clones (distinct commits): failures", unit: "failed",
		gs: float64(fails16), target: "0"})
	results = append(results, result{name: "gitserver process RSS, peak VmRSS sampled during 16 concurrent large clones", unit: "MiB",
		gs: float64(peak) / 1024, target: "<= 150 MiB",
		comment: fmt.Sprintf("VmHWM of the gitserver process over the whole run: %.1f MiB; git children not included", float64(hwm)/1024)})

	// Maintenance after many pushes: full gc vs geometric (-repack N).
	if *flagRepack > 0 {
		rs, err := repackBench(tmp, filepath.Join(src, "large.git"), *flagRepack)
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}

	// Push -> claim wake-up latency.
	wakes := 50
	if *flagQuick {
		wakes = 10
	}
	logf("build claim wake-up latency (%d pushes)", wakes)
	lat, whole, err := wakeups(tmp, gsBase, token, gsURL("wake"), wakes)
	if err != nil {
		return err
	}
	results = append(results, result{name: "push -> long-polling claim wake-up (from build queued_at)", unit: "ms",
		gs: median(lat), target: "median < 100 ms", comment: fmt.Sprintf("p99 %.1f ms, max %.1f ms over %d pushes", pct(lat, 0.99), pct(lat, 1), len(lat))})
	results = append(results, result{name: "push -> claim, upper bound (from `git push` start, whole push incl. hooks)", unit: "ms",
		gs: median(whole), target: "median < 100 ms", comment: fmt.Sprintf("p99 %.1f ms; the push is acknowledged somewhere inside this interval", pct(whole, 0.99))})

	// Mirrors (issue 11): webhook -> build queued, and idle polling cost.
	if !*flagNoMir {
		rs, err := mirrors(tmp, bin, gsBase, token, gsPID)
		if err != nil {
			return err
		}
		results = append(results, rs...)
	}

	// Pack cache statistics.
	statsNote := ""
	if code, _ := api("GET", "/healthz", nil); code == 200 {
		req, _ := http.NewRequest("GET", gsBase+"/metrics", nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "gitserver_pack_cache") || strings.HasPrefix(l, "gitserver_response_cache") {
					statsNote += "    " + l + "\n"
				}
			}
		}
	}
	if !*flagNoPG && pgtest.Available() {
		stopAll() // the comparison starts its own servers, on this machine's cores
		rs, err := comparePostgres(tmp, bin)
		if err != nil {
			return fmt.Errorf("PostgreSQL comparison: %w", err)
		}
		extraReport = reportPostgres(rs)
	}
	report(results, statsNote)
	if !*flagNoPages {
		return pagesSection(tmp, bin) // bench/pages.go (issue 13)
	}
	return nil
}

// extraReport follows report's table (the PostgreSQL comparison).
var extraReport string

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

func statusKB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(field + `:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return v
}

func pkt(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

var httpClient = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}

func pushTimes(tmp, url string, n int) ([]float64, error) {
	work := filepath.Join(tmp, "push-"+strconv.FormatInt(time.Now().UnixNano(), 36))
	if err := gitRun("", "init", "-q", "-b", "master", work); err != nil {
		return nil, err
	}
	var times []float64
	for i := 0; i <= n; i++ {
		os.WriteFile(filepath.Join(work, "file.txt"), []byte(fmt.Sprintf("change %d\n", i)), 0o644)
		if err := gitRun(work, "add", "."); err != nil {
			return nil, err
		}
		if err := gitRun(work, "commit", "-q", "-m", fmt.Sprint("c", i)); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := gitRun(work, "push", "-q", url, "master"); err != nil {
			return nil, err
		}
		if i > 0 { // the first push creates the branch
			times = append(times, float64(time.Since(t0).Microseconds())/1000)
		}
	}
	return times, nil
}

func wakeups(tmp, base, token, url string, n int) (lat, whole []float64, err error) {
	work := filepath.Join(tmp, "wake-work")
	if err := gitRun("", "init", "-q", "-b", "master", work); err != nil {
		return nil, nil, err
	}
	client := &http.Client{Timeout: 60 * time.Second}
	post := func(path string, body any) (int, map[string]any, time.Time, error) {
		j, _ := json.Marshal(body)
		req, _ := http.NewRequest("POST", base+path, bytes.NewReader(j))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		at := time.Now()
		if err != nil {
			return 0, nil, at, err
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, at, nil
	}
	// Drain anything queued by earlier phases.
	for {
		code, m, _, err := post("/api/v1/builds/claim", map[string]any{"worker": "bench", "wait_seconds": 0})
		if err != nil || code != 200 {
			break
		}
		post(fmt.Sprintf("/api/v1/builds/%v/complete", m["id"]), map[string]any{"lease_token": m["lease_token"], "status": "succeeded"})
	}
	for i := 0; i < n; i++ {
		type claim struct {
			code int
			m    map[string]any
			at   time.Time
			err  error
		}
		ch := make(chan claim, 1)
		go func() {
			code, m, at, err := post("/api/v1/builds/claim", map[string]any{"worker": "bench", "wait_seconds": 30})
			ch <- claim{code, m, at, err}
		}()
		time.Sleep(100 * time.Millisecond) // the worker is waiting
		os.WriteFile(filepath.Join(work, "f.txt"), []byte(fmt.Sprint(i)), 0o644)
		gitRun(work, "add", ".")
		gitRun(work, "commit", "-q", "-m", fmt.Sprint("w", i))
		pushStart := time.Now()
		if err := gitRun(work, "push", "-q", url, "master"); err != nil {
			return nil, nil, err
		}
		c := <-ch
		if c.err != nil || c.code != 200 {
			return nil, nil, fmt.Errorf("claim: %d %v %v", c.code, c.err, c.m)
		}
		q, err := time.Parse(time.RFC3339Nano, fmt.Sprint(c.m["queued_at"]))
		if err != nil {
			return nil, nil, fmt.Errorf("queued_at: %v", err)
		}
		lat = append(lat, float64(c.at.Sub(q).Microseconds())/1000)
		whole = append(whole, float64(c.at.Sub(pushStart).Microseconds())/1000)
		post(fmt.Sprintf("/api/v1/builds/%v/complete", c.m["id"]), map[string]any{"lease_token": c.m["lease_token"], "status": "succeeded"})
	}
	return lat, whole, nil
}

func median(v []float64) float64 { return pct(v, 0.5) }

func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64{}, v...)
	sort.Float64s(s)
	i := int(p*float64(len(s)-1) + 0.5)
	return s[min(i, len(s)-1)]
}

func report(results []result, stats string) {
	host, _ := os.Hostname()
	uname, _ := exec.Command("uname", "-a").Output()
	nproc, _ := exec.Command("nproc").Output()
	var b strings.Builder
	fmt.Fprintf(&b, "Run %s on %s (nproc %s), %s, %s; %s at the end\n\n", time.Now().UTC().Format("2006-01-02 15:04 MST"), host,
		strings.TrimSpace(string(nproc)), strings.TrimSpace(string(uname)), gitOut("", "version"), loadavg())
	if setupNote != "" {
		b.WriteString(setupNote + "\n")
	}
	fmt.Fprintf(&b, "| measurement | gitserver | plain http-backend, bitmaps | plain http-backend, as pushed | git daemon, as pushed | file over loopback HTTP | ratio | target |\n|---|---|---|---|---|---|---|---|\n")
	for _, r := range results {
		ratio := "-"
		base, vs := r.hb, "as pushed"
		switch r.vs {
		case "hbb":
			base, vs = r.hbb, "bitmaps"
		case "file":
			base, vs = r.file, "file"
		}
		if base > 0 && r.gs > 0 && r.unit != "MiB" && r.unit != "failed" && r.unit != "% of one core" {
			ratio = fmt.Sprintf("**%.2fx** vs %s", r.gs/base, vs)
		}
		f := func(v float64) string {
			if v == 0 && r.unit != "failed" {
				return "-"
			}
			return fmt.Sprintf("%.2f", v)
		}
		name := r.name + " [" + r.unit + "]"
		if r.comment != "" {
			name += " (" + r.comment + ")"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s |\n", name, f(r.gs), f(r.hbb), f(r.hb), f(r.dm), f(r.file), ratio, r.target)
	}
	if stats != "" {
		fmt.Fprintf(&b, "\ngitserver pack cache counters at the end of the run:\n\n%s", stats)
	}
	b.WriteString(extraReport)
	fmt.Print(b.String())
	if *flagOut != "" {
		must(os.WriteFile(*flagOut, []byte(b.String()), 0o644))
	}
}

// setupNote describes the repositories and the setup times (report header).
var setupNote string

// apiCall is one JSON API request with a bearer token; it returns the
// status and the raw answer.
func apiCall(base, token, method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, base+path, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func apiJSON(base, token, method, path string, body any) (int, map[string]any, error) {
	code, b, err := apiCall(base, token, method, path, body)
	if err != nil {
		return 0, nil, err
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	return code, m, nil
}

// cpuTicks is utime+stime of pid plus cutime+cstime (its reaped children:
// the git and ssh processes of syncs, upload-pack of the SSH server), in
// clock ticks (USER_HZ, 100/s).
func cpuTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 15 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var sum int64
	for _, i := range []int{11, 12, 13, 14} { // fields 14-17: utime stime cutime cstime
		v, err := strconv.ParseInt(f[i], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

const userHZ = 100

// metricSum sums the samples of a Prometheus counter (all label sets).
func metricSum(base, name string) float64 {
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, name+" ") || strings.HasPrefix(l, name+"{") {
			f := strings.Fields(l)
			v, _ := strconv.ParseFloat(f[len(f)-1], 64)
			sum += v
		}
	}
	return sum
}

// settle waits until each pid used less than 5 % of one core over 3 s
// (background maintenance after the initial syncs), 90 s at most.
func settle(pids ...int) {
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		var before []int64
		for _, p := range pids {
			t, _ := cpuTicks(p)
			before = append(before, t)
		}
		time.Sleep(3 * time.Second)
		quiet := true
		for i, p := range pids {
			t, _ := cpuTicks(p)
			if float64(t-before[i])/userHZ/3 > 0.05 {
				quiet = false
			}
		}
		if quiet {
			return
		}
	}
	logf("  (still busy after 90 s; measuring anyway)")
}

// mirrors measures issue 11's performance targets. A second gitserver (SSH
// on) is the upstream; the benchmarked server mirrors it over real SSH with
// deploy keys.
//
//  1. Webhook -> build queued: push one commit upstream (git over HTTP),
//     POST a signed Gitea push webhook to the mirror, take the build's
//     queued_at (from a long-polling claim) minus the send time.
//  2. Idle polling: M mirrors of one unchanged upstream repository at the
//     minimum interval (1m); CPU of both servers (with reaped children)
//     over at least 2 minutes after they settle.
func mirrors(tmp, bin, gsBase, token string, gsPID int) ([]result, error) {
	upHTTP, upSSH := fmt.Sprintf("127.0.0.1:%d", freePort()), fmt.Sprintf("127.0.0.1:%d", freePort())
	upData := filepath.Join(tmp, "updata")
	upProc := start(bin, []string{"serve", "--data", upData, "--http-addr", upHTTP, "--ssh-addr", upSSH, "--log-level", "warn"},
		[]string{"GITSERVER_MAINTENANCE_DELAY=1s"})
	procs = append(procs, upProc)
	upPID := upProc.cmd.Process.Pid
	upBase := "http://" + upHTTP
	if err := waitReady(upBase + "/readyz"); err != nil {
		return nil, err
	}
	if err := waitTCP(upSSH); err != nil {
		return nil, err
	}
	tokCmd := exec.Command(bin, "admin", "token", "create", "admin", "--scope", "repo:read", "--scope", "repo:write",
		"--scope", "admin", "--data", upData)
	out, err := tokCmd.Output()
	if err != nil {
		return nil, fmt.Errorf("upstream token: %v", err)
	}
	upToken := strings.TrimSpace(string(out))
	upURL := func(repo string) string {
		return fmt.Sprintf("http://admin:%s@%s/git/admin/%s.git", upToken, upHTTP, repo)
	}
	scan, err := exec.Command("ssh-keyscan", "-t", "ed25519", "-p", strings.Split(upSSH, ":")[1], "127.0.0.1").Output()
	if err != nil || !strings.Contains(string(scan), "ssh-ed25519") {
		return nil, fmt.Errorf("ssh-keyscan of the upstream: %v %q", err, scan)
	}
	hostKeys := []string{strings.TrimSpace(string(scan))}

	// newMirror creates upstream repository name (if work is not "",
	// pushing its master) and the mirror admin/<mname> of it here, adds
	// the mirror's deploy key upstream and syncs it.
	newMirror := func(name, mname, interval string) error {
		code, m, err := apiJSON(gsBase, token, "POST", "/api/v1/repos", map[string]any{"owner": "admin", "name": mname, "visibility": "restricted",
			"mirror": map[string]any{"url": "ssh://git@" + upSSH + "/admin/" + name + ".git", "host_keys": hostKeys, "interval": interval}})
		if err != nil || code != 201 {
			return fmt.Errorf("create mirror %s: %d %v %v", mname, code, m, err)
		}
		mi, _ := m["mirror"].(map[string]any)
		code, k, err := apiJSON(upBase, upToken, "POST", "/api/v1/repos/admin/"+name+"/deploy-keys",
			map[string]any{"title": mname, "key": mi["deploy_key"], "read_only": true})
		if err != nil || code != 201 {
			return fmt.Errorf("add deploy key upstream: %d %v %v", code, k, err)
		}
		// The creation's first sync ran before the key was added.
		if code, m, err := apiJSON(gsBase, token, "POST", "/api/v1/repos/admin/"+mname+"/mirror/sync", nil); err != nil || code != 202 {
			return fmt.Errorf("sync %s: %d %v %v", mname, code, m, err)
		}
		return nil
	}
	// waitOK waits until mirror mname has synced without error after
	// the sync asked for by newMirror.
	waitOK := func(mname string) error {
		deadline := time.Now().Add(3 * time.Minute)
		var m map[string]any
		for time.Now().Before(deadline) {
			_, m, _ = apiJSON(gsBase, token, "GET", "/api/v1/repos/admin/"+mname+"/mirror", nil)
			if m["status"] == "ok" && m["last_sync_at"] != nil && m["last_error"] == nil {
				return nil
			}
			time.Sleep(100 * time.Millisecond)
		}
		return fmt.Errorf("mirror %s did not sync: %v", mname, m)
	}
	for _, r := range []string{"app", "idle"} {
		if code, m, err := apiJSON(upBase, upToken, "POST", "/api/v1/repos", map[string]any{"owner": "admin", "name": r, "visibility": "restricted"}); err != nil || code != 201 {
			return nil, fmt.Errorf("create upstream repo %s: %d %v %v", r, code, m, err)
		}
	}
	work := filepath.Join(tmp, "mirror-work")
	if err := gitRun("", "init", "-q", "-b", "master", work); err != nil {
		return nil, err
	}
	commit := func(i int) (string, error) {
		os.WriteFile(filepath.Join(work, "f.txt"), []byte(fmt.Sprintf("change %d\n", i)), 0o644)
		if err := gitRun(work, "add", "."); err != nil {
			return "", err
		}
		if err := gitRun(work, "commit", "-q", "-m", fmt.Sprint("m", i)); err != nil {
			return "", err
		}
		return gitOut(work, "rev-parse", "HEAD"), nil
	}
	if _, err := commit(0); err != nil {
		return nil, err
	}
	for _, r := range []string{"app", "idle"} {
		if err := gitRun(work, "push", "-q", upURL(r), "master"); err != nil {
			return nil, err
		}
	}
	if err := gitRun(work, "tag", "v0"); err != nil {
		return nil, err
	}
	if err := gitRun(work, "push", "-q", upURL("idle"), "v0"); err != nil {
		return nil, err
	}

	// 1. Webhook -> sync -> build queued.
	if err := newMirror("app", "app", "10m"); err != nil {
		return nil, err
	}
	if err := waitOK("app"); err != nil {
		return nil, err
	}
	code, wh, err := apiJSON(gsBase, token, "GET", "/api/v1/repos/admin/app/mirror/webhook", nil)
	if err != nil || code != 200 {
		return nil, fmt.Errorf("mirror webhook: %d %v %v", code, wh, err)
	}
	whURL, _ := wh["url"].(string)
	i := strings.Index(whURL, "/hooks/scm/")
	if i < 0 {
		return nil, fmt.Errorf("webhook url %q", whURL)
	}
	hookURL, secret := gsBase+whURL[i:], fmt.Sprint(wh["secret"])
	claimClient := &http.Client{Timeout: 60 * time.Second}
	claim := func(wait int) (int, map[string]any, time.Time, error) {
		j, _ := json.Marshal(map[string]any{"worker": "bench-mirror", "wait_seconds": wait})
		req, _ := http.NewRequest("POST", gsBase+"/api/v1/builds/claim", bytes.NewReader(j))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := claimClient.Do(req)
		at := time.Now()
		if err != nil {
			return 0, nil, at, err
		}
		defer resp.Body.Close()
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m, at, nil
	}
	complete := func(m map[string]any) {
		apiCall(gsBase, token, "POST", fmt.Sprintf("/api/v1/builds/%v/complete", m["id"]), map[string]any{"lease_token": m["lease_token"], "status": "succeeded"})
	}
	for { // the initial sync's build, and anything left by earlier phases
		code, m, _, err := claim(0)
		if err != nil || code != 200 {
			break
		}
		complete(m)
	}
	hooks := 20
	if *flagQuick {
		hooks = 5
	}
	logf("mirror: webhook -> build queued (%d pushes upstream)", hooks)
	var queued, claimed []float64
	before := gitOut(work, "rev-parse", "HEAD")
	for n := 1; n <= hooks; n++ {
		after, err := commit(n)
		if err != nil {
			return nil, err
		}
		if err := gitRun(work, "push", "-q", upURL("app"), "master"); err != nil {
			return nil, err
		}
		type answer struct {
			code int
			m    map[string]any
			at   time.Time
			err  error
		}
		ch := make(chan answer, 1)
		go func() {
			code, m, at, err := claim(30)
			ch <- answer{code, m, at, err}
		}()
		time.Sleep(50 * time.Millisecond) // the worker is waiting
		body, _ := json.Marshal(map[string]any{
			"ref": "refs/heads/master", "before": before, "after": after,
			"commits":     []map[string]any{{"id": after, "message": fmt.Sprint("m", n), "timestamp": time.Now().UTC().Format(time.RFC3339)}},
			"head_commit": map[string]any{"id": after, "message": fmt.Sprint("m", n)},
			"repository": map[string]any{"id": 1, "name": "app", "full_name": "admin/app", "owner": map[string]any{"login": "admin"},
				"default_branch": "master", "html_url": upBase + "/admin/app", "clone_url": upBase + "/git/admin/app.git",
				"ssh_url": "ssh://git@" + upSSH + "/admin/app.git"},
			"pusher": map[string]any{"login": "bench"}, "sender": map[string]any{"login": "bench"},
		})
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(body)
		req, _ := http.NewRequest("POST", hookURL, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Gitea-Event", "push")
		req.Header.Set("X-Gitea-Delivery", fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), n))
		req.Header.Set("X-Gitea-Signature", hex.EncodeToString(mac.Sum(nil)))
		sent := time.Now()
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return nil, fmt.Errorf("webhook: %s", resp.Status)
		}
		a := <-ch
		// The initial sync queues its build after it reports ok: a
		// claim may get that one (or another older build) first.
		for tries := 0; a.err == nil && a.code == 200 && a.m["commit"] != after && tries < 5; tries++ {
			complete(a.m)
			a.code, a.m, a.at, a.err = claim(30)
		}
		if a.err != nil || a.code != 200 {
			return nil, fmt.Errorf("claim after the webhook: %d %v %v", a.code, a.err, a.m)
		}
		if a.m["commit"] != after {
			return nil, fmt.Errorf("claimed build of %v, want %s (%v)", a.m["commit"], after, a.m)
		}
		q, err := time.Parse(time.RFC3339Nano, fmt.Sprint(a.m["queued_at"]))
		if err != nil {
			return nil, fmt.Errorf("queued_at: %v", err)
		}
		queued = append(queued, float64(q.Sub(sent).Microseconds())/1000)
		claimed = append(claimed, float64(a.at.Sub(sent).Microseconds())/1000)
		complete(a.m)
		before = after
	}
	logf("  webhook -> queued_at: median %.1f ms, p90 %.1f ms; -> claim answered: median %.1f ms",
		median(queued), pct(queued, 0.9), median(claimed))
	rs := []result{{name: "mirror: webhook sent -> sync -> build queued (build's `queued_at`), one-commit push upstream, SSH on loopback", unit: "ms",
		gs: median(queued), target: "median < 1000 ms",
		comment: fmt.Sprintf("p90 %.0f ms, max %.0f ms over %d webhooks; until the waiting claim answered: median %.0f ms, p90 %.0f ms",
			pct(queued, 0.9), pct(queued, 1), len(queued), median(claimed), pct(claimed, 0.9))}}

	// 2. Idle polling cost.
	nm := *flagMirN
	window := 150 * time.Second
	if *flagQuick {
		nm = min(nm, 20)
		window = 65 * time.Second
	}
	logf("mirror: idle polling, creating %d mirrors (interval 1m) of one unchanged upstream repository", nm)
	settle(gsPID, upPID)
	base0, _ := cpuTicks(gsPID)
	baseT := time.Now()
	time.Sleep(15 * time.Second)
	base1, _ := cpuTicks(gsPID)
	baseline := float64(base1-base0) / userHZ / time.Since(baseT).Seconds() * 100
	t0 := time.Now()
	for k := 1; k <= nm; k++ {
		if err := newMirror("idle", fmt.Sprintf("idle%03d", k), "1m"); err != nil {
			return nil, err
		}
	}
	for k := 1; k <= nm; k++ {
		if err := waitOK(fmt.Sprintf("idle%03d", k)); err != nil {
			return nil, err
		}
	}
	logf("  %d mirrors created and synced in %.1fs; waiting for the servers to settle", nm, time.Since(t0).Seconds())
	settle(gsPID, upPID)
	logf("  measuring for %s", window)
	syncs0, fetch0 := metricSum(gsBase, "gitserver_mirror_syncs_total"), metricSum(gsBase, "gitserver_mirror_fetches_total")
	gs0, _ := cpuTicks(gsPID)
	up0, _ := cpuTicks(upPID)
	w0 := time.Now()
	time.Sleep(window)
	gs1, _ := cpuTicks(gsPID)
	up1, _ := cpuTicks(upPID)
	wall := time.Since(w0).Seconds()
	syncs1, fetch1 := metricSum(gsBase, "gitserver_mirror_syncs_total"), metricSum(gsBase, "gitserver_mirror_fetches_total")
	polls, fetches := syncs1-syncs0, fetch1-fetch0
	gsCPU, upCPU := float64(gs1-gs0)/userHZ, float64(up1-up0)/userHZ
	gsPct, upPct := gsCPU/wall*100, upCPU/wall*100
	perPoll, upPerPoll := 0.0, 0.0
	if polls > 0 {
		perPoll, upPerPoll = gsCPU/polls*1000, upCPU/polls*1000
	}
	logf("  %.0f polls (%.0f fetched) in %.0fs = %.1f/min; gitserver %.2f%% of one core (%.1f ms CPU per poll, idle baseline %.2f%%), upstream %.2f%% (%.1f ms per poll)",
		polls, fetches, wall, polls/wall*60, gsPct, perPoll, baseline, upPct, upPerPoll)
	scaled := fmt.Sprintf("%d mirrors at 1m = 1,000 at 10m", nm)
	if nm != 100 {
		scaled = fmt.Sprintf("%d mirrors at 1m = %d at 10m", nm, nm*10)
	}
	rs = append(rs,
		result{name: fmt.Sprintf("mirror: idle polling, gitserver + its git/ssh children, %s", scaled), unit: "% of one core",
			gs: gsPct, target: fmt.Sprintf("< 1 %% of one core (scaled: %d mirrors at 1m)", nm),
			comment: fmt.Sprintf("%.0f polls in %.0f s (%.0f/min, %.0f fetched), %.1f ms CPU per poll, i.e. %.2f %% at exactly 100 polls/min (1,000 mirrors at 10m); idle server without mirrors %.2f %%",
				polls, wall, polls/wall*60, fetches, perPoll, perPoll*100/60/1000*100, baseline)},
		result{name: "mirror: idle polling, the upstream gitserver's side (SSH server + upload-pack)", unit: "% of one core",
			gs: upPct, target: "- (cost to the upstream)", comment: fmt.Sprintf("%.1f ms CPU per poll", upPerPoll)})
	return rs, nil
}
