package main

// End-to-end tests of issue 8 item 3: pushes, maintenance and metrics agree
// with what git did.

import (
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// i8SSHGit prepares g to push over SSH to s as admin and returns the SSH
// URL of admin/name.
func i8SSHGit(t *testing.T, s *TestServer, g *GitEnv, name string) string {
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
	url := i8SSHGit(t, s, g, "sshlim")
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
	i3WantRefs(t, i3LsRemote(t, g, url), map[string]string{"refs/heads/master": small})
}
