package main

// End-to-end tests of issue 8 item 3: pushes, maintenance and metrics agree
// with what git did.

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// sshGitEnv prepares g to push over SSH to s as admin and returns the SSH
// URL of admin/name.
func sshGitEnv(t *testing.T, s *TestServer, g *GitEnv, name string) string {
	t.Helper()
	if _, err := exec.LookPath("ssh-keygen"); err != nil {
		t.Skip("no ssh-keygen")
	}
	key := filepath.Join(g.Home, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v %s", err, out)
	}
	if _, err := s.Admin("", "key", "add", "admin", "--file", key+".pub"); err != nil {
		t.Fatalf("add key: %v", err)
	}
	g.Env = append(g.Env, "GIT_SSH_COMMAND=ssh -i "+key+" -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR")
	_, port, _ := strings.Cut(s.SSHAddr, ":")
	return "ssh://git@127.0.0.1:" + port + "/admin/" + name + ".git"
}

// TestSSHPushLimit: --max-push-mb bounds SSH pushes too (there is no
// request body to cut: git's receive.maxInputSize does it), and the client
// is told why.
func TestSSHPushLimit(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithArgs("--max-push-mb", "1"))
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "sshlim", "restricted")
	g := NewGitEnv(t)
	url := sshGitEnv(t, s, g, "sshlim")
	work := g.Init(url)
	small := g.Commit(work, "a", "small\n", "small")
	g.Must(work, "push", "-q", "origin", "master")
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	os.WriteFile(filepath.Join(work, "random.bin"), blob, 0o644)
	g.Must(work, "add", ".")
	g.Must(work, "commit", "-q", "-m", "too big")
	out, err := g.Run(work, "push", "origin", "master")
	if err == nil {
		t.Fatalf("SSH push over the limit succeeded:\n%s", out)
	}
	if !strings.Contains(out, "remote: fatal: pack exceeds maximum allowed size") {
		t.Errorf("the client is not told that the push is over the limit:\n%s", out)
	}
	wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/master": small})
}

// hangUpPush pushes head (with every object of work's history) to
// refs/heads/master of the empty repository at path the way libgit2 and
// Dulwich do: it reads the report and closes the connection at once,
// without reading the rest of git's answer (post-receive's messages).
func hangUpPush(t *testing.T, s *TestServer, g *GitEnv, work, head, path string, c Cred) {
	t.Helper()
	cmd := exec.Command("git", "pack-objects", "--stdout", "--revs", "-q")
	cmd.Dir = work
	cmd.Env = g.Env
	cmd.Stdin = strings.NewReader(head + "\n")
	pack, err := cmd.Output()
	if err != nil {
		t.Fatalf("pack-objects: %v", err)
	}
	var body bytes.Buffer
	line := strings.Repeat("0", 40) + " " + head + " refs/heads/master\x00report-status side-band-64k agent=libgit2/1.7\n"
	fmt.Fprintf(&body, "%04x%s0000", len(line)+4, line)
	body.Write(pack)

	conn, err := net.DialTimeout("tcp", s.HTTPAddr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-git-receive-pack-request\r\n", path, s.HTTPAddr)
	fmt.Fprintf(&req, "Authorization: %s\r\nContent-Length: %d\r\n\r\n", basicAuth(c.User, c.Secret)["Authorization"], body.Len())
	req.Write(body.Bytes())
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("receive-pack answered %s", resp.Status)
	}
	var got []byte
	buf := make([]byte, 1)
	for !bytes.Contains(got, []byte("ok refs/heads/master\n")) {
		n, err := resp.Body.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("no report before %v: %q", err, got)
		}
	}
	if !bytes.Contains(got, []byte("unpack ok\n")) {
		t.Fatalf("report: %q", got)
	}
	conn.Close() // at once: the hook's "build queued" line is never read
}

