package main

// End-to-end harness: builds the real binary once, starts it on
// 127.0.0.1:0 with its own data directory, and drives it with the real git
// (and OpenSSH) clients under an isolated HOME.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"gitserver/store/postgres/pgtest"
)

// binPath is the production binary; faultBinary builds the one with fault
// injection (GITSERVER_FAULT) on first use.
var binPath string

var faultBin struct {
	once sync.Once
	path string
	err  error
}

// faultBinary returns a gitserver built with -tags faultinject, building it
// on first use.
func faultBinary(t testing.TB) string {
	t.Helper()
	faultBin.once.Do(func() {
		faultBin.path = filepath.Join(filepath.Dir(binPath), "gitserver-faultinject")
		build := exec.Command("go", "build", "-tags", "faultinject", "-o", faultBin.path, ".")
		build.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := build.CombinedOutput(); err != nil {
			faultBin.err = fmt.Errorf("building gitserver -tags faultinject: %v\n%s", err, out)
		}
	})
	if faultBin.err != nil {
		t.Fatal(faultBin.err)
	}
	return faultBin.path
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gitserver-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "gitserver")
	build := exec.Command("go", "build", "-o", binPath, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building gitserver:", err)
		os.Exit(1)
	}
	code := m.Run()
	pgtest.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output safely.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestServer is a running gitserver process.
type TestServer struct {
	t             testing.TB
	Data          string
	Args          []string // extra serve flags
	Env           []string // extra environment
	URL           string   // http://127.0.0.1:PORT
	HTTPAddr      string
	SSHAddr       string // host:port, "" when SSH is disabled
	AdminPassword string
	bin           string // the binary started: binPath unless WithFault
	cmd           *exec.Cmd
	out           *syncBuffer
	done          chan struct{}
	exitErr       error
}

// ServerOption configures StartServer.
type ServerOption func(*TestServer)

// WithArgs adds serve flags.
func WithArgs(args ...string) ServerOption {
	return func(s *TestServer) { s.Args = append(s.Args, args...) }
}

// WithEnv adds environment variables (KEY=VALUE).
func WithEnv(env ...string) ServerOption {
	return func(s *TestServer) { s.Env = append(s.Env, env...) }
}

// WithFault starts the binary built with fault injection, with
// GITSERVER_FAULT=name.
func WithFault(name string) ServerOption {
	return func(s *TestServer) {
		s.bin = faultBinary(s.t)
		s.Env = append(s.Env, "GITSERVER_FAULT="+name)
	}
}

// WithData reuses a data directory (e.g. to restart a server).
func WithData(dir string) ServerOption {
	return func(s *TestServer) { s.Data = dir }
}

// StartServer starts gitserver and waits until it listens. It is stopped
// (SIGKILL if still running) at test cleanup.
func StartServer(t testing.TB, opts ...ServerOption) *TestServer {
	t.Helper()
	s := &TestServer{t: t, bin: binPath}
	for _, o := range opts {
		o(s)
	}
	if s.Data == "" {
		s.Data = filepath.Join(t.TempDir(), "data")
	}
	s.start()
	t.Cleanup(func() { s.Kill() })
	return s
}

var startedRE = regexp.MustCompile(`msg="gitserver started".* http_addr=(\S+) ssh_addr=(\S*)`)

func (s *TestServer) start() {
	t := s.t
	t.Helper()
	args := append([]string{"serve", "--data", s.Data, "--http-addr", "127.0.0.1:0", "--ssh-addr", "127.0.0.1:0"}, s.Args...)
	cmd := exec.Command(s.bin, args...)
	cmd.Env = append(os.Environ(), s.Env...)
	s.out = &syncBuffer{}
	pr, pw := io.Pipe()
	cmd.Stdout = s.out
	cmd.Stderr = io.MultiWriter(s.out, pw)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gitserver: %v", err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() {
		s.exitErr = cmd.Wait()
		pw.Close()
		close(s.done)
	}()
	found := make(chan []string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			if m := startedRE.FindStringSubmatch(sc.Text()); m != nil && !sent {
				found <- m
				sent = true
			}
		}
		io.Copy(io.Discard, pr)
	}()
	select {
	case m := <-found:
		s.HTTPAddr = m[1]
		s.SSHAddr = m[2]
		s.URL = "http://" + s.HTTPAddr
	case <-s.done:
		t.Fatalf("gitserver exited during start-up: %v\n%s", s.exitErr, s.out.String())
	case <-time.After(30 * time.Second):
		t.Fatalf("gitserver did not start in 30s\n%s", s.out.String())
	}
	if pw, err := os.ReadFile(filepath.Join(s.Data, "initial-admin-password")); err == nil {
		s.AdminPassword = strings.TrimSpace(string(pw))
	}
}

