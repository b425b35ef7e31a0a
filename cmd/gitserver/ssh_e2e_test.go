package main

// Git over SSH, end to end: the real binary, the real git client and the
// real OpenSSH client (ssh, ssh-keygen).

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"gitserver/gitserver/packcache"
)

// sshOpTimeout bounds every ssh and git invocation, only so that a hanging
// session fails the test instead of stalling it: the server's idle timeout
// is 10 minutes, so a session that waits for it fails here.
const sshOpTimeout = 2 * time.Minute

// sshKey is an ed25519 key pair made by ssh-keygen.
type sshKey struct {
	Priv        string // private key file
	Pub         string // public key file
	Text        string // public key line
	Fingerprint string // SHA256:..., as ssh-keygen -l prints it
}

func newSSHKey(t *testing.T, name string) sshKey {
	t.Helper()
	dir := t.TempDir()
	priv := filepath.Join(dir, name)
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name+"@test", "-f", priv).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	text, err := os.ReadFile(priv + ".pub")
	if err != nil {
		t.Fatal(err)
	}
	return sshKey{Priv: priv, Pub: priv + ".pub", Text: strings.TrimSpace(string(text)), Fingerprint: keygenFingerprint(t, priv+".pub")}
}

// keygenFingerprint is ssh-keygen's own idea of a public key's fingerprint.
func keygenFingerprint(t *testing.T, pubFile string) string {
	t.Helper()
	out, err := exec.Command("ssh-keygen", "-l", "-E", "sha256", "-f", pubFile).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -l: %v\n%s", err, out)
	}
	f := strings.Fields(string(out))
	if len(f) < 2 || !strings.HasPrefix(f[1], "SHA256:") {
		t.Fatalf("unexpected ssh-keygen -l output %q", out)
	}
	return f[1]
}

func sshPort(t *testing.T, s *TestServer) string {
	t.Helper()
	if s.SSHAddr == "" {
		t.Fatal("server runs without SSH")
	}
	_, port, err := net.SplitHostPort(s.SSHAddr)
	if err != nil {
		t.Fatal(err)
	}
	return port
}

// sshURL is the contract's SSH URL of owner/name.
func sshURL(t *testing.T, s *TestServer, owner, name string) string {
	return "ssh://git@127.0.0.1:" + sshPort(t, s) + "/" + owner + "/" + name + ".git"
}

// sshOptions are the client options of every test connection: exactly the
// given identity files, no agent, no user config, no host key prompt.
func sshOptions(keys ...string) []string {
	opts := []string{"-F", "/dev/null", "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
		"-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR"}
	for _, k := range keys {
		opts = append(opts, "-i", k)
	}
	return opts
}

func shellQuote(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = packcache.ShellQuote(a)
	}
	return strings.Join(q, " ")
}

// sshGit is a git client that connects over SSH with the given options.
func sshGit(t *testing.T, opts []string) *GitEnv {
	g := NewGitEnv(t)
	g.Env = append(g.Env, "GIT_SSH_COMMAND=ssh "+shellQuote(opts), "GIT_SSH_VARIANT=ssh")
	return g
}

// gitT runs git like GitEnv.RunEnv, bounded by sshOpTimeout.
func gitT(g *GitEnv, dir string, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), sshOpTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, g.Env...), env...)
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		err = fmt.Errorf("git %s did not finish within %v (hanging session?): %v", strings.Join(args, " "), sshOpTimeout, err)
	}
	return string(out), err
}

func gitMust(t *testing.T, g *GitEnv, dir string, args ...string) string {
	t.Helper()
	out, err := gitT(g, dir, nil, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

func gitFails(t *testing.T, g *GitEnv, dir string, args ...string) string {
	t.Helper()
	out, err := gitT(g, dir, nil, args...)
	if err == nil {
		t.Fatalf("git %s succeeded, want a failure\n%s", strings.Join(args, " "), out)
	}
	if strings.Contains(err.Error(), "did not finish") {
		t.Fatal(err)
	}
	return out
}

func cloneT(t *testing.T, g *GitEnv, url string, extra ...string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "clone")
	gitMust(t, g, "", append(append([]string{"clone", "-q"}, extra...), url, dir)...)
	return dir
}

// sshResult is one run of the ssh client.
type sshResult struct {
	Stdout, Stderr string
	Code           int
}

// runSSH runs `ssh OPTS -p PORT git@127.0.0.1 REMOTE...` with stdin (an
// *os.File is handed to ssh as is).
func runSSH(t *testing.T, s *TestServer, opts []string, stdin io.Reader, remote ...string) sshResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), sshOpTimeout)
	defer cancel()
	args := append(append(append([]string{}, opts...), "-p", sshPort(t, s), "git@127.0.0.1"), remote...)
	cmd := exec.CommandContext(ctx, "ssh", args...)
	cmd.Env = []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "LANG=C"}
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	cmd.Stdin = stdin
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("ssh %s did not finish within %v (hanging session?)\nstderr: %s", strings.Join(remote, " "), sshOpTimeout, errb.String())
	}
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("ssh: %v", err)
		}
		code = ee.ExitCode()
	}
	return sshResult{Stdout: out.String(), Stderr: errb.String(), Code: code}
}