// TestPushClientHangsUpAfterReport: a push whose client closes the
// connection right after reading git's report (libgit2, Dulwich) updated
// its ref; it is counted as ok, not canceled, and gets its maintenance.
func TestPushClientHangsUpAfterReport(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithEnv("GITSERVER_MAINTENANCE_DELAY=200ms"))
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "hangup", "restricted")
	url := s.RepoURL(admin, "admin", "hangup")
	g := NewGitEnv(t)
	work := g.Init(url)
	var head string
	for i := range 3 {
		head = g.Commit(work, "f.txt", strings.Repeat("x\n", i+1), "c")
	}
	hangUpPush(t, s, g, work, head, "/git/admin/hangup.git/git-receive-pack", admin)

	wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/master": head})
	okRE := regexp.MustCompile(`gitserver_git_operations_total\{result="ok",service="receive-pack",transport="http"\} 1\b`)
	var metrics string
	var bitmaps []string
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		metrics = rawHTTP(t, s.HTTPAddr, "GET", "/metrics", nil, nil).Body
		bitmaps, _ = filepath.Glob(filepath.Join(s.Data, "repos", "*.git", "objects", "pack", "*.bitmap"))
		if okRE.MatchString(metrics) && len(bitmaps) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	var lines []string
	for _, l := range strings.Split(metrics, "\n") {
		if strings.HasPrefix(l, "gitserver_git_operations_total{") && strings.Contains(l, `service="receive-pack"`) {
			lines = append(lines, l)
		}
	}
	if !okRE.MatchString(metrics) || strings.Contains(metrics, `result="canceled",service="receive-pack"`) {
		t.Errorf("push metrics disagree with git (the ref moved):\n%s", strings.Join(lines, "\n"))
	}
	if len(bitmaps) == 0 {
		t.Errorf("no maintenance after a push that moved a ref\n%s", s.Output())
	}
	// The build the hook queued is there once, and the log has no cancel.
	if b := s.Builds(admin, "admin", "hangup"); len(b) != 1 || b[0]["commit"] != head {
		t.Errorf("builds: %v", b)
	}
	if strings.Contains(s.Output(), "git request canceled") {
		t.Errorf("the push is logged as canceled:\n%s", s.Output())
	}
}

// TestDeleteRepoRecoverable: a repository whose directory cannot be moved
// aside is not deleted (500, nothing lost); once it can, deletion removes
// both rows and files; the trash is swept at start-up.
func TestDeleteRepoRecoverable(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "doomed", "restricted")
	url := s.RepoURL(admin, "admin", "doomed")
	g := NewGitEnv(t)
	work := g.Init(url)
	head := g.Commit(work, "a", "1\n", "c")
	g.Must(work, "push", "-q", "origin", "master")

	// A real rename failure: the repositories' root made immutable (as
	// root, where chmod stops nothing), else the trash replaced by a file.
	root := filepath.Join(s.Data, "repos")
	trash := filepath.Join(root, ".trash")
	var undo func()
	if out, err := exec.Command("chattr", "+i", root).CombinedOutput(); err == nil {
		t.Log("injected: chattr +i repos/")
		undo = func() { exec.Command("chattr", "-i", root).Run() }
	} else {
		t.Logf("chattr +i: %v %s; injecting a file as the trash", err, out)
		os.RemoveAll(trash)
		if err := os.WriteFile(trash, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		undo = func() { os.Remove(trash) }
	}
	t.Cleanup(undo)
	status, body := s.Do("DELETE", "/api/v1/repos/admin/doomed", admin, nil)
	undo()
	if status != http.StatusInternalServerError || !strings.Contains(string(body), "nothing was deleted") {
		t.Errorf("DELETE with an immovable directory = %d %s, want 500 saying nothing was deleted", status, body)
	}
	if strings.Contains(string(body), s.Data) {
		t.Errorf("error leaks a server path: %s", body)
	}
	if status, _ := s.Do("GET", "/api/v1/repos/admin/doomed", admin, nil); status != http.StatusOK {
		t.Fatalf("repository lost by a failed delete: GET = %d", status)
	}
	wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/master": head})

	if status, body := s.Do("DELETE", "/api/v1/repos/admin/doomed", admin, nil); status != http.StatusNoContent {
		t.Fatalf("DELETE = %d %s", status, body)
	}
	if status, _ := s.Do("GET", "/api/v1/repos/admin/doomed", admin, nil); status != http.StatusNotFound {
		t.Fatalf("deleted repository: GET = %d", status)
	}
	dirs, _ := filepath.Glob(filepath.Join(root, "*.git"))
	left, _ := os.ReadDir(trash)
	if len(dirs) != 0 || len(left) != 0 {
		t.Fatalf("deleted repository left %v and %v in the trash", dirs, left)
	}

	// Whatever is in the trash at start-up (a removal that failed before
	// a crash) is removed.
	if err := os.MkdirAll(filepath.Join(trash, "99.git-dead", "objects"), 0o755); err != nil {
		t.Fatal(err)
	}
	s.Restart()
	if left, _ := os.ReadDir(trash); len(left) != 0 {
		t.Fatalf("start-up left %v in the trash", left)
	}
}

