package main

// A real upstream SCM for the tests of mirrored repositories: Gitea v1.26.0
// (built once per machine by .ci/gitea.sh), started on 127.0.0.1 with its own
// work directory, an admin account, an API token, its built-in SSH server
// (deploy keys) and webhooks allowed to loopback. See
// /work/shared/reference/test-infrastructure.md §1 for what was measured.

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gitserver/store"
)

// giteaVersion is the version .ci/gitea.sh builds; its module directory
// serves the templates (STATIC_ROOT_PATH).
const giteaVersion = "1.26.0"

var giteaBin struct {
	once sync.Once
	path string
	err  error
}

// giteaBinary is $GITSERVER_TEST_GITEA, else what .ci/gitea.sh prints (it
// builds Gitea on a machine's first run, ~9 minutes, then reuses the cached
// binary). A missing Gitea fails the test: it is never skipped.
func giteaBinary(t testing.TB) string {
	t.Helper()
	giteaBin.once.Do(func() {
		if p := os.Getenv("GITSERVER_TEST_GITEA"); p != "" {
			if _, err := os.Stat(p); err != nil {
				giteaBin.err = fmt.Errorf("GITSERVER_TEST_GITEA=%s: %v", p, err)
			}
			giteaBin.path = p
			return
		}
		script, err := findRepoFile(".ci/gitea.sh")
		if err != nil {
			giteaBin.err = err
			return
		}
		var stdout, stderr bytes.Buffer
		cmd := exec.Command("bash", script)
		cmd.Stdout = &stdout
		cmd.Stderr = io.MultiWriter(&stderr, os.Stderr) // a cold build takes minutes: show why
		start := time.Now()
		if err := cmd.Run(); err != nil {
			giteaBin.err = fmt.Errorf("%s (set GITSERVER_TEST_GITEA to a Gitea %s binary, or fix the build): %v\n%s",
				script, giteaVersion, err, stderr.String())
			return
		}
		giteaBin.path = strings.TrimSpace(stdout.String())
		if d := time.Since(start); d > 30*time.Second {
			fmt.Fprintf(os.Stderr, "gitea: %s built in %v\n", giteaBin.path, d.Round(time.Second))
		}
		if _, err := os.Stat(giteaBin.path); err != nil {
			giteaBin.err = fmt.Errorf("%s printed %q: %v\n%s", script, giteaBin.path, err, stderr.String())
		}
	})
	if giteaBin.err != nil {
		t.Fatalf("Gitea, the upstream SCM of the mirror tests, is not available: %v", giteaBin.err)
	}
	return giteaBin.path
}

// findRepoFile finds rel in the working directory or one of its parents
// (tests run in cmd/gitserver).
func findRepoFile(rel string) (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, rel)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%s not found above the working directory", rel)
		}
		dir = parent
	}
}

// giteaStaticRoot is Gitea's module directory (templates, locales), or ""
// when the module cache does not have it (the API and SSH work without).
func giteaStaticRoot() string {
	out, err := exec.Command("go", "env", "GOMODCACHE").Output()
	if err != nil {
		return ""
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "code.gitea.io", "gitea@v"+giteaVersion)
	if _, err := os.Stat(filepath.Join(dir, "templates")); err != nil {
		return ""
	}
	return dir
}

// Gitea is a running Gitea with an admin account (GiteaAdmin) and an API
// token with every scope.
type Gitea struct {
	t             testing.TB
	Bin           string
	Dir           string // work directory (app.ini, data/, repos/)
	Conf          string // app.ini
	HTTPURL       string // http://127.0.0.1:PORT (no trailing slash)
	SSHAddr       string // 127.0.0.1:PORT of the built-in SSH server
	HTTPPort      int
	SSHPort       int
	AdminUser     string
	AdminPassword string
	Token         string
	StartTime     time.Duration // the last start of `gitea web` until /api/healthz answered
	log           *syncBuffer
	cmd           *exec.Cmd
	done          chan struct{}
	exitErr       error
}

// tokenRE is an access token as generate-access-token --raw prints it.
var tokenRE = regexp.MustCompile(`(?m)^[0-9a-f]{40}$`)