// addUserKey posts key through the API as c and returns the key object.
func addUserKey(t *testing.T, s *TestServer, c Cred, title, key string) map[string]any {
	t.Helper()
	status, m := s.JSON("POST", "/api/v1/user/keys", c, map[string]any{"title": title, "key": key})
	if status != http.StatusCreated {
		t.Fatalf("add key for %s: %d %v", c.User, status, m)
	}
	return m
}

func addDeployKey(t *testing.T, s *TestServer, c Cred, owner, name string, key sshKey, readOnly *bool) map[string]any {
	t.Helper()
	body := map[string]any{"title": "deploy", "key": key.Text}
	if readOnly != nil {
		body["read_only"] = *readOnly
	}
	status, m := s.JSON("POST", "/api/v1/repos/"+owner+"/"+name+"/deploy-keys", c, body)
	if status != http.StatusCreated {
		t.Fatalf("add deploy key to %s/%s: %d %v", owner, name, status, m)
	}
	return m
}

// apiError asserts the contract's error shape and returns its code.
func apiError(t *testing.T, body []byte) (code, msg string) {
	t.Helper()
	var e struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(body, &e); err != nil || e.Error.Code == "" || e.Error.Message == "" {
		t.Fatalf("not a contract error body: %s", body)
	}
	return e.Error.Code, e.Error.Message
}

// noLeak fails if text shows a stack trace or a server-side path.
func noLeak(t *testing.T, s *TestServer, what, text string) {
	t.Helper()
	for _, bad := range []string{"goroutine ", "panic", ".go:", s.Data, "/tmp/", "ssh_host"} {
		if strings.Contains(text, bad) {
			t.Errorf("%s leaks %q:\n%s", what, bad, text)
		}
	}
}

// remoteHead is the server's master as seen over SSH.
func remoteHead(t *testing.T, g *GitEnv, url string) string {
	t.Helper()
	out := gitMust(t, g, "", "ls-remote", url, "refs/heads/master")
	// The output may carry ssh's warnings too (combined output).
	if m := lsRemoteMasterRE.FindStringSubmatch(out); m != nil {
		return m[1]
	}
	return ""
}

var lsRemoteMasterRE = regexp.MustCompile(`(?m)^([0-9a-f]{40})\trefs/heads/master$`)

var rejectedLineRE = regexp.MustCompile(`(?m)^remote: rejected refs/heads/master: .*$`)