// Output is everything the server printed so far.
func (s *TestServer) Output() string { return s.out.String() }

// Signal sends sig and waits up to timeout for the process to exit,
// returning its exit error.
func (s *TestServer) Signal(sig syscall.Signal, timeout time.Duration) (error, bool) {
	s.cmd.Process.Signal(sig)
	select {
	case <-s.done:
		return s.exitErr, true
	case <-time.After(timeout):
		return nil, false
	}
}

// Kill stops the process at once (SIGKILL) if it still runs.
func (s *TestServer) Kill() {
	if s.cmd == nil {
		return
	}
	select {
	case <-s.done:
	default:
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Restart kills the server and starts it again on the same data directory
// (the ports change).
func (s *TestServer) Restart() {
	s.t.Helper()
	s.Kill()
	s.start()
}

// Admin runs `gitserver admin ARGS... --data DIR` and returns stdout.
func (s *TestServer) Admin(stdin string, args ...string) (string, error) {
	cmd := exec.Command(binPath, append(append([]string{"admin"}, args...), "--data", s.Data)...)
	cmd.Env = append(os.Environ(), s.Env...) // the server's settings (GITSERVER_DATABASE_URL)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.String(), fmt.Errorf("%v: %s", err, errb.String())
	}
	return out.String(), nil
}

// CreateUser creates a user with a known password and returns it.
func (s *TestServer) CreateUser(name string, admin bool) string {
	s.t.Helper()
	pw := "pw-" + name + "-secret"
	args := []string{"user", "create", name, "--password-stdin"}
	if admin {
		args = append(args, "--admin")
	}
	if _, err := s.Admin(pw+"\n", args...); err != nil {
		s.t.Fatalf("create user %s: %v", name, err)
	}
	return pw
}

// Token creates a token for user with the given scopes.
func (s *TestServer) Token(user string, scopes ...string) string {
	s.t.Helper()
	args := []string{"token", "create", user}
	for _, sc := range scopes {
		args = append(args, "--scope", sc)
	}
	out, err := s.Admin("", args...)
	if err != nil {
		s.t.Fatalf("create token: %v", err)
	}
	return strings.TrimSpace(out)
}

// Cred is an HTTP credential: Basic user+secret, or Bearer when User is "".
type Cred struct{ User, Secret string }

// Do sends an API request with optional JSON body and returns the status
// and raw body.
func (s *TestServer) Do(method, path string, c Cred, body any) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		if b, ok := body.(string); ok {
			rd = strings.NewReader(b)
		} else {
			j, _ := json.Marshal(body)
			rd = bytes.NewReader(j)
		}
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	switch {
	case c.User != "":
		req.SetBasicAuth(c.User, c.Secret)
	case c.Secret != "":
		req.Header.Set("Authorization", "Bearer "+c.Secret)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// JSON sends an API request and decodes the answer into a map (or nil).
func (s *TestServer) JSON(method, path string, c Cred, body any) (int, map[string]any) {
	s.t.Helper()
	status, b := s.Do(method, path, c, body)
	var m map[string]any
	json.Unmarshal(b, &m)
	return status, m
}

// CreateRepo creates owner/name via the API, failing the test otherwise.
func (s *TestServer) CreateRepo(c Cred, owner, name, visibility string) map[string]any {
	s.t.Helper()
	status, m := s.JSON("POST", "/api/v1/repos", c, map[string]any{"owner": owner, "name": name, "visibility": visibility})
	if status != http.StatusCreated {
		s.t.Fatalf("create repo %s/%s: %d %v", owner, name, status, m)
	}
	return m
}

// RepoURL is the smart-HTTP URL of owner/name with credentials embedded
// (no credentials when c is zero).
func (s *TestServer) RepoURL(c Cred, owner, name string) string {
	if c.User == "" && c.Secret == "" {
		return s.URL + "/git/" + owner + "/" + name + ".git"
	}
	user := c.User
	if user == "" {
		user = "x-access-token"
	}
	return "http://" + user + ":" + c.Secret + "@" + s.HTTPAddr + "/git/" + owner + "/" + name + ".git"
}

// GitEnv runs the real git client with an isolated HOME and config.
type GitEnv struct {
	t    testing.TB
	Home string
	Env  []string
}

// NewGitEnv prepares an isolated git client environment.
func NewGitEnv(t testing.TB) *GitEnv {
	home := t.TempDir()
	g := &GitEnv{t: t, Home: home, Env: []string{
		"HOME=" + home,
		"XDG_CONFIG_HOME=" + filepath.Join(home, ".config"),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Test", "GIT_AUTHOR_EMAIL=test@example.com",
		"GIT_COMMITTER_NAME=Test", "GIT_COMMITTER_EMAIL=test@example.com",
		"PATH=" + os.Getenv("PATH"),
		"LANG=C",
	}}
	return g
}

// Run runs git in dir and returns its combined output.
func (g *GitEnv) Run(dir string, args ...string) (string, error) {
	return g.RunEnv(dir, nil, args...)
}

// RunEnv is Run with extra environment.
func (g *GitEnv) RunEnv(dir string, env []string, args ...string) (string, error) {
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, g.Env...), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// Must runs git and fails the test on error, dumping a packet trace.
func (g *GitEnv) Must(dir string, args ...string) string {
	g.t.Helper()
	out, err := g.Run(dir, args...)
	if err != nil {
		trace, _ := g.RunEnv(dir, []string{"GIT_TRACE_PACKET=1", "GIT_TRACE_CURL=1", "GIT_TRACE_CURL_NO_DATA=1"}, args...)
		g.t.Fatalf("git %s: %v\n%s\n--- trace ---\n%s", strings.Join(args, " "), err, out, truncateTrace(trace))
	}
	return out
}

func truncateTrace(s string) string {
	if len(s) > 20000 {
		return s[:20000] + "\n...(truncated)"
	}
	return s
}

// Commit writes file=content in the work tree dir and commits it,
// returning the new commit id.
func (g *GitEnv) Commit(dir, file, content, msg string) string {
	g.t.Helper()
	if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, file)), 0o755); err != nil {
		g.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, file), []byte(content), 0o644); err != nil {
		g.t.Fatal(err)
	}
	g.Must(dir, "add", file)
	g.Must(dir, "commit", "-q", "-m", msg)
	return strings.TrimSpace(g.Must(dir, "rev-parse", "HEAD"))
}

