package main

// The web pages section (issue 13): the repository home, tree, blob and
// commit-log pages of the go-git history and of a generated 100k-commit
// one, timed from a client over loopback (sequential requests after a
// warm-up, whole answer read), gitserver side by side with Gitea 1.26
// serving the same repositories on the same machine.
//
// Both servers get the repositories by `git push` over HTTP, and are
// read by their owner, signed in with the sign-in form; both keep them as their
// housekeeping leaves them: gitserver's maintenance runs by itself after
// the push; Gitea's periodic `git gc` (cron, disabled in the bench) is
// run by hand (`repack -a -d -b`, `commit-graph write`), so that neither
// is measured on a fresh unpacked push.
//
//	go run ./bench -pages-only            # this section alone (~5 min; +35 s the first time)
//	go run ./bench -skip-pages            # everything else

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"gitserver/bench/history"
)

var (
	flagNoPages    = flag.Bool("skip-pages", false, "skip the web page measurements (issue 13)")
	flagPagesOnly  = flag.Bool("pages-only", false, "run only the web page measurements (issue 13)")
	flagPagesN     = flag.Int("pages-n", 40, "sequential requests per page and server after the warm-up (-quick: 10)")
	flagPagesLarge = flag.Int("pages-commits", 100000, "commits of the generated long history (cached in ~/.cache/gitserver-bench)")
	flagGitea      = flag.String("gitea", "", "Gitea 1.26 binary (default: $GITSERVER_TEST_GITEA, else ~/.cache/gitserver-test/gitea-1.26.0, built by .ci/gitea.sh)")
)

// pagesOnly is `-pages-only`: build gitserver, run the section, report.
func pagesOnly() error {
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
	logf("building gitserver")
	bin := filepath.Join(tmp, "gitserver")
	build := exec.Command("go", "build", "-o", bin, "./cmd/gitserver")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %v: %s", err, out)
	}
	if *flagOut != "" {
		must(os.WriteFile(*flagOut, nil, 0o644))
	}
	return pagesSection(tmp, bin)
}

// pageTiming is one page's timings on both servers (ms).
type pageTiming struct {
	repo, page                       string
	gs1, gs50, gs90, gt1, gt50, gt90 float64 // 1: the first request
}