// TestSSHGitOperations: push, clone, fetch and archive over SSH with a key
// added through the admin CLI; protocol v0 and v2; the push policy and the
// build trigger behave as over HTTP.
func TestSSHGitOperations(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	pw := s.CreateUser("alice", false)
	alice := Cred{"alice", pw}
	key := newSSHKey(t, "alice")

	// A key through the CLI, reported with ssh-keygen's fingerprint.
	out, err := s.Admin("", "key", "add", "alice", "--file", key.Pub)
	if err != nil {
		t.Fatalf("admin key add: %v", err)
	}
	if !strings.Contains(out, key.Fingerprint) {
		t.Fatalf("admin key add printed %q, want the fingerprint %s", out, key.Fingerprint)
	}
	// A malformed key file and a missing one are refused clearly.
	bad := filepath.Join(t.TempDir(), "bad.pub")
	os.WriteFile(bad, []byte("ssh-ed25519 not-base64!!\n"), 0o644)
	if out, err := s.Admin("", "key", "add", "alice", "--file", bad); err == nil || !strings.Contains(err.Error(), "not an SSH public key") {
		t.Fatalf("admin key add of a malformed key: %q, %v", out, err)
	}
	if _, err := s.Admin("", "key", "add", "alice", "--file", filepath.Join(t.TempDir(), "missing.pub")); err == nil {
		t.Fatal("admin key add of a missing file succeeded")
	}
	// The same key twice is refused.
	if _, err := s.Admin("", "key", "add", "alice", "--file", key.Pub); err == nil || !strings.Contains(err.Error(), "already") {
		t.Fatalf("admin key add of a key in use: %v", err)
	}

	repo := s.CreateRepo(alice, "alice", "proj", "restricted")
	if u, _ := repo["clone_url_ssh"].(string); !strings.HasPrefix(u, "ssh://git@") || !strings.HasSuffix(u, ":"+sshPort(t, s)+"/alice/proj.git") {
		t.Errorf("clone_url_ssh = %q", repo["clone_url_ssh"])
	}
	url := sshURL(t, s, "alice", "proj")
	g := sshGit(t, sshOptions(key.Priv))

	// Push over SSH: the default branch moves and one build is queued,
	// attributed to the key's owner.
	work := g.Init(url)
	c1 := g.Commit(work, "README", "one\n", "first")
	out = gitMust(t, g, work, "push", "origin", "master")
	if !strings.Contains(out, "build") {
		t.Logf("push output: %s", out)
	}
	if got := remoteHead(t, g, url); got != c1 {
		t.Fatalf("remote master %s after push, want %s", got, c1)
	}
	builds := s.Builds(alice, "alice", "proj")
	if len(builds) != 1 || builds[0]["commit"] != c1 || builds[0]["pushed_by"] != "alice" || builds[0]["branch"] != "master" {
		t.Fatalf("builds after an SSH push: %v", builds)
	}

	// The advertised clone URL works as it is.
	if u, _ := repo["clone_url_ssh"].(string); remoteHead(t, g, u) != c1 {
		t.Fatalf("ls-remote %s does not show the pushed head", u)
	}

	// Clone with protocol v2, proven by the packet trace.
	tr := filepath.Join(t.TempDir(), "trace-v2")
	clone := filepath.Join(t.TempDir(), "clone-v2")
	if out, err := gitT(g, "", []string{"GIT_TRACE_PACKET=" + tr}, "-c", "protocol.version=2", "clone", "-q", url, clone); err != nil {
		t.Fatalf("clone v2: %v\n%s", err, out)
	}
	trace, _ := os.ReadFile(tr)
	if !bytes.Contains(trace, []byte("< version 2\n")) || !bytes.Contains(trace, []byte("> command=fetch\n")) {
		t.Fatalf("clone with protocol.version=2 did not speak v2 over SSH:\n%s", truncateTrace(string(trace)))
	}
	if got := strings.TrimSpace(gitMust(t, g, clone, "rev-parse", "HEAD")); got != c1 {
		t.Fatalf("v2 clone HEAD %s, want %s", got, c1)
	}

	// Clone with protocol v0: no v2 in the trace, same content.
	tr0 := filepath.Join(t.TempDir(), "trace-v0")
	clone0 := filepath.Join(t.TempDir(), "clone-v0")
	if out, err := gitT(g, "", []string{"GIT_TRACE_PACKET=" + tr0}, "-c", "protocol.version=0", "clone", "-q", url, clone0); err != nil {
		t.Fatalf("clone v0: %v\n%s", err, out)
	}
	trace0, _ := os.ReadFile(tr0)
	if bytes.Contains(trace0, []byte("version 2")) || !bytes.Contains(trace0, []byte("refs/heads/master")) {
		t.Fatalf("protocol v0 trace unexpected:\n%s", truncateTrace(string(trace0)))
	}
	if got := strings.TrimSpace(gitMust(t, g, clone0, "rev-parse", "HEAD")); got != c1 {
		t.Fatalf("v0 clone HEAD %s, want %s", got, c1)
	}

	// Fetch over SSH (v2 and v0) sees a new commit.
	c2 := g.Commit(work, "README", "two\n", "second")
	gitMust(t, g, work, "push", "-q", "origin", "master")
	gitMust(t, g, clone, "-c", "protocol.version=2", "fetch", "-q", "origin")
	gitMust(t, g, clone0, "-c", "protocol.version=0", "fetch", "-q", "origin")
	for _, dir := range []string{clone, clone0} {
		if got := strings.TrimSpace(gitMust(t, g, dir, "rev-parse", "origin/master")); got != c2 {
			t.Fatalf("fetched origin/master %s, want %s", got, c2)
		}
	}

	// Another branch and a tag over SSH: accepted, no build.
	gitMust(t, g, work, "push", "-q", "origin", "master:feature", "HEAD:refs/tags/v1")
	if got := gitMust(t, g, "", "ls-remote", url); !strings.Contains(got, "refs/heads/feature") || !strings.Contains(got, "refs/tags/v1") {
		t.Fatalf("ls-remote after pushing a branch and a tag:\n%s", got)
	}

	// git archive over SSH (git-upload-archive).
	arch := gitMust(t, g, "", "archive", "--remote="+url, "--format=tar", "master", "README")
	if !strings.Contains(arch, "two\n") {
		t.Fatalf("git archive over SSH did not return README")
	}

	// A force push is refused with the contract's line, the same over SSH
	// and HTTP, and moves nothing.
	gitMust(t, g, clone, "reset", "-q", "--hard", c1)
	g.Commit(clone, "other", "rewrite\n", "rewrite")
	out = gitFails(t, g, clone, "push", "--force", "origin", "HEAD:master")
	sshLine := rejectedLineRE.FindString(out)
	if sshLine == "" || !strings.Contains(sshLine, "rewrite history") {
		t.Fatalf("force push over SSH: no rejection line in\n%s", out)
	}
	out = gitFails(t, g, clone, "push", "--force", s.RepoURL(alice, "alice", "proj"), "HEAD:master")
	if httpLine := rejectedLineRE.FindString(out); strings.TrimSpace(httpLine) != strings.TrimSpace(sshLine) {
		t.Errorf("rejection over SSH %q differs from HTTP %q", sshLine, httpLine)
	}
	if got := remoteHead(t, g, url); got != c2 {
		t.Fatalf("remote master %s after refused force pushes, want %s", got, c2)
	}
	// Deleting the default branch over SSH is refused too.
	out = gitFails(t, g, work, "push", "origin", ":master")
	if !strings.Contains(out, "remote: rejected refs/heads/master") {
		t.Fatalf("deleting the default branch over SSH:\n%s", out)
	}
	if got := remoteHead(t, g, url); got != c2 {
		t.Fatalf("remote master %s after a refused delete, want %s", got, c2)
	}
	// The second push to master queued a second build, also by alice.
	builds = s.Builds(alice, "alice", "proj")
	if len(builds) != 2 || builds[0]["commit"] != c2 || builds[0]["pushed_by"] != "alice" {
		t.Fatalf("builds after two SSH pushes to master: %v", builds)
	}
}

