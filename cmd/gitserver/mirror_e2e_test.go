package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// mirrorPair is an upstream server, a mirror server, and on the mirror a
// mirror of the upstream's repository alice/app, its deploy key added
// upstream as a read-only deploy key.
type mirrorPair struct {
	up, here    *TestServer
	upAdmin     Cred
	admin       Cred
	git         *GitEnv
	work        string // a work tree pushing to the upstream
	deployKeyID float64
	upstreamURL string
}

func adminCred(s *TestServer) Cred {
	b, err := os.ReadFile(s.Data + "/initial-admin-password")
	if err != nil {
		s.t.Fatal(err)
	}
	return Cred{User: "admin", Secret: strings.TrimSpace(string(b))}
}

func newMirrorPair(t *testing.T, here ...ServerOption) *mirrorPair {
	p := &mirrorPair{up: StartServer(t), here: StartServer(t, here...), git: NewGitEnv(t)}
	p.upAdmin, p.admin = adminCred(p.up), adminCred(p.here)
	p.up.CreateRepo(p.upAdmin, "admin", "app", "restricted")
	p.work = p.git.Init(p.up.RepoURL(p.upAdmin, "admin", "app"))
	p.git.Commit(p.work, "a.txt", "one\n", "one")
	p.git.Must(p.work, "push", "-q", "origin", "master")
	p.upstreamURL = "ssh://git@" + p.up.SSHAddr + "/admin/app.git"
	status, m := p.here.JSON("POST", "/api/v1/repos", p.admin, map[string]any{"owner": "admin", "name": "app", "visibility": "restricted",
		"mirror": map[string]any{"url": p.upstreamURL}})
	if status != http.StatusCreated {
		t.Fatalf("create mirror: %d %v", status, m)
	}
	mi := m["mirror"].(map[string]any)
	if mi["url"] != p.upstreamURL || !strings.HasPrefix(mi["deploy_key"].(string), "ssh-ed25519 ") ||
		len(mi["host_key_fingerprints"].([]any)) == 0 || mi["interval"] != "10m" ||
		!strings.Contains(mi["webhook_url"].(string), "/hooks/scm/") {
		t.Fatalf("mirror object %v", mi)
	}
	if strings.Contains(string(mustJSON(m)), "PRIVATE KEY") {
		t.Fatal("the answer carries the private key")
	}
	status, k := p.up.JSON("POST", "/api/v1/repos/admin/app/deploy-keys", p.upAdmin, map[string]any{"title": "mirror", "key": mi["deploy_key"]})
	if status != http.StatusCreated {
		t.Fatalf("add deploy key upstream: %d %v", status, k)
	}
	p.deployKeyID = k["id"].(float64)
	return p
}

func mustJSON(v any) []byte {
	var b bytes.Buffer
	_ = jsonEncode(&b, v)
	return b.Bytes()
}