// GiteaAdmin is the admin account StartGitea creates ("admin" is reserved).
const GiteaAdmin = "gitadmin"

// GiteaRepo is a repository on a test Gitea.
type GiteaRepo struct {
	ID            int64  // Gitea's stable id
	Owner, Name   string // current owner and name
	SSHURL        string // ssh://git@127.0.0.1:PORT/owner/name.git
	CloneURL      string // http://127.0.0.1:PORT/owner/name.git (no credentials)
	AuthURL       string // CloneURL with the admin's basic-auth credentials
	DefaultBranch string
}

// StartGitea starts a fresh Gitea: app.ini, migrate, the admin account and
// its token, then `gitea web` until /api/healthz answers. It is stopped at
// cleanup (SIGTERM, then SIGKILL); its log (stderr of every gitea command) is printed if the test failed, so
// failures below do not repeat it.
func StartGitea(t testing.TB) *Gitea {
	t.Helper()
	g := &Gitea{t: t, Bin: giteaBinary(t), Dir: t.TempDir(), AdminUser: GiteaAdmin,
		AdminPassword: "Pw-" + store.RandomHex(12), log: &syncBuffer{}}
	g.Conf = filepath.Join(g.Dir, "custom", "conf", "app.ini")
	t.Cleanup(func() {
		g.stop()
		if t.Failed() {
			t.Logf("gitea log (%s):\n%s", g.Dir, g.log.String())
		}
	})
	secrets := map[string]string{
		"SECRET_KEY":     store.RandomHex(32),
		"INTERNAL_TOKEN": store.RandomHex(32),
		"JWT_SECRET":     base64.RawURLEncoding.EncodeToString(store.RandomBytes(32)),
	}
	// A port chosen here may be taken before Gitea binds it: retry then.
	for attempt := 1; ; attempt++ {
		g.HTTPPort, g.SSHPort = freePort(t), freePort(t)
		for g.SSHPort == g.HTTPPort {
			g.SSHPort = freePort(t)
		}
		g.HTTPURL = fmt.Sprintf("http://127.0.0.1:%d", g.HTTPPort)
		g.SSHAddr = fmt.Sprintf("127.0.0.1:%d", g.SSHPort)
		g.writeConfig(secrets)
		if attempt == 1 {
			g.run("migrate")
			g.run("admin", "user", "create", "--admin", "--username", g.AdminUser, "--password", g.AdminPassword,
				"--email", g.AdminUser+"@example.test", "--must-change-password=false")
			out := g.run("admin", "user", "generate-access-token", "--username", g.AdminUser,
				"--token-name", "test", "--scopes", "all", "--raw")
			g.Token = tokenRE.FindString(out)
			if g.Token == "" {
				t.Fatalf("gitea: no access token in %q", out)
			}
		}
		err := g.startWeb()
		if err == nil {
			return g
		}
		if attempt < 3 && strings.Contains(g.log.String(), "address already in use") {
			continue
		}
		t.Fatalf("gitea: %v", err)
	}
}