// pagesSection runs the section and prints its table (appended to -out).
func pagesSection(tmp, bin string) error {
	giteaBin, err := findGitea()
	if err != nil {
		return err
	}
	n := *flagPagesN
	if *flagQuick {
		n = min(n, 10)
	}
	src := filepath.Join(tmp, "pages-src")
	gogit := filepath.Join(src, "gogit.git")
	logf("pages: preparing repositories (go-git bundle, %d commits)", *flagPagesLarge)
	must(gitRun("", "clone", "-q", "--mirror", *flagBundle, gogit))
	long, err := history.Cached(*flagPagesLarge, func(s string) { logf("pages: %s", s) })
	if err != nil {
		return err
	}
	type repo struct {
		name, dir, branch, subdir, subfile, file, marker string
	}
	repos := []repo{
		{"gogit", gogit, "master", "plumbing/object", "commit_walker.go", "repository.go", "PlainOpen"},
		{"history", long, history.Branch, "d05", "f385.go", "d05/f005.go", "f005"},
	}

	// gitserver, its own instance.
	data := filepath.Join(tmp, "pages-data")
	gsPort := freePort()
	procs = append(procs, start(bin, []string{"serve", "--data", data, "--http-addr", fmt.Sprintf("127.0.0.1:%d", gsPort), "--ssh-addr", "",
		"--log-level", "warn"}, []string{"GITSERVER_MAINTENANCE_DELAY=1s"}))
	gsBase := fmt.Sprintf("http://127.0.0.1:%d", gsPort)
	must(waitReady(gsBase + "/readyz"))
	tokOut, err := exec.Command(bin, "admin", "token", "create", "admin", "--scope", "repo:read", "--scope", "repo:write",
		"--data", data).Output()
	if err != nil {
		return fmt.Errorf("token: %v", err)
	}
	token := strings.TrimSpace(string(tokOut))
	for _, r := range repos {
		if code, m, err := apiJSON(gsBase, token, "POST", "/api/v1/repos", map[string]any{"owner": "admin", "name": r.name,
			"visibility": "public", "default_branch": r.branch}); err != nil || code != 201 {
			return fmt.Errorf("gitserver: create %s: %d %v %v", r.name, code, m, err)
		}
		logf("pages: pushing %s to gitserver", r.name)
		u := fmt.Sprintf("http://admin:%s@127.0.0.1:%d/git/admin/%s.git", token, gsPort, r.name)
		if err := gitRun(r.dir, "push", "-q", u, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"); err != nil {
			return err
		}
	}
	logf("pages: waiting for gitserver's maintenance")
	deadline := time.Now().Add(10 * time.Minute)
	for {
		b, _ := filepath.Glob(filepath.Join(data, "repos", "*.git", "objects", "pack", "*.bitmap"))
		g, _ := filepath.Glob(filepath.Join(data, "repos", "*.git", "objects", "info", "commit-graph*"))
		if len(b) >= len(repos) && len(g) >= len(repos) {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("gitserver did not finish its maintenance in 10 minutes")
		}
		time.Sleep(500 * time.Millisecond)
	}

	// Gitea.
	gt, err := startGitea(giteaBin, filepath.Join(tmp, "gitea"))
	if err != nil {
		return err
	}
	for _, r := range repos {
		code, b, err := gt.api("POST", "/user/repos", map[string]any{"name": r.name, "private": false, "auto_init": false, "default_branch": r.branch})
		if err != nil || code != 201 {
			return fmt.Errorf("gitea: create %s: %d %s %v", r.name, code, b, err)
		}
		logf("pages: pushing %s to Gitea", r.name)
		u := fmt.Sprintf("http://%s:%s@127.0.0.1:%d/%s/%s.git", gt.user, url.QueryEscape(gt.password), gt.port, gt.user, r.name)
		if err := gitRun(r.dir, "push", "-q", u, "refs/heads/*:refs/heads/*", "refs/tags/*:refs/tags/*"); err != nil {
			return err
		}
		dir := filepath.Join(gt.dir, "repos", gt.user, r.name+".git")
		for _, args := range [][]string{{"-c", "pack.threads=1", "repack", "-a", "-d", "-b", "-q"}, {"commit-graph", "write", "--reachable"}} {
			if err := gitRun(dir, args...); err != nil {
				return fmt.Errorf("gitea housekeeping: %w", err)
			}
		}
	}

	// Signed in on both, as the repositories' owner.
	pw, err := os.ReadFile(filepath.Join(data, "initial-admin-password"))
	if err != nil {
		return err
	}
	gsClient, err := signIn(gsBase, "/login", "csrf", url.Values{"username": {"admin"}, "password": {strings.TrimSpace(string(pw))}})
	if err != nil {
		return fmt.Errorf("gitserver: %w", err)
	}
	gtClient, err := signIn(fmt.Sprintf("http://127.0.0.1:%d", gt.port), "/user/login", "_csrf", url.Values{"user_name": {gt.user}, "password": {gt.password}})
	if err != nil {
		return fmt.Errorf("gitea: %w", err)
	}

	// The pages. Each answer must be 200 and show marker (a page that
	// errs or is empty would be fast for the wrong reason).
	type page struct{ name, gs, gt, marker string }
	var rows []pageTiming
	for _, r := range repos {
		gsr, gtr := gsBase+"/admin/"+r.name, fmt.Sprintf("http://127.0.0.1:%d/%s/%s", gt.port, gt.user, r.name)
		readme := "README"
		pages := []page{
			{"repository home", gsr, gtr, readme},
			{"tree " + r.subdir, gsr + "/tree/" + r.branch + "/" + r.subdir, gtr + "/src/branch/" + r.branch + "/" + r.subdir, r.subfile},
			{"blob " + r.file, gsr + "/blob/" + r.branch + "/" + r.file, gtr + "/src/branch/" + r.branch + "/" + r.file, r.marker},
			{"commit log, page 1", gsr + "/commits/" + r.branch, gtr + "/commits/branch/" + r.branch, commitAt(r.dir, r.branch, 0)},
			{"commit log, page 21 (skip 1000)", gsr + "/commits/" + r.branch + "?page=21", gtr + "/commits/branch/" + r.branch + "?page=21", commitAt(r.dir, r.branch, 1000)},
		}
		for _, p := range pages {
			logf("pages: %s: %s (%d requests each)", r.name, p.name, n)
			gsT, gsFirst, err := timePage(gsClient, p.gs, p.marker, n)
			if err != nil {
				return fmt.Errorf("gitserver %s: %w", p.name, err)
			}
			gtT, gtFirst, err := timePage(gtClient, p.gt, p.marker, n)
			if err != nil {
				return fmt.Errorf("gitea %s: %w", p.name, err)
			}
			rows = append(rows, pageTiming{r.name, p.name, gsFirst, pct(gsT, .5), pct(gsT, .9), gtFirst, pct(gtT, .5), pct(gtT, .9)})
		}
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nWeb pages (issue 13): server time from a client over loopback, %d sequential requests per page after 3 warm-up ones (first: the first of those, cold), "+
		"signed in as the repositories' owner; gitserver vs Gitea 1.26 serving the same repositories "+
		"(go-git: 2380 commits on master; history: %d commits)\n\n", n, *flagPagesLarge)
	fmt.Fprintf(&b, "| repository | page | gitserver p50 [ms] | p90 | first | Gitea p50 [ms] | p90 | first | ratio gitserver/Gitea (p50) | target |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rows {
		ok := "p50 < 50 ms: yes"
		if r.gs50 >= 50 {
			ok = "p50 < 50 ms: **no**"
		}
		fmt.Fprintf(&b, "| %s | %s | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.2fx | %s |\n", r.repo, r.page, r.gs50, r.gs90, r.gs1, r.gt50, r.gt90, r.gt1, r.gs50/r.gt50, ok)
	}
	fmt.Print(b.String())
	if *flagOut != "" {
		f, err := os.OpenFile(*flagOut, os.O_APPEND|os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.WriteString(b.String()); err != nil {
			return err
		}
	}
	return nil
}

// commitAt is the abbreviated hash (7 digits, which both servers show)
// of the first commit of the log page that skips skip commits.
func commitAt(dir, branch string, skip int) string {
	return gitOut(dir, "log", "-1", fmt.Sprintf("--skip=%d", skip), "--format=%H", branch)[:7]
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// timePage GETs u n times after 3 warm-up requests, each answer read in
// full, and returns the times in ms and the first request's. Every answer
// must be 200 and contain marker.
func timePage(client *http.Client, u, marker string, n int) ([]float64, float64, error) {
	var times []float64
	var first float64
	for i := 0; i < 3+n; i++ {
		t0 := time.Now()
		resp, err := client.Get(u)
		if err != nil {
			return nil, 0, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return nil, 0, err
		}
		if i == 0 {
			first = float64(d.Microseconds()) / 1000
		}
		if resp.StatusCode != http.StatusOK || !bytes.Contains(body, []byte(marker)) {
			return nil, 0, fmt.Errorf("GET %s: %d, %d bytes, marker %q found: %v", u, resp.StatusCode, len(body), marker, bytes.Contains(body, []byte(marker)))
		}
		if i >= 3 {
			times = append(times, float64(d.Microseconds())/1000)
		}
	}
	return times, first, nil
}

// signIn posts a sign-in form (its CSRF token taken from the form's
// hidden field named csrfField) and returns a client that carries the
// session cookie. Sign-in must answer with a redirect.
func signIn(base, path, csrfField string, form url.Values) (*http.Client, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	client := &http.Client{Jar: jar, Timeout: 60 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(base + path)
	if err != nil {
		return nil, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s%s: %d", base, path, resp.StatusCode)
	}
	// Gitea 1.26 has no token field (it checks the Origin instead).
	if m := regexp.MustCompile(`name="` + regexp.QuoteMeta(csrfField) + `"\s+value="([^"]+)"`).FindSubmatch(body); m != nil {
		form.Set(csrfField, html.UnescapeString(string(m[1])))
	}
	req, _ := http.NewRequest("POST", base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", base)
	req.Header.Set("Referer", base+path)
	resp, err = client.Do(req)
	if err != nil {
		return nil, err
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusFound {
		return nil, fmt.Errorf("sign-in: %d %.300s", resp.StatusCode, body)
	}
	return client, nil
}

func findGitea() (string, error) {
	p := *flagGitea
	if p == "" {
		p = os.Getenv("GITSERVER_TEST_GITEA")
	}
	if p == "" {
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		p = filepath.Join(cache, "gitserver-test", "gitea-1.26.0")
	}
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("no Gitea at %s: build it with `bash .ci/gitea.sh` (or pass -gitea PATH, or -skip-pages)", p)
	}
	return p, nil
}

// benchGitea is a Gitea started as cmd/gitserver's test harness starts it
// (gitea_harness_test.go): its own work directory, SQLite, an admin
// account and an API token; no SSH.
type benchGitea struct {
	bin, dir, conf, user, password, token string
	port                                  int
}

func startGitea(bin, dir string) (*benchGitea, error) {
	g := &benchGitea{bin: bin, dir: dir, user: "gitadmin", port: freePort(),
		password: "Pw-" + base64.RawURLEncoding.EncodeToString(randomBytes(12))}
	g.conf = filepath.Join(dir, "custom", "conf", "app.ini")
	u, err := user.Current()
	if err != nil {
		return nil, err
	}
	root := ""
	if os.Geteuid() == 0 {
		root = "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n"
	}
	static := ""
	if out, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil {
		s := filepath.Join(strings.TrimSpace(string(out)), "code.gitea.io", "gitea@v1.26.0")
		if _, err := os.Stat(filepath.Join(s, "templates")); err == nil {
			static = "STATIC_ROOT_PATH = " + s + "\n"
		}
	}
	ini := fmt.Sprintf(`APP_NAME = gitserver bench peer
RUN_USER = %[1]s
RUN_MODE = prod
WORK_PATH = %[2]s
%[3]s
[server]
PROTOCOL = http
HTTP_ADDR = 127.0.0.1
HTTP_PORT = %[4]d
ROOT_URL = http://127.0.0.1:%[4]d/
LOCAL_ROOT_URL = http://127.0.0.1:%[4]d/
DOMAIN = 127.0.0.1
%[5]sAPP_DATA_PATH = %[2]s/data
OFFLINE_MODE = true
LFS_START_SERVER = false
DISABLE_SSH = true

[database]
DB_TYPE = sqlite3
PATH = %[2]s/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = %[2]s/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = %[6]s
INTERNAL_TOKEN = %[7]s
PASSWORD_HASH_ALGO = pbkdf2

[oauth2]
ENABLED = false

[service]
DISABLE_REGISTRATION = true

[session]
PROVIDER = memory

[cache]
ADAPTER = memory

[mailer]
ENABLED = false

[indexer]
REPO_INDEXER_ENABLED = false

[cron]
ENABLED = false

[queue]
TYPE = channel

[actions]
ENABLED = false

[log]
MODE = console
LEVEL = warn
`, u.Username, dir, root, g.port, static, fmt.Sprintf("%x", randomBytes(32)), fmt.Sprintf("%x", randomBytes(32)))
	if err := os.MkdirAll(filepath.Dir(g.conf), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(g.conf, []byte(ini), 0o600); err != nil {
		return nil, err
	}
	logf("pages: starting Gitea (%s)", bin)
	if _, err := g.run("migrate"); err != nil {
		return nil, err
	}
	if _, err := g.run("admin", "user", "create", "--admin", "--username", g.user, "--password", g.password,
		"--email", g.user+"@example.test", "--must-change-password=false"); err != nil {
		return nil, err
	}
	out, err := g.run("admin", "user", "generate-access-token", "--username", g.user, "--token-name", "bench", "--scopes", "all", "--raw")
	if err != nil {
		return nil, err
	}
	if g.token = regexp.MustCompile(`(?m)^[0-9a-f]{40}$`).FindString(out); g.token == "" {
		return nil, fmt.Errorf("gitea: no access token in %q", out)
	}
	p := start(bin, []string{"--config", g.conf, "web"}, g.env())
	procs = append(procs, p)
	base := fmt.Sprintf("http://127.0.0.1:%d", g.port)
	if err := waitReady(base + "/api/healthz"); err != nil {
		return nil, fmt.Errorf("%w\n%s", err, p.out.String())
	}
	return g, nil
}

func (g *benchGitea) env() []string {
	env := []string{"GITEA_WORK_DIR=" + g.dir, "GITEA_CUSTOM=" + filepath.Join(g.dir, "custom")}
	if os.Geteuid() == 0 {
		env = append(env, "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true")
	}
	return env
}

func (g *benchGitea) run(args ...string) (string, error) {
	cmd := exec.Command(g.bin, append([]string{"--config", g.conf}, args...)...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(), g.env()...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("gitea %s: %v: %s", args[0], err, errb.String())
	}
	return out.String(), nil
}

func (g *benchGitea) api(method, path string, body any) (int, []byte, error) {
	j, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, fmt.Sprintf("http://127.0.0.1:%d/api/v1%s", g.port, path), bytes.NewReader(j))
	req.Header.Set("Authorization", "token "+g.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}