// waitMirror syncs (unless sync is false) and waits until the mirror's
// last sync is after since, returning the mirror object.
func (p *mirrorPair) waitSynced(t *testing.T, since string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		status, m := p.here.JSON("GET", "/api/v1/repos/admin/app/mirror", p.admin, nil)
		if status != http.StatusOK {
			t.Fatalf("get mirror: %d %v", status, m)
		}
		if ls, _ := m["last_sync_at"].(string); ls != "" && ls != since && m["status"] != "syncing" {
			return m
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("the mirror did not sync")
	return nil
}

func (p *mirrorPair) sync(t *testing.T) map[string]any {
	t.Helper()
	_, before := p.here.JSON("GET", "/api/v1/repos/admin/app/mirror", p.admin, nil)
	since, _ := before["last_sync_at"].(string)
	if status, m := p.here.JSON("POST", "/api/v1/repos/admin/app/mirror/sync", p.admin, nil); status != http.StatusAccepted {
		t.Fatalf("sync: %d %v", status, m)
	}
	return p.waitSynced(t, since)
}

func (p *mirrorPair) head(t *testing.T) string {
	out, err := p.git.Run("", "ls-remote", p.here.RepoURL(p.admin, "admin", "app"), "refs/heads/master")
	if err != nil {
		t.Fatalf("ls-remote mirror: %v %s", err, out)
	}
	id, _, _ := strings.Cut(out, "\t")
	return strings.TrimSpace(id)
}

// TestMirrorFromAnotherServer: a mirror of a repository on another
// gitserver over real SSH with a generated deploy key: refs mirrored, one
// build per new head, pushes refused, a deleted deploy key reported.
func TestMirrorFromAnotherServer(t *testing.T) {
	p := newMirrorPair(t)
	// The first sync started at creation, before the deploy key was
	// added upstream: it may have failed with auth_failed. Sync now.
	m := p.sync(t)
	if m["status"] != "ok" || m["last_error"] != nil {
		t.Fatalf("sync: %v", m)
	}
	c1 := strings.TrimSpace(p.git.Must(p.work, "rev-parse", "HEAD"))
	if got := p.head(t); got != c1 {
		t.Fatalf("mirror head %s, want %s", got, c1)
	}
	c2 := p.git.Commit(p.work, "a.txt", "two\n", "two")
	p.git.Must(p.work, "tag", "v1")
	p.git.Must(p.work, "push", "-q", "origin", "master", "v1")
	p.sync(t)
	if got := p.head(t); got != c2 {
		t.Fatalf("mirror head %s, want %s", got, c2)
	}
	if out := p.git.Must("", "ls-remote", p.here.RepoURL(p.admin, "admin", "app"), "refs/tags/v1"); !strings.Contains(out, c2) {
		t.Fatalf("tag not mirrored: %s", out)
	}
	// A sync with nothing new queues nothing.
	p.sync(t)
	builds := p.here.Builds(p.admin, "admin", "app")
	n := 0
	for _, b := range builds {
		if b["commit"] == c2 {
			n++
			if b["pushed_by"] != "mirror" {
				t.Errorf("pushed_by %v", b["pushed_by"])
			}
		}
	}
	if n != 1 {
		t.Fatalf("%d builds for the new head: %v", n, builds)
	}

	// A push to the mirror is refused, naming the upstream.
	clone := p.git.Clone(p.here.RepoURL(p.admin, "admin", "app"))
	p.git.Commit(clone, "b.txt", "x\n", "here")
	out, err := p.git.Run(clone, "push", "origin", "master")
	if want := "remote: rejected refs/heads/master: this repository mirrors " + p.upstreamURL + "; push there"; err == nil || !strings.Contains(out, want) {
		t.Fatalf("push to the mirror: %v\n%s\nwant %q", err, out, want)
	}

	// The webhook's secret is the owners'.
	status, wh := p.here.JSON("GET", "/api/v1/repos/admin/app/mirror/webhook", p.admin, nil)
	if status != http.StatusOK || wh["secret"] == "" || !strings.Contains(wh["url"].(string), "/hooks/scm/") {
		t.Fatalf("webhook: %d %v", status, wh)
	}
	hookPath := "/hooks/scm/" + wh["url"].(string)[strings.Index(wh["url"].(string), "/hooks/scm/")+len("/hooks/scm/"):]
	secret := wh["secret"].(string)
	body, err := os.ReadFile("../../gitserver/scm/webhook/testdata/gitea/push.json")
	if err != nil {
		t.Fatal(err)
	}
	deliver := func(path string, body []byte, sig, delivery string) int {
		req, _ := http.NewRequest("POST", p.here.URL+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Gitea-Event", "push")
		req.Header.Set("X-Gitea-Delivery", delivery)
		if sig != "" {
			req.Header.Set("X-Gitea-Signature", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	sig := hex.EncodeToString(mac.Sum(nil))
	_, before := p.here.JSON("GET", "/api/v1/repos/admin/app/mirror", p.admin, nil)
	if code := deliver(hookPath, body, strings.Repeat("0", 64), "d-1"); code != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d", code)
	}
	if code := deliver(hookPath, body, "", "d-1"); code != http.StatusUnauthorized {
		t.Fatalf("no signature: %d", code)
	}
	if code := deliver("/hooks/scm/"+strings.Repeat("ab", 16), body, sig, "d-1"); code != http.StatusNotFound {
		t.Fatalf("unknown hook: %d", code)
	}
	if code := deliver(hookPath, bytes.Repeat([]byte(" "), 25<<20+1), sig, "d-1"); code != http.StatusRequestEntityTooLarge {
		t.Fatalf("huge body: %d", code)
	}
	_, after := p.here.JSON("GET", "/api/v1/repos/admin/app/mirror", p.admin, nil)
	if after["last_sync_at"] != before["last_sync_at"] || after["last_delivery_at"] != nil {
		t.Fatalf("refused deliveries changed the mirror: %v -> %v", before, after)
	}
	c3 := p.git.Commit(p.work, "a.txt", "three\n", "three")
	p.git.Must(p.work, "push", "-q", "origin", "master")
	if code := deliver(hookPath, body, sig, "d-1"); code != http.StatusAccepted {
		t.Fatalf("valid delivery: %d", code)
	}
	m = p.waitSynced(t, before["last_sync_at"].(string))
	if got := p.head(t); got != c3 || m["last_delivery_at"] == nil {
		t.Fatalf("after the webhook: head %s want %s; %v", got, c3, m)
	}
	if code := deliver(hookPath, body, sig, "d-1"); code != http.StatusOK {
		t.Fatalf("replayed delivery: %d", code)
	}
	time.Sleep(300 * time.Millisecond)
	if _, again := p.here.JSON("GET", "/api/v1/repos/admin/app/mirror", p.admin, nil); again["last_sync_at"] != m["last_sync_at"] {
		t.Fatalf("a replayed delivery synced: %v", again)
	}

	// The deploy key deleted upstream: auth_failed, nothing changes here.
	if status, b := p.up.Do("DELETE", "/api/v1/repos/admin/app/deploy-keys/"+strconv.FormatInt(int64(p.deployKeyID), 10), p.upAdmin, nil); status != http.StatusNoContent {
		t.Fatalf("delete deploy key: %d %s", status, b)
	}
	m = p.sync(t)
	le, _ := m["last_error"].(map[string]any)
	if m["status"] != "error" || le == nil || le["code"] != "auth_failed" {
		t.Fatalf("after the key was deleted: %v", m)
	}
	if strings.Contains(le["message"].(string), p.here.Data) || strings.Contains(le["message"].(string), "/") && strings.Contains(le["message"].(string), "tmp") {
		t.Fatalf("error message leaks a path: %v", le)
	}
}

// TestMirrorHostileURLs: URLs git or ssh could misread are refused with 400.
func TestMirrorHostileURLs(t *testing.T) {
	s := StartServer(t)
	admin := adminCred(s)
	for _, u := range []string{"-oProxyCommand=touch /tmp/pwned", "ext::sh -c touch% /tmp/pwned", "ext::sh", "/etc", "file:///etc",
		"ssh://-oProxyCommand=x/o/r", "git@-oProxyCommand=x:o/r", "git@host:o/r\nx", "https://example.com/o/r.git", "../x", "fd::1"} {
		status, m := s.JSON("POST", "/api/v1/repos", admin, map[string]any{"owner": "admin", "name": "m", "visibility": "public",
			"mirror": map[string]any{"url": u}})
		if status != http.StatusBadRequest {
			t.Errorf("%q: %d %v", u, status, m)
		}
	}
	if status, _ := s.JSON("GET", "/api/v1/repos/admin/m", admin, nil); status != http.StatusNotFound {
		t.Fatalf("a refused mirror left a repository: %d", status)
	}
}

func jsonEncode(b *bytes.Buffer, v any) error { return json.NewEncoder(b).Encode(v) }

// TestMirrorFetchSizeLimit: the push size limit (--max-push-mb) bounds what
// a sync may download. An upstream that sends more is stopped with
// too_large; no ref moves and no partial pack stays behind.
func TestMirrorFetchSizeLimit(t *testing.T) {
	p := newMirrorPair(t, WithArgs("--max-push-mb", "1"))
	if m := p.sync(t); m["status"] != "ok" {
		t.Fatalf("first (small) sync: %v", m)
	}
	head := p.head(t)
	big := make([]byte, 3<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(p.work, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	p.git.Must(p.work, "add", "big.bin")
	p.git.Must(p.work, "commit", "-q", "-m", "3 MiB")
	p.git.Must(p.work, "push", "-q", "origin", "master")

	m := p.sync(t)
	le, _ := m["last_error"].(map[string]any)
	if m["status"] != "error" || le == nil || le["code"] != "too_large" || !strings.Contains(le["message"].(string), "1 MB") {
		t.Fatalf("sync of 3 MiB with --max-push-mb 1: %v", m)
	}
	if got := p.head(t); got != head {
		t.Fatalf("the default branch moved to %s after a refused sync (was %s)", got, head)
	}
	packs, _ := filepath.Glob(filepath.Join(repoDirOf(t, filepath.Join(p.here.Data, "repos")), "objects", "pack", "tmp_*"))
	if len(packs) != 0 {
		t.Fatalf("partial packs left behind: %v", packs)
	}
}