func (g *Gitea) writeConfig(secrets map[string]string) {
	g.t.Helper()
	u, err := user.Current()
	if err != nil {
		g.t.Fatal(err)
	}
	root := ""
	if os.Geteuid() == 0 {
		root = "I_AM_BEING_UNSAFE_RUNNING_AS_ROOT = true\n"
	}
	static := ""
	if s := giteaStaticRoot(); s != "" {
		static = "STATIC_ROOT_PATH = " + s + "\n"
	}
	W := g.Dir
	ini := fmt.Sprintf(`APP_NAME = gitserver test upstream
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
%[6]sAPP_DATA_PATH = %[2]s/data
OFFLINE_MODE = true
LFS_START_SERVER = false
DISABLE_SSH = false
START_SSH_SERVER = true
BUILTIN_SSH_SERVER_USER = git
SSH_DOMAIN = 127.0.0.1
SSH_LISTEN_HOST = 127.0.0.1
SSH_PORT = %[5]d
SSH_LISTEN_PORT = %[5]d

[database]
DB_TYPE = sqlite3
PATH = %[2]s/data/gitea.db
SQLITE_JOURNAL_MODE = WAL

[repository]
ROOT = %[2]s/repos
DEFAULT_BRANCH = main

[security]
INSTALL_LOCK = true
SECRET_KEY = %[7]s
INTERNAL_TOKEN = %[8]s
PASSWORD_HASH_ALGO = pbkdf2

[oauth2]
ENABLED = true
JWT_SECRET = %[9]s

[service]
DISABLE_REGISTRATION = true

[webhook]
ALLOWED_HOST_LIST = loopback
DELIVER_TIMEOUT = 5

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

; In-memory queues: no polling backoff between the push and its webhook
; (the default level queues add up to 2 s per hop); pending deliveries do
; not survive a restart.
[queue]
TYPE = channel

[actions]
ENABLED = false

[log]
MODE = console
LEVEL = info
`, u.Username, W, root, g.HTTPPort, g.SSHPort, static,
		secrets["SECRET_KEY"], secrets["INTERNAL_TOKEN"], secrets["JWT_SECRET"])
	if err := os.MkdirAll(filepath.Dir(g.Conf), 0o755); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(g.Conf, []byte(ini), 0o600); err != nil {
		g.t.Fatal(err)
	}
}

func (g *Gitea) env() []string {
	env := append(os.Environ(), "GITEA_WORK_DIR="+g.Dir, "GITEA_CUSTOM="+filepath.Join(g.Dir, "custom"))
	if os.Geteuid() == 0 {
		env = append(env, "GITEA_I_AM_BEING_UNSAFE_RUNNING_AS_ROOT=true")
	}
	return env
}