// TestPushAllOrNothing: a push with one good ref and one git itself would
// refuse (a directory/file conflict within the push or with an existing
// ref, a hidden ref) changes no ref (docs/api.md §6), with a line naming the
// refused ref.
func TestPushAllOrNothing(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "atomic", "restricted")
	url := s.RepoURL(admin, "admin", "atomic")
	g := NewGitEnv(t)
	work := g.Init(url)
	c1 := g.Commit(work, "a", "1\n", "c1")
	g.Must(work, "push", "-q", "origin", "master", "master:refs/heads/df", "master:refs/heads/dir/sub")
	base := map[string]string{"refs/heads/master": c1, "refs/heads/df": c1, "refs/heads/dir/sub": c1}

	for i, tc := range []struct {
		name    string
		refspec []string
		want    string // in the push's output
		absent  []string
	}{
		{"D/F within the push", []string{"master", "master:refs/heads/new", "master:refs/heads/new/x"},
			"remote: rejected refs/heads/new", []string{"refs/heads/new", "refs/heads/new/x"}},
		{"under an existing ref", []string{"master", "master:refs/heads/df/x"},
			"remote: rejected refs/heads/df/x", []string{"refs/heads/df/x"}},
		{"over an existing directory", []string{"master", "master:refs/heads/dir"},
			"remote: rejected refs/heads/dir", []string{"refs/heads/dir"}},
		{"hidden ref", []string{"master", "master:refs/gitserver/pins/x"},
			"remote: rejected refs/gitserver/pins/x", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// A new commit each time: the good ref's update is real.
			g.Commit(work, "a", fmt.Sprint(i+2, "\n"), "next")
			out := pushFails(t, g, work, append([]string{"origin"}, tc.refspec...)...)
			if !strings.Contains(out, tc.want) {
				t.Errorf("output lacks %q:\n%s", tc.want, out)
			}
			want := maps.Clone(base)
			for _, r := range tc.absent {
				want[r] = ""
			}
			wantRefs(t, lsRemoteRefs(t, g, url), want)
			if t.Failed() {
				t.Logf("output:\n%s", out)
			}
		})
	}
	// Good pushes still work, including deleting a ref and creating one
	// below its name in separate pushes.
	c2 := g.Commit(work, "a", "last\n", "last")
	g.Must(work, "push", "-q", "origin", "master", ":refs/heads/df")
	g.Must(work, "push", "-q", "origin", "master:refs/heads/df/x")
	wantRefs(t, lsRemoteRefs(t, g, url), map[string]string{"refs/heads/master": c2, "refs/heads/df/x": c2, "refs/heads/df": ""})
}