// openStdin is the read end of an OS pipe holding data whose write end is
// left open until the test ends: a client that never sends EOF.
func openStdin(t *testing.T, data string) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	if _, err := w.WriteString(data); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSSHSessionEndsWithGit: when git exits the session ends, even though
// the client still holds its stdin open (a server that waited for stdin EOF
// before sending the exit status would hang here until its idle timeout).
func TestSSHSessionEndsWithGit(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	pw := s.CreateUser("carol", false)
	carol := Cred{"carol", pw}
	key := newSSHKey(t, "carol")
	addUserKey(t, s, carol, "k", key.Text)
	s.CreateRepo(carol, "carol", "r", "restricted")
	g := sshGit(t, sshOptions(key.Priv))
	work := g.Init(sshURL(t, s, "carol", "r"))
	head := g.Commit(work, "f", "x\n", "c")
	gitMust(t, g, work, "push", "-q", "origin", "master")

	// v0 upload-pack: advertisement, then a flush-pkt ends the
	// conversation. ssh's stdin is an OS pipe whose write end stays open
	// until the test ends.
	r := runSSH(t, s, sshOptions(key.Priv), openStdin(t, "0000"), "git-upload-pack '/carol/r.git'")
	if r.Code != 0 || !strings.Contains(r.Stdout, head+" refs/heads/master") {
		t.Fatalf("upload-pack over ssh: exit %d\nstdout %q\nstderr %q", r.Code, r.Stdout, r.Stderr)
	}
	// git's exit status reaches the client: upload-pack of garbage fails.
	r = runSSH(t, s, sshOptions(key.Priv), openStdin(t, "zzzz-not-a-pkt-line"), "git-upload-pack '/carol/r.git'")
	if r.Code == 0 {
		t.Fatalf("upload-pack fed garbage exited 0\nstderr %q", r.Stderr)
	}
	noLeak(t, s, "upload-pack error", r.Stderr)
}

// TestSSHKeysAPI: keys through /api/v1/user/keys, conflicts across accounts
// and deploy keys, and deletion taking effect.
func TestSSHKeysAPI(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	alice := Cred{"alice", s.CreateUser("alice", false)}
	bob := Cred{"bob", s.CreateUser("bob", false)}
	s.CreateRepo(alice, "alice", "secret", "restricted")
	s.CreateRepo(bob, "bob", "mine", "restricted")
	g0 := sshGit(t, sshOptions())
	_ = g0
	key := newSSHKey(t, "laptop")

	// Malformed keys: 400 with a clear message, nothing stored.
	rsa1024 := filepath.Join(t.TempDir(), "short")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", rsa1024).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen rsa 1024: %v %s", err, out)
	}
	shortRSA, _ := os.ReadFile(rsa1024 + ".pub")
	privText, _ := os.ReadFile(key.Priv)
	for _, bad := range []string{"", "garbage", "ssh-ed25519 AAAA", string(privText), string(shortRSA),
		`command="/bin/sh" ` + key.Text, key.Text + "\n" + newSSHKey(t, "other").Text} {
		status, body := s.Do("POST", "/api/v1/user/keys", alice, map[string]any{"title": "bad", "key": bad})
		if status != http.StatusBadRequest {
			t.Errorf("malformed key %.40q: %d %s, want 400", bad, status, body)
			continue
		}
		code, msg := apiError(t, body)
		if code != "invalid" {
			t.Errorf("malformed key: error code %q", code)
		}
		noLeak(t, s, "malformed-key error", msg)
	}
	if status, body := s.Do("POST", "/api/v1/user/keys", alice, `{"title":`); status != http.StatusBadRequest {
		t.Errorf("broken JSON: %d %s", status, body)
	}
	if status, _ := s.Do("POST", "/api/v1/user/keys", Cred{}, map[string]any{"key": key.Text}); status != http.StatusUnauthorized {
		t.Errorf("anonymous key upload: %d, want 401", status)
	}

	// A good key: 201 with ssh-keygen's fingerprint, listed.
	m := addUserKey(t, s, alice, "laptop", key.Text+"\n")
	if m["fingerprint"] != key.Fingerprint || m["title"] != "laptop" {
		t.Fatalf("added key %v, want fingerprint %s", m, key.Fingerprint)
	}
	id := fmt.Sprint(m["id"])
	status, body := s.Do("GET", "/api/v1/user/keys", alice, nil)
	var list []map[string]any
	json.Unmarshal(body, &list)
	if status != http.StatusOK || len(list) != 1 || list[0]["fingerprint"] != key.Fingerprint {
		t.Fatalf("list keys: %d %s", status, body)
	}
	if status, body := s.Do("GET", "/api/v1/user/keys", bob, nil); status != http.StatusOK || strings.Contains(string(body), key.Fingerprint) {
		t.Fatalf("bob's key list shows alice's key: %d %s", status, body)
	}

	// The same key again, for bob, or as a deploy key: 409.
	for _, c := range []struct {
		who  Cred
		path string
	}{
		{alice, "/api/v1/user/keys"},
		{bob, "/api/v1/user/keys"},
		{bob, "/api/v1/repos/bob/mine/deploy-keys"},
		{alice, "/api/v1/repos/alice/secret/deploy-keys"},
	} {
		status, body := s.Do("POST", c.path, c.who, map[string]any{"title": "dup", "key": key.Text})
		if status != http.StatusConflict {
			t.Errorf("%s POST %s with a key in use: %d %s, want 409", c.who.User, c.path, status, body)
			continue
		}
		if code, _ := apiError(t, body); code != "already_exists" {
			t.Errorf("duplicate key error code %q", code)
		}
	}
	if _, err := s.Admin("", "key", "add", "bob", "--file", key.Pub); err == nil {
		t.Error("admin key add gave bob alice's key")
	}

	// The key works for alice over SSH.
	g := sshGit(t, sshOptions(key.Priv))
	url := sshURL(t, s, "alice", "secret")
	work := g.Init(url)
	head := g.Commit(work, "f", "x\n", "c")
	gitMust(t, g, work, "push", "-q", "origin", "master")
	if got := remoteHead(t, g, url); got != head {
		t.Fatalf("push with an API-added key: remote %s, want %s", got, head)
	}

	// bob cannot delete it; alice can, and then it no longer works.
	if status, _ := s.Do("DELETE", "/api/v1/user/keys/"+id, bob, nil); status != http.StatusNotFound {
		t.Fatalf("bob deleting alice's key: %d, want 404", status)
	}
	gitMust(t, g, "", "ls-remote", url)
	if status, body := s.Do("DELETE", "/api/v1/user/keys/"+id, alice, nil); status != http.StatusNoContent {
		t.Fatalf("delete key: %d %s", status, body)
	}
	if status, _ := s.Do("DELETE", "/api/v1/user/keys/"+id, alice, nil); status != http.StatusNotFound {
		t.Fatalf("deleting a deleted key: %d, want 404", status)
	}
	out := gitFails(t, g, "", "ls-remote", url)
	if !strings.Contains(out, "Permission denied (publickey)") {
		t.Fatalf("deleted key: %s", out)
	}
	status, body = s.Do("GET", "/api/v1/user/keys", alice, nil)
	if status != http.StatusOK || strings.TrimSpace(string(body)) != "[]" {
		t.Fatalf("keys after delete: %d %s", status, body)
	}

	// Now free, the key can be bob's, and then it acts as bob: alice's
	// restricted repo is not found, bob's own works.
	addUserKey(t, s, bob, "taken over", key.Text)
	out = gitFails(t, g, "", "ls-remote", url)
	if !strings.Contains(out, "repository not found") {
		t.Fatalf("key moved to bob reading alice/secret: %s", out)
	}
	gitMust(t, g, "", "ls-remote", sshURL(t, s, "bob", "mine"))
}