// run runs a gitea subcommand to completion and returns its stdout; its
// stderr goes to the log.
func (g *Gitea) run(args ...string) string {
	g.t.Helper()
	cmd := exec.Command(g.Bin, append([]string{"--config", g.Conf}, args...)...)
	cmd.Dir = g.Dir
	cmd.Env = g.env()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = g.log
	fmt.Fprintf(g.log, "--- gitea %s\n", strings.Join(args, " "))
	if err := cmd.Run(); err != nil {
		g.t.Fatalf("gitea %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	return out.String()
}

// startWeb starts `gitea web` and waits for /api/healthz.
func (g *Gitea) startWeb() error {
	fmt.Fprintf(g.log, "--- gitea web (http %d, ssh %d)\n", g.HTTPPort, g.SSHPort)
	cmd := exec.Command(g.Bin, "--config", g.Conf, "web")
	cmd.Dir = g.Dir
	cmd.Env = g.env()
	cmd.Stdout, cmd.Stderr = g.log, g.log
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	g.cmd, g.done, g.exitErr = cmd, make(chan struct{}), nil
	done := g.done
	go func() {
		g.exitErr = cmd.Wait()
		close(done)
	}()
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("gitea web exited during start-up: %v", g.exitErr)
		default:
		}
		if resp, err := client.Get(g.HTTPURL + "/api/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK && g.sshListening() {
				g.StartTime = time.Since(start)
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	g.stop()
	return fmt.Errorf("gitea web did not become healthy in 90s")
}

func (g *Gitea) sshListening() bool {
	c, err := net.DialTimeout("tcp", g.SSHAddr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// stop sends SIGTERM and waits up to 10 s, then kills.
func (g *Gitea) stop() {
	if g.cmd == nil {
		return
	}
	select {
	case <-g.done:
		return
	default:
	}
	g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		g.cmd.Process.Kill()
		<-g.done
	}
}

// Log is everything Gitea printed so far.
func (g *Gitea) Log() string { return g.log.String() }

// RestartWithNewHostKey stops Gitea, deletes its SSH host key and starts it
// again on the same ports: it generates a different host key.
func (g *Gitea) RestartWithNewHostKey(t testing.TB) {
	t.Helper()
	g.stop()
	if err := os.RemoveAll(filepath.Join(g.Dir, "data", "ssh")); err != nil {
		t.Fatal(err)
	}
	if err := g.startWeb(); err != nil {
		t.Fatalf("gitea restart: %v", err)
	}
}

// API sends an API request (path below /api/v1) with the admin's token and
// returns the status and body.
func (g *Gitea) API(t testing.TB, method, path string, body any) (int, []byte) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		j, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, g.HTTPURL+"/api/v1"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "token "+g.Token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := &http.Client{Timeout: 30 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("gitea %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// apiMust is API expecting status want, decoding the answer into out (if
// not nil).
func (g *Gitea) apiMust(t testing.TB, want int, method, path string, body, out any) {
	t.Helper()
	status, b := g.API(t, method, path, body)
	if status != want {
		t.Fatalf("gitea %s %s: %d (want %d): %s", method, path, status, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("gitea %s %s: %v: %s", method, path, err, b)
		}
	}
}

// CreateRepo creates a private repository owner/name (owner is the admin
// or an organization, created when missing) with default branch main;
// autoInit gives it a first commit (a README).
func (g *Gitea) CreateRepo(t testing.TB, owner, name string, autoInit bool) GiteaRepo {
	t.Helper()
	path := "/user/repos"
	if owner != g.AdminUser {
		if status, _ := g.API(t, "GET", "/orgs/"+url.PathEscape(owner), nil); status == http.StatusNotFound {
			g.apiMust(t, http.StatusCreated, "POST", "/orgs", map[string]any{"username": owner, "visibility": "public"}, nil)
		}
		path = "/orgs/" + url.PathEscape(owner) + "/repos"
	}
	var r struct {
		ID            int64  `json:"id"`
		Name          string `json:"name"`
		SSHURL        string `json:"ssh_url"`
		CloneURL      string `json:"clone_url"`
		DefaultBranch string `json:"default_branch"`
		Owner         struct {
			Login string `json:"login"`
		} `json:"owner"`
	}
	g.apiMust(t, http.StatusCreated, "POST", path, map[string]any{
		"name": name, "private": true, "auto_init": autoInit, "default_branch": "main", "readme": "Default",
	}, &r)
	return GiteaRepo{ID: r.ID, Owner: r.Owner.Login, Name: r.Name, SSHURL: r.SSHURL, CloneURL: r.CloneURL,
		AuthURL: g.authURL(r.Owner.Login, r.Name), DefaultBranch: r.DefaultBranch}
}

// authURL is the HTTP URL of owner/repo with the admin's credentials.
func (g *Gitea) authURL(owner, repo string) string {
	u, _ := url.Parse(g.HTTPURL)
	u.User = url.UserPassword(g.AdminUser, g.AdminPassword)
	u.Path = "/" + owner + "/" + repo + ".git"
	return u.String()
}

// AddDeployKey adds a deploy key (an OpenSSH public key line) to owner/repo
// and returns its id.
func (g *Gitea) AddDeployKey(t testing.TB, owner, repo, title, pubKey string, readOnly bool) int64 {
	t.Helper()
	var k struct {
		ID int64 `json:"id"`
	}
	g.apiMust(t, http.StatusCreated, "POST", "/repos/"+owner+"/"+repo+"/keys",
		map[string]any{"title": title, "key": pubKey, "read_only": readOnly}, &k)
	return k.ID
}

// DeleteDeployKey removes deploy key id from owner/repo.
func (g *Gitea) DeleteDeployKey(t testing.TB, owner, repo string, id int64) {
	t.Helper()
	g.apiMust(t, http.StatusNoContent, "DELETE", fmt.Sprintf("/repos/%s/%s/keys/%d", owner, repo, id), nil, nil)
}

// AddWebhook adds an active Gitea-type webhook for push events, JSON bodies
// signed with secret (X-Gitea-Signature), and returns its id.
func (g *Gitea) AddWebhook(t testing.TB, owner, repo, hookURL, secret string) int64 {
	t.Helper()
	var h struct {
		ID int64 `json:"id"`
	}
	g.apiMust(t, http.StatusCreated, "POST", "/repos/"+owner+"/"+repo+"/hooks", map[string]any{
		"type": "gitea", "active": true, "events": []string{"push"}, "branch_filter": "*",
		"config": map[string]string{"url": hookURL, "content_type": "json", "secret": secret},
	}, &h)
	return h.ID
}

// TestWebhook asks Gitea to send a test delivery of hook id (a push event
// for the default branch's head). Gitea 1.26 has no API listing past
// deliveries.
func (g *Gitea) TestWebhook(t testing.TB, owner, repo string, id int64) {
	t.Helper()
	g.apiMust(t, http.StatusNoContent, "POST", fmt.Sprintf("/repos/%s/%s/hooks/%d/tests", owner, repo, id), nil, nil)
}

// HostKeys are the SSH server's host keys as known_hosts lines
// ("[127.0.0.1]:PORT ssh-rsa AAAA..."), by ssh-keyscan.
func (g *Gitea) HostKeys(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command("ssh-keyscan", "-T", "10", "-p", strconv.Itoa(g.SSHPort), "127.0.0.1").Output()
	var keys []string
	for _, line := range strings.Split(string(out), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	if len(keys) == 0 {
		t.Fatalf("ssh-keyscan -p %d 127.0.0.1: no host keys (%v)", g.SSHPort, err)
	}
	return keys
}

// KnownHosts writes HostKeys to a new known_hosts file and returns its path.
func (g *Gitea) KnownHosts(t testing.TB) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte(strings.Join(g.HostKeys(t), "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// SSHGit is a git client that reaches Gitea over SSH with exactly the
// private key privKey and Gitea's host keys pinned now (a later host key
// change makes it fail).
func (g *Gitea) SSHGit(t *testing.T, privKey string) *GitEnv {
	t.Helper()
	opts := []string{"-F", "/dev/null", "-i", privKey, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + g.KnownHosts(t), "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "LogLevel=ERROR"}
	return sshGit(t, opts)
}

// Push pushes refspecs from the work tree workDir to owner/repo over HTTP
// with the admin's credentials.
func (g *Gitea) Push(t testing.TB, env *GitEnv, workDir, owner, repo string, refspecs ...string) {
	t.Helper()
	args := append([]string{"push", "-q", g.authURL(owner, repo)}, refspecs...)
	if out, err := env.Run(workDir, args...); err != nil {
		t.Fatalf("git push to gitea %s/%s: %v\n%s", owner, repo, err, out)
	}
}

// giteaDelivery is one webhook request received by a test's endpoint.
type giteaDelivery struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// TestGiteaHarness: the upstream SCM works as the mirror tests need it. A
// read-only deploy key clones over Gitea's SSH with the host key pinned and
// cannot push; a push over HTTP delivers a signed push webhook; a deleted
// deploy key no longer clones; a restart with a new host key changes what
// ssh-keyscan sees and a pinned client refuses it.
func TestGiteaHarness(t *testing.T) {
	t.Parallel()
	setup := time.Now()
	gt := StartGitea(t)
	t.Logf("StartGitea took %v, %v of it from `gitea web` to healthy (http %s, ssh %s)",
		time.Since(setup).Round(time.Millisecond), gt.StartTime.Round(time.Millisecond), gt.HTTPURL, gt.SSHAddr)

	repo := gt.CreateRepo(t, "upstream", "app", true)
	if repo.ID == 0 || repo.DefaultBranch != "main" || repo.Owner != "upstream" {
		t.Fatalf("created repo %+v", repo)
	}
	if want := fmt.Sprintf("ssh://git@127.0.0.1:%d/upstream/app.git", gt.SSHPort); repo.SSHURL != want {
		t.Fatalf("ssh_url %q, want %q", repo.SSHURL, want)
	}

	key := newSSHKey(t, "deploy")
	keyID := gt.AddDeployKey(t, "upstream", "app", "mirror", key.Text, true)
	sg := gt.SSHGit(t, key.Priv)
	work := cloneT(t, sg, repo.SSHURL)
	if out := gitMust(t, sg, work, "log", "--oneline"); strings.TrimSpace(out) == "" {
		t.Fatal("the auto-initialised repository cloned empty")
	}
	head := sg.Commit(work, "hello.txt", "hello from the test\n", "second commit")
	out := gitFails(t, sg, work, "push", "origin", "HEAD:main")
	t.Logf("push with the read-only deploy key refused:\n%s", out)

	deliveries := make(chan giteaDelivery, 16)
	hook := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		deliveries <- giteaDelivery{Header: r.Header.Clone(), Body: b, At: time.Now()}
		w.WriteHeader(http.StatusAccepted)
	})
	secret := store.RandomHex(16)
	gt.AddWebhook(t, "upstream", "app", hook+"/hooks/scm/1", secret)

	gt.Push(t, NewGitEnv(t), work, "upstream", "app", "HEAD:main")
	pushed := time.Now()
	var d giteaDelivery
	select {
	case d = <-deliveries:
	case <-time.After(15 * time.Second):
		t.Fatal("no webhook delivery within 15s of the push")
	}
	t.Logf("webhook delivered %v after git push returned", d.At.Sub(pushed).Round(time.Millisecond))
	if ev := d.Header.Get("X-Gitea-Event"); ev != "push" {
		t.Fatalf("X-Gitea-Event %q, want push", ev)
	}
	if d.Header.Get("X-Gitea-Delivery") == "" {
		t.Fatal("no X-Gitea-Delivery header")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(d.Body)
	if sig, want := d.Header.Get("X-Gitea-Signature"), hex.EncodeToString(mac.Sum(nil)); sig != want {
		t.Fatalf("X-Gitea-Signature %q, want %q (HMAC-SHA256 of the body)", sig, want)
	}
	var body struct {
		Ref, After string
		Repository struct {
			ID       int64  `json:"id"`
			FullName string `json:"full_name"`
		}
	}
	if err := json.Unmarshal(d.Body, &body); err != nil {
		t.Fatalf("delivery body: %v\n%s", err, d.Body)
	}
	if body.Ref != "refs/heads/main" || body.After != head || body.Repository.ID != repo.ID {
		t.Fatalf("delivery ref %q after %q repository %d, want refs/heads/main %s %d", body.Ref, body.After, body.Repository.ID, head, repo.ID)
	}

	// The pushed commit is visible through the deploy key.
	if got := branchHead(t, sg, repo.SSHURL, "main"); got != head {
		t.Fatalf("main over SSH is %s, pushed %s", got, head)
	}
	gt.DeleteDeployKey(t, "upstream", "app", keyID)
	gitFails(t, sg, "", "ls-remote", repo.SSHURL)

	before := gt.HostKeys(t)
	gt.RestartWithNewHostKey(t)
	t.Logf("gitea restarted in %v", gt.StartTime.Round(time.Millisecond))
	after := gt.HostKeys(t)
	if strings.Join(before, "\n") == strings.Join(after, "\n") {
		t.Fatalf("host keys unchanged after RestartWithNewHostKey: %v", after)
	}
	key2 := newSSHKey(t, "deploy2")
	gt.AddDeployKey(t, "upstream", "app", "mirror2", key2.Text, true)
	pinned := sshGit(t, []string{"-F", "/dev/null", "-i", key2.Priv, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + writeLines(t, before), "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes"})
	if out := gitFails(t, pinned, "", "ls-remote", repo.SSHURL); !strings.Contains(out, "Host key verification failed") {
		t.Fatalf("a client pinned to the old host key: %s", out)
	}
	if got := branchHead(t, gt.SSHGit(t, key2.Priv), repo.SSHURL, "main"); got != head {
		t.Fatalf("after the restart main is %s, want %s", got, head)
	}
}

// httptestServer serves h on a loopback port until the test ends and
// returns its base URL.
func httptestServer(t *testing.T, h http.HandlerFunc) string {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// branchHead is the commit of branch at url (ls-remote), or "".
func branchHead(t *testing.T, g *GitEnv, url, branch string) string {
	t.Helper()
	for _, line := range strings.Split(gitMust(t, g, "", "ls-remote", url, "refs/heads/"+branch), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[1] == "refs/heads/"+branch {
			return f[0]
		}
	}
	return ""
}

func writeLines(t *testing.T, lines []string) string {
	p := filepath.Join(t.TempDir(), "lines")
	if err := os.WriteFile(p, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
