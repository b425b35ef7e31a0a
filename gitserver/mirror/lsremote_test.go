package mirror

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"gitserver/store"
)

// testSSHGit is an SSH server on loopback that runs the real `git
// upload-pack` for "git-upload-pack '/NAME'" (NAME under root), accepting
// only the public key allowed.
func testSSHGit(t *testing.T, root string, allowed ssh.PublicKey) (addr string, hostKey ssh.Signer) {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	hostKey, _ = ssh.NewSignerFromKey(priv)
	cfg := &ssh.ServerConfig{PublicKeyCallback: func(_ ssh.ConnMetadata, k ssh.PublicKey) (*ssh.Permissions, error) {
		if bytes.Equal(k.Marshal(), allowed.Marshal()) {
			return nil, nil
		}
		return nil, errors.New("denied")
	}}
	cfg.AddHostKey(hostKey)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				sc, chans, reqs, err := ssh.NewServerConn(c, cfg)
				if err != nil {
					return
				}
				defer sc.Close()
				go ssh.DiscardRequests(reqs)
				for nc := range chans {
					ch, creqs, err := nc.Accept()
					if err != nil {
						continue
					}
					go func() {
						defer ch.Close()
						for req := range creqs {
							if req.Type != "exec" {
								req.Reply(false, nil)
								continue
							}
							var p struct{ Command string }
							ssh.Unmarshal(req.Payload, &p)
							req.Reply(true, nil)
							status := 1
							path, ok := strings.CutPrefix(p.Command, "git-upload-pack '/")
							path = strings.TrimSuffix(path, "'")
							if dir := filepath.Join(root, path); !ok || strings.Contains(path, "..") || !isDir(dir) {
								fmt.Fprintln(ch.Stderr(), "repository not found")
							} else {
								cmd := exec.Command("git", "upload-pack", dir)
								cmd.Stdin, cmd.Stdout, cmd.Stderr = ch, ch, ch.Stderr()
								if cmd.Run() == nil {
									status = 0
								}
							}
							ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(status)}))
							return
						}
					}()
				}
			}()
		}
	}()
	return ln.Addr().String(), hostKey
}

func isDir(p string) bool { fi, err := os.Stat(p); return err == nil && fi.IsDir() }

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// TestListRemote: the in-process check against an SSH server running
// git upload-pack lists what git for-each-ref lists, with the upstream's
// HEAD; a wrong host key, a refused key, a missing repository and a
// closed port are the sync error codes the fetch path reports.
func TestListRemote(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	root := t.TempDir()
	repo := filepath.Join(root, "up.git")
	gitT(t, root, "init", "-q", "--bare", "-b", "trunk", repo)
	work := filepath.Join(root, "work")
	gitT(t, root, "init", "-q", "-b", "trunk", work)
	gitT(t, work, "commit", "-q", "--allow-empty", "-m", "one")
	gitT(t, work, "branch", "dev")
	gitT(t, work, "tag", "-a", "-m", "v1", "v1")
	gitT(t, work, "tag", "light")
	gitT(t, work, "push", "-q", repo, "trunk", "dev", "v1", "light", "HEAD:refs/pull/1/head")
	want := map[string]string{}
	for _, line := range strings.Split(gitT(t, repo, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/", "refs/tags/"), "\n") {
		id, ref, _ := strings.Cut(line, " ")
		want[ref] = id
	}

	priv, _, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := ssh.ParsePrivateKey(priv)
	addr, hostKey := testSSHGit(t, root, signer.PublicKey())
	host, port, _ := net.SplitHostPort(addr)
	url := "ssh://git@" + host + ":" + port + "/up.git"
	r, _ := ParseURL(url)
	pin := func(k ssh.PublicKey) string {
		var h HostKeys
		h.add(r, k)
		return h.KnownHosts
	}
	m := store.Mirror{URL: url, PrivateKey: priv, KnownHosts: pin(hostKey.PublicKey())}
	ctx := context.Background()

	refs, head, err := listRemote(ctx, m)
	if err != nil || head != "trunk" || len(want) != 4 || !maps.Equal(refs, want) {
		t.Fatalf("listRemote: %q %v %v; for-each-ref %v", head, refs, err, want)
	}

	code := func(m store.Mirror) string {
		_, _, err := listRemote(ctx, m)
		var se *SyncError
		if !errors.As(err, &se) {
			t.Fatalf("%v is not a SyncError", err)
		}
		return se.Code
	}
	other, _, _ := GenerateKey()
	otherSigner, _ := ssh.ParsePrivateKey(other)
	bad := m
	bad.KnownHosts = pin(otherSigner.PublicKey())
	if c := code(bad); c != CodeHostKeyChanged {
		t.Errorf("another host key: %s", c)
	}
	bad = m
	bad.PrivateKey = other
	if c := code(bad); c != CodeAuthFailed {
		t.Errorf("a refused key: %s", c)
	}
	bad = m
	bad.URL = "ssh://git@" + host + ":" + port + "/nope.git"
	if c := code(bad); c != CodeNotFound {
		t.Errorf("no such repository: %s", c)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	closed := ln.Addr().String()
	ln.Close()
	_, cport, _ := net.SplitHostPort(closed)
	bad = m
	bad.URL = "ssh://git@127.0.0.1:" + cport + "/up.git"
	if c := code(bad); c != CodeUnreachable {
		t.Errorf("a closed port: %s", c)
	}
}