// TestSSHAccessRules: unknown keys, other users' repos, deploy keys.
func TestSSHAccessRules(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	alice := Cred{"alice", s.CreateUser("alice", false)}
	bob := Cred{"bob", s.CreateUser("bob", false)}
	aliceKey, bobKey, strangerKey := newSSHKey(t, "alice"), newSSHKey(t, "bob"), newSSHKey(t, "stranger")
	addUserKey(t, s, alice, "a", aliceKey.Text)
	addUserKey(t, s, bob, "b", bobKey.Text)
	for _, n := range []string{"secret", "open", "other"} {
		vis := "restricted"
		if n == "open" {
			vis = "public"
		}
		s.CreateRepo(alice, "alice", n, vis)
	}
	ga := sshGit(t, sshOptions(aliceKey.Priv))
	heads := map[string]string{}
	for _, n := range []string{"secret", "open", "other"} {
		work := ga.Init(sshURL(t, s, "alice", n))
		heads[n] = ga.Commit(work, "f", n+"\n", "c")
		gitMust(t, ga, work, "push", "-q", "origin", "master")
	}

	// An unknown key is refused at authentication.
	r := runSSH(t, s, sshOptions(strangerKey.Priv), nil, "git-upload-pack '/alice/open.git'")
	if r.Code != 255 || !strings.Contains(r.Stderr, "Permission denied (publickey)") {
		t.Fatalf("unknown key: exit %d, stderr %q", r.Code, r.Stderr)
	}
	gs := sshGit(t, sshOptions(strangerKey.Priv))
	gitFails(t, gs, "", "ls-remote", sshURL(t, s, "alice", "open"))

	// bob: alice's restricted repos do not exist for him; her public repo
	// is readable, not writable.
	gb := sshGit(t, sshOptions(bobKey.Priv))
	for _, verb := range [][]string{{"ls-remote"}, {"clone", "-q"}} {
		out := gitFails(t, gb, t.TempDir(), append(verb, sshURL(t, s, "alice", "secret"))...)
		if !strings.Contains(out, "repository not found") || strings.Contains(out, heads["secret"]) {
			t.Fatalf("bob %s alice/secret:\n%s", verb[0], out)
		}
	}
	bwork := gb.Init(sshURL(t, s, "alice", "secret"))
	gb.Commit(bwork, "g", "bob\n", "bob's")
	out := gitFails(t, gb, bwork, "push", "origin", "master")
	if !strings.Contains(out, "repository not found") {
		t.Fatalf("bob pushing to alice/secret:\n%s", out)
	}
	clone := cloneT(t, gb, sshURL(t, s, "alice", "open"))
	if got := strings.TrimSpace(gitMust(t, gb, clone, "rev-parse", "HEAD")); got != heads["open"] {
		t.Fatalf("bob cloned alice/open at %s, want %s", got, heads["open"])
	}
	gb.Commit(clone, "g", "bob\n", "bob's")
	out = gitFails(t, gb, clone, "push", "origin", "master")
	if !strings.Contains(out, "permission denied") {
		t.Fatalf("bob pushing to alice/open:\n%s", out)
	}
	if got := remoteHead(t, ga, sshURL(t, s, "alice", "open")); got != heads["open"] {
		t.Fatalf("alice/open moved to %s after bob's refused push", got)
	}

	// A read-only deploy key (the default): clone yes, push no, and no
	// other repository, not even a public one.
	roKey := newSSHKey(t, "ro-deploy")
	dk := addDeployKey(t, s, alice, "alice", "secret", roKey, nil)
	if dk["read_only"] != true || dk["fingerprint"] != roKey.Fingerprint {
		t.Fatalf("deploy key without read_only: %v", dk)
	}
	gro := sshGit(t, sshOptions(roKey.Priv))
	clone = cloneT(t, gro, sshURL(t, s, "alice", "secret"))
	if got := strings.TrimSpace(gitMust(t, gro, clone, "rev-parse", "HEAD")); got != heads["secret"] {
		t.Fatalf("deploy key clone at %s, want %s", got, heads["secret"])
	}
	gro.Commit(clone, "d", "deploy\n", "from deploy key")
	out = gitFails(t, gro, clone, "push", "origin", "master")
	if !strings.Contains(out, "permission denied") {
		t.Fatalf("read-only deploy key push:\n%s", out)
	}
	for _, n := range []string{"open", "other"} {
		out := gitFails(t, gro, "", "ls-remote", sshURL(t, s, "alice", n))
		if !strings.Contains(out, "repository not found") {
			t.Fatalf("read-only deploy key of alice/secret reading alice/%s:\n%s", n, out)
		}
	}
	if got := remoteHead(t, ga, sshURL(t, s, "alice", "secret")); got != heads["secret"] {
		t.Fatalf("alice/secret moved after a read-only deploy key push")
	}

	// A read-write deploy key pushes to its repo only; the build is
	// attributed to the deploy key.
	rwKey := newSSHKey(t, "rw-deploy")
	no := false
	dk = addDeployKey(t, s, alice, "alice", "other", rwKey, &no)
	if dk["read_only"] != false {
		t.Fatalf("deploy key with read_only false: %v", dk)
	}
	grw := sshGit(t, sshOptions(rwKey.Priv))
	clone = cloneT(t, grw, sshURL(t, s, "alice", "other"))
	newHead := grw.Commit(clone, "d", "deploy\n", "from deploy key")
	gitMust(t, grw, clone, "push", "-q", "origin", "master")
	if got := remoteHead(t, ga, sshURL(t, s, "alice", "other")); got != newHead {
		t.Fatalf("read-write deploy key push: remote %s, want %s", got, newHead)
	}
	builds := s.Builds(alice, "alice", "other")
	if len(builds) == 0 || builds[0]["commit"] != newHead || !strings.Contains(fmt.Sprint(builds[0]["pushed_by"]), rwKey.Fingerprint) {
		t.Fatalf("build after a deploy-key push: %v", builds)
	}
	for _, n := range []string{"secret", "open"} {
		out := gitFails(t, grw, "", "ls-remote", sshURL(t, s, "alice", n))
		if !strings.Contains(out, "repository not found") {
			t.Fatalf("read-write deploy key of alice/other reading alice/%s:\n%s", n, out)
		}
	}
	// The force-push policy holds for deploy keys too.
	gitMust(t, grw, clone, "reset", "-q", "--hard", "HEAD~1")
	grw.Commit(clone, "d", "rewrite\n", "rewrite")
	out = gitFails(t, grw, clone, "push", "--force", "origin", "master")
	if !rejectedLineRE.MatchString(out) {
		t.Fatalf("force push with a deploy key:\n%s", out)
	}

	// Deploy keys are listed for the owner only, and deleting one ends
	// its access.
	status, body := s.Do("GET", "/api/v1/repos/alice/other/deploy-keys", alice, nil)
	var keys []map[string]any
	json.Unmarshal(body, &keys)
	if status != http.StatusOK || len(keys) != 1 || keys[0]["fingerprint"] != rwKey.Fingerprint || keys[0]["read_only"] != false {
		t.Fatalf("list deploy keys: %d %s", status, body)
	}
	if status, _ := s.Do("GET", "/api/v1/repos/alice/other/deploy-keys", bob, nil); status != http.StatusNotFound {
		t.Errorf("bob listing alice/other's deploy keys: %d, want 404", status)
	}
	if status, _ := s.Do("POST", "/api/v1/repos/alice/open/deploy-keys", bob, map[string]any{"key": newSSHKey(t, "x").Text}); status != http.StatusForbidden && status != http.StatusNotFound {
		t.Errorf("bob adding a deploy key to alice/open: %d, want 403 or 404", status)
	}
	if status, body := s.Do("DELETE", fmt.Sprintf("/api/v1/repos/alice/other/deploy-keys/%v", keys[0]["id"]), alice, nil); status != http.StatusNoContent {
		t.Fatalf("delete deploy key: %d %s", status, body)
	}
	out = gitFails(t, grw, "", "ls-remote", sshURL(t, s, "alice", "other"))
	if !strings.Contains(out, "Permission denied (publickey)") {
		t.Fatalf("deleted deploy key:\n%s", out)
	}
}