// Clone clones url into a new directory and returns it.
func (g *GitEnv) Clone(url string, extra ...string) string {
	g.t.Helper()
	dir := filepath.Join(g.t.TempDir(), "clone")
	g.Must("", append(append([]string{"clone", "-q"}, extra...), url, dir)...)
	return dir
}

// Init makes an empty work tree on branch master with origin set to url.
func (g *GitEnv) Init(url string) string {
	g.t.Helper()
	dir := filepath.Join(g.t.TempDir(), "work")
	g.Must("", "init", "-q", "-b", "master", dir)
	g.Must(dir, "remote", "add", "origin", url)
	return dir
}

// Builds lists owner/name's builds through the API.
func (s *TestServer) Builds(c Cred, owner, name string) []map[string]any {
	s.t.Helper()
	status, b := s.Do("GET", "/api/v1/repos/"+owner+"/"+name+"/builds", c, nil)
	if status != http.StatusOK {
		s.t.Fatalf("list builds: %d %s", status, b)
	}
	var out []map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		s.t.Fatalf("list builds: %v: %s", err, b)
	}
	return out
}

// TestHarnessSmoke: a first start prints the admin password, a repository
// can be created, pushed to and cloned back.
func TestHarnessSmoke(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	if s.AdminPassword == "" {
		t.Fatalf("no initial admin password written\n%s", s.Output())
	}
	if !strings.Contains(s.Output(), s.AdminPassword) {
		t.Fatalf("initial admin password was not printed")
	}
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "smoke", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "smoke"))
	head := g.Commit(work, "README", "hello\n", "first")
	g.Must(work, "push", "-q", "origin", "master")
	clone := g.Clone(s.RepoURL(admin, "admin", "smoke"))
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != head {
		t.Fatalf("cloned head %s, pushed %s", got, head)
	}
}