// TestSSHNoShell: anything but git gets a short, clear refusal on stderr
// and a non-zero exit, without traces or server paths.
func TestSSHNoShell(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	dave := Cred{"dave", s.CreateUser("dave", false)}
	key := newSSHKey(t, "dave")
	addUserKey(t, s, dave, "k", key.Text)
	s.CreateRepo(dave, "dave", "r", "restricted")
	opts := sshOptions(key.Priv)
	for _, tc := range []struct {
		name   string
		extra  []string
		remote []string
		want   string
	}{
		{"no command", nil, nil, "hi dave! You have authenticated, but gitserver provides no shell access"},
		{"pty", []string{"-tt"}, nil, "no shell access"},
		{"pty with a git command", []string{"-tt"}, []string{"git-upload-pack '/dave/r.git'"}, "no shell access"},
		{"ls", nil, []string{"ls"}, "only git-upload-pack, git-receive-pack and git-upload-archive are supported"},
		{"shell", nil, []string{"sh -c 'cat /etc/passwd'"}, "only git-upload-pack"},
		{"git without service", nil, []string{"git"}, "only git-upload-pack"},
		{"service without path", nil, []string{"git-upload-pack"}, "takes exactly one repository path"},
		{"extra argument", nil, []string{"git-receive-pack '/dave/r.git' --x"}, "takes exactly one repository path"},
		{"traversal", nil, []string{"git-upload-pack '/../x.git'"}, "repository not found"},
		{"double-slash traversal", nil, []string{"git-upload-pack '//../x.git'"}, "repository not found"},
		{"absolute path", nil, []string{"git-upload-pack '" + filepath.Join(s.Data, "repos", "dave", "r.git") + "'"}, "repository not found"},
		{"bad name", nil, []string{"git-upload-pack '/dave/-r.git'"}, "repository not found"},
		{"missing repo", nil, []string{"git-receive-pack '/dave/nope.git'"}, "repository not found"},
		{"unbalanced quote", nil, []string{"git-upload-pack '/dave/r.git"}, "could not parse the command"},
		{"subsystem", []string{"-s"}, []string{"sftp"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runSSH(t, s, append(append([]string{}, opts...), tc.extra...), nil, tc.remote...)
			if r.Code == 0 {
				t.Fatalf("exit 0, want non-zero; stderr %q", r.Stderr)
			}
			if !strings.Contains(r.Stderr, tc.want) {
				t.Fatalf("stderr %q, want it to contain %q", r.Stderr, tc.want)
			}
			if r.Stdout != "" {
				t.Errorf("stdout %q, want nothing", r.Stdout)
			}
			if len(r.Stderr) > 300 {
				t.Errorf("stderr is %d bytes; want a short message:\n%s", len(r.Stderr), r.Stderr)
			}
			noLeak(t, s, "refusal", r.Stderr)
		})
	}
	// After all that, git over SSH still works.
	gitMust(t, sshGit(t, opts), "", "ls-remote", sshURL(t, s, "dave", "r"))
}

// TestSSHHostKeyStable: the host key survives a restart, so a client with
// StrictHostKeyChecking=yes keeps connecting; a different server is caught.
func TestSSHHostKeyStable(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	erin := Cred{"erin", s.CreateUser("erin", false)}
	key := newSSHKey(t, "erin")
	addUserKey(t, s, erin, "k", key.Text)
	s.CreateRepo(erin, "erin", "r", "restricted")

	kh := filepath.Join(t.TempDir(), "known_hosts")
	opts := func(strict string) []string {
		return []string{"-F", "/dev/null", "-i", key.Priv, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none", "-o", "BatchMode=yes",
			"-o", "HostKeyAlias=gitserver-test", "-o", "UserKnownHostsFile=" + kh, "-o", "StrictHostKeyChecking=" + strict,
			"-o", "LogLevel=ERROR"}
	}
	// First contact records the key.
	g := sshGit(t, opts("accept-new"))
	work := g.Init(sshURL(t, s, "erin", "r"))
	head := g.Commit(work, "f", "x\n", "c")
	gitMust(t, g, work, "push", "-q", "origin", "master")
	recorded, err := os.ReadFile(kh)
	if err != nil || !bytes.Contains(recorded, []byte("gitserver-test ssh-ed25519 ")) {
		t.Fatalf("known_hosts after first contact: %q, %v", recorded, err)
	}
	// It is the key in the data directory, stored privately.
	hk := filepath.Join(s.Data, "ssh_host_ed25519_key")
	fi, err := os.Stat(hk)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("host key file: %v, %v", fi, err)
	}
	pub, err := exec.Command("ssh-keygen", "-y", "-f", hk).Output()
	if err != nil {
		t.Fatalf("ssh-keygen -y on the host key: %v", err)
	}
	if f := strings.Fields(string(pub)); len(f) < 2 || !bytes.Contains(recorded, []byte(f[0]+" "+f[1])) {
		t.Fatalf("recorded host key %q is not the data directory's %q", recorded, pub)
	}

	// After a restart (new port), strict checking still passes.
	s.Restart()
	g = sshGit(t, opts("yes"))
	if got := remoteHead(t, g, sshURL(t, s, "erin", "r")); got != head {
		t.Fatalf("after restart: remote head %s, want %s", got, head)
	}
	r := runSSH(t, s, opts("yes"), nil)
	if !strings.Contains(r.Stderr, "hi erin!") {
		t.Fatalf("ssh after restart: exit %d, %q", r.Code, r.Stderr)
	}
	after, _ := os.ReadFile(kh)
	if !bytes.Equal(after, recorded) {
		t.Fatalf("known_hosts changed across the restart:\n%s\n%s", recorded, after)
	}

	// Control: another server (another data directory, another key) fails
	// the same check, so the check above can fail.
	other := StartServer(t)
	r = runSSH(t, other, opts("yes"), nil)
	if r.Code != 255 || !strings.Contains(r.Stderr, "Host key verification failed") {
		t.Fatalf("a different server passed strict host key checking: exit %d, %q", r.Code, r.Stderr)
	}
}

// TestSSHOfferedKeyIsNotIdentity is the CVE-2024-45337 regression: the
// client offers the victim's public key (it has no private half, so it
// cannot sign) before its own key. The server accepts the offer as a query;
// the session must still run as the account whose key actually signed.
func TestSSHOfferedKeyIsNotIdentity(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	victim := Cred{"victim", s.CreateUser("victim", false)}
	mallory := Cred{"mallory", s.CreateUser("mallory", false)}
	vKey, mKey := newSSHKey(t, "victim"), newSSHKey(t, "mallory")
	addUserKey(t, s, victim, "v", vKey.Text)
	addUserKey(t, s, mallory, "m", mKey.Text)
	s.CreateRepo(victim, "victim", "secret", "restricted")
	s.CreateRepo(mallory, "mallory", "own", "restricted")
	gv := sshGit(t, sshOptions(vKey.Priv))
	vwork := gv.Init(sshURL(t, s, "victim", "secret"))
	vHead := gv.Commit(vwork, "secret", "s3cr3t\n", "secret")
	gitMust(t, gv, vwork, "push", "-q", "origin", "master")

	// Mallory holds the victim's public key (without its private half)
	// and, for the second ordering, a public-only copy of her own key.
	dir := t.TempDir()
	stolen := filepath.Join(dir, "victim.pub")
	ownPub := filepath.Join(dir, "mallory-public-only.pub")
	for f, text := range map[string]string{stolen: vKey.Text, ownPub: mKey.Text} {
		if err := os.WriteFile(f, []byte(text+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// Two orderings of offered keys. OpenSSH queries each key ("Offering
	// public key"), and signs only with a key whose private half it has:
	//
	//  1. victim (query), mallory (query, sign): identity must not come
	//     from the first key offered;
	//  2. mallory (query), victim (query), mallory (query, sign): the
	//     CVE-2024-45337 pattern. With an x/crypto before v0.31 the server
	//     answers the repeated query and the signature for mallory's key
	//     from its cache without calling the callback again, so a server
	//     that remembers "the last key seen by the callback" (as
	//     gliderlabs/ssh's ctx does) would take the victim for the signer.
	var opts []string
	for _, order := range [][]string{{stolen, mKey.Priv}, {ownPub, stolen, mKey.Priv}} {
		opts = sshOptions(order...)
		verbose := append(append([]string{}, opts...), "-v")
		r := runSSH(t, s, verbose, nil)
		// Test premise: every file was offered in order, the victim's key
		// was accepted as a query, and mallory's signed last.
		at := 0
		for _, f := range order {
			i := strings.Index(r.Stderr[at:], "Offering public key: "+f+" ")
			if i < 0 {
				t.Fatalf("order %q: %s was not offered in turn:\n%s", order, f, r.Stderr)
			}
			at += i + 1
		}
		if !strings.Contains(r.Stderr, "Server accepts key: "+stolen+" ") ||
			!strings.Contains(r.Stderr, "Authenticated to 127.0.0.1") {
			t.Fatalf("order %q: the victim's key was not accepted as a query, or mallory did not sign in:\n%s", order, r.Stderr)
		}
		if !strings.Contains(r.Stderr, "hi mallory!") || strings.Contains(r.Stderr, "hi victim") {
			t.Fatalf("order %q: session identity is not mallory:\n%s", order, r.Stderr)
		}
	}

	// As git: the victim's restricted repo is not found, mallory's own
	// works.
	g := sshGit(t, opts)
	out := gitFails(t, g, "", "ls-remote", sshURL(t, s, "victim", "secret"))
	if !strings.Contains(out, "repository not found") || strings.Contains(out, vHead) {
		t.Fatalf("mallory read victim/secret with the victim's public key:\n%s", out)
	}
	mwork := g.Init(sshURL(t, s, "mallory", "own"))
	mHead := g.Commit(mwork, "f", "m\n", "m")
	gitMust(t, g, mwork, "push", "-q", "origin", "master")
	if got := remoteHead(t, g, sshURL(t, s, "mallory", "own")); got != mHead {
		t.Fatalf("mallory's own repo: %s, want %s", got, mHead)
	}
	bwork := g.Init(sshURL(t, s, "victim", "secret"))
	g.Commit(bwork, "evil", "x\n", "evil")
	out = gitFails(t, g, bwork, "push", "--force", "origin", "master")
	if !strings.Contains(out, "repository not found") {
		t.Fatalf("mallory pushing to victim/secret:\n%s", out)
	}
	if got := remoteHead(t, gv, sshURL(t, s, "victim", "secret")); got != vHead {
		t.Fatalf("victim/secret moved to %s", got)
	}
	if b := s.Builds(mallory, "mallory", "own"); len(b) != 1 || b[0]["pushed_by"] != "mallory" {
		t.Fatalf("mallory's build: %v", b)
	}
}
