package main

// End-to-end tests of mirrored repositories against a real upstream SCM:
// Gitea v1.26.0 (gitea_harness_test.go) with its built-in SSH server,
// read-only deploy keys and signed webhooks, and a gitserver reachable by
// Gitea at its --base-url. One Gitea and one gitserver serve every step.

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// giteaMirror is a mirror here of a repository on the test Gitea.
type giteaMirror struct {
	s     *TestServer
	admin Cred
	name  string // admin/<name> here
}

func (m giteaMirror) path() string { return "/api/v1/repos/admin/" + m.name }

func (m giteaMirror) status(t *testing.T) map[string]any {
	t.Helper()
	code, st := m.s.JSON("GET", m.path()+"/mirror", m.admin, nil)
	if code != http.StatusOK {
		t.Fatalf("get mirror %s: %d %v", m.name, code, st)
	}
	return st
}

// waitSync waits until the mirror finished a sync after since (its
// last_sync_at before) and returns its status.
func (m giteaMirror) waitSync(t *testing.T, since any) map[string]any {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		st := m.status(t)
		if ls, _ := st["last_sync_at"].(string); ls != "" && st["last_sync_at"] != since && st["status"] != "syncing" {
			return st
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("mirror %s did not sync within 60s: %v", m.name, m.status(t))
	return nil
}

// sync asks for a sync now ("Fetch repository") and waits for it.
func (m giteaMirror) sync(t *testing.T) map[string]any {
	t.Helper()
	since := m.status(t)["last_sync_at"]
	if code, b := m.s.JSON("POST", m.path()+"/mirror/sync", m.admin, nil); code != http.StatusAccepted {
		t.Fatalf("sync %s: %d %v", m.name, code, b)
	}
	return m.waitSync(t, since)
}

// refs are the branches and tags of the mirror as a client sees them.
func (m giteaMirror) refs(t *testing.T, g *GitEnv) map[string]string {
	t.Helper()
	return lsRefs(t, g, m.s.RepoURL(m.admin, "admin", m.name))
}

func lsRefs(t *testing.T, g *GitEnv, url string) map[string]string {
	t.Helper()
	refs := map[string]string{}
	for _, line := range strings.Split(gitMust(t, g, "", "ls-remote", url), "\n") {
		if id, ref, ok := strings.Cut(strings.TrimSpace(line), "\t"); ok && (strings.HasPrefix(ref, "refs/heads/") || strings.HasPrefix(ref, "refs/tags/")) {
			refs[ref] = id
		}
	}
	return refs
}

// waitHead waits until the mirror's branch is commit (moved by a sync
// nobody asked for here: the webhook's).
func (m giteaMirror) waitHead(t *testing.T, g *GitEnv, branch, commit string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		if m.refs(t, g)["refs/heads/"+branch] == commit {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("mirror %s: %s is not %s after %v: %v", m.name, branch, commit, within, m.status(t))
}

// waitBuilds waits until commit has n builds and returns them.
func (m giteaMirror) waitBuilds(t *testing.T, commit string, n int) []map[string]any {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		bs := buildsFor(t, m.s, m.admin, "admin", m.name, commit)
		if len(bs) >= n || time.Now().After(deadline) {
			if len(bs) != n {
				t.Fatalf("%d builds of %s, want %d: %v", len(bs), commit, n, m.s.Builds(m.admin, "admin", m.name))
			}
			return bs
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var fetchesRE = regexp.MustCompile(`(?m)^gitserver_mirror_fetches_total (\S+)$`)

func mirrorFetches(t *testing.T, s *TestServer) int {
	t.Helper()
	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	mm := fetchesRE.FindStringSubmatch(b.String())
	if mm == nil {
		t.Fatalf("/metrics has no gitserver_mirror_fetches_total")
	}
	n, _ := strconv.ParseFloat(mm[1], 64)
	return int(n)
}

// TestMirrorFromGitea: the whole flow against a real Gitea. A mirror with
// a generated key added upstream as a read-only deploy key and a Gitea
// webhook to this server; a push upstream gives exactly one build here
// (pushed_by the Gitea pusher) with no sync asked for; refused and
// replayed deliveries; an unchanged upstream is not fetched; a pasted key
// with given host keys; an upstream force push with a published version
// (kept, and the rewrite reported); a change of the upstream's default
// branch; a deleted deploy key (auth_failed) and a new host key
// (host_key_changed, nothing fetched).
func TestMirrorFromGitea(t *testing.T) {
	t.Parallel()
	began := time.Now()
	gt := StartGitea(t)
	t.Logf("gitea ready in %v", time.Since(began).Round(time.Millisecond))
	port := strconv.Itoa(freePort(t))
	s := StartServer(t, WithArgs("--http-addr", "127.0.0.1:"+port, "--base-url", "http://127.0.0.1:"+port))
	admin := adminCred(s)
	g := NewGitEnv(t)

	// Upstream: a repository on Gitea with a first commit on main.
	up := gt.CreateRepo(t, GiteaAdmin, "app", true)
	work := g.Clone(up.AuthURL)
	c1 := strings.TrimSpace(g.Must(work, "rev-parse", "HEAD"))

	// Here: a mirror with a generated key, added upstream read-only.
	code, repo := s.JSON("POST", "/api/v1/repos", admin, map[string]any{"owner": "admin", "name": "app", "visibility": "restricted",
		"mirror": map[string]any{"url": up.SSHURL}})
	if code != http.StatusCreated {
		t.Fatalf("create mirror: %d %v", code, repo)
	}
	mo := repo["mirror"].(map[string]any)
	if !strings.HasPrefix(jsonStr(mo, "deploy_key"), "ssh-ed25519 ") || len(mo["host_key_fingerprints"].([]any)) == 0 {
		t.Fatalf("mirror object %v", mo)
	}
	keyID := gt.AddDeployKey(t, GiteaAdmin, "app", "gitserver", jsonStr(mo, "deploy_key"), true)
	code, wh := s.JSON("GET", "/api/v1/repos/admin/app/mirror/webhook", admin, nil)
	if code != http.StatusOK || wh["url"] != mo["webhook_url"] || !strings.HasPrefix(jsonStr(wh, "url"), "http://127.0.0.1:"+port+"/hooks/scm/") {
		t.Fatalf("webhook details: %d %v (mirror %v)", code, wh, mo)
	}
	secret := jsonStr(wh, "secret")
	gt.AddWebhook(t, GiteaAdmin, "app", jsonStr(wh, "url"), secret)
	// A second Gitea webhook with the same secret to a recorder: Gitea's
	// own signed deliveries, to replay and tamper with below.
	recorded := make(chan giteaDelivery, 32)
	recorder := httptestServer(t, func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		recorded <- giteaDelivery{Header: r.Header.Clone(), Body: b.Bytes(), At: time.Now()}
		w.WriteHeader(http.StatusAccepted)
	})
	gt.AddWebhook(t, GiteaAdmin, "app", recorder+"/recorder", secret)

	app := giteaMirror{s: s, admin: admin, name: "app"}
	// The sync at creation ran before the deploy key was added upstream.
	st := app.sync(t)
	if st["status"] != "ok" || st["last_error"] != nil {
		t.Fatalf("first sync: %v", st)
	}
	// The upstream's default branch (main) is followed: this server's
	// default is master, the repository's becomes main, with its build.
	if code, r := s.JSON("GET", "/api/v1/repos/admin/app", admin, nil); code != http.StatusOK || r["default_branch"] != "main" {
		t.Fatalf("default branch after the first sync: %d %v", code, r["default_branch"])
	}
	if got := app.refs(t, g)["refs/heads/main"]; got != c1 {
		t.Fatalf("main here %s, upstream %s", got, c1)
	}
	if b := app.waitBuilds(t, c1, 1); b[0]["pushed_by"] != "mirror" {
		t.Fatalf("first build: %v", b)
	}

	t.Run("push upstream builds once via the webhook", func(t *testing.T) {
		c2 := g.Commit(work, "a.txt", "two\n", "two")
		pushed := time.Now()
		gt.Push(t, g, work, GiteaAdmin, "app", "HEAD:main")
		app.waitHead(t, g, "main", c2, 30*time.Second)
		t.Logf("push to gitea -> mirrored here in %v", time.Since(pushed).Round(time.Millisecond))
		b := app.waitBuilds(t, c2, 1)
		if b[0]["pushed_by"] != GiteaAdmin {
			t.Fatalf("pushed_by %v, want the webhook's pusher %s", b[0]["pushed_by"], GiteaAdmin)
		}
		if st := app.status(t); st["last_delivery_at"] == nil || st["status"] != "ok" {
			t.Fatalf("after the webhook: %v", st)
		}
		time.Sleep(500 * time.Millisecond)
		app.waitBuilds(t, c2, 1)
	})

	t.Run("refused and replayed deliveries", func(t *testing.T) {
		var d giteaDelivery
		for len(recorded) > 0 {
			d = <-recorded
		}
		if d.Body == nil {
			t.Fatal("the recorder got no delivery from gitea")
		}
		deliver := func(mutate func(h http.Header, body []byte) []byte) int {
			h := d.Header.Clone()
			body := mutate(h, append([]byte(nil), d.Body...))
			req, _ := http.NewRequest("POST", jsonStr(wh, "url"), bytes.NewReader(body))
			for _, k := range []string{"Content-Type", "X-Gitea-Event", "X-Gitea-Delivery", "X-Gitea-Signature", "X-Gitea-Event-Type", "User-Agent"} {
				if v := h.Get(k); v != "" {
					req.Header.Set(k, v)
				}
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		before := app.status(t)
		if code := deliver(func(h http.Header, b []byte) []byte {
			return bytes.Replace(b, []byte(GiteaAdmin), []byte("mallory"), 1)
		}); code != http.StatusUnauthorized {
			t.Fatalf("tampered body: %d", code)
		}
		if code := deliver(func(h http.Header, b []byte) []byte { h.Set("X-Gitea-Signature", strings.Repeat("0", 64)); return b }); code != http.StatusUnauthorized {
			t.Fatalf("wrong signature: %d", code)
		}
		time.Sleep(300 * time.Millisecond)
		if after := app.status(t); after["last_sync_at"] != before["last_sync_at"] || after["last_delivery_at"] != before["last_delivery_at"] {
			t.Fatalf("refused deliveries changed the mirror: %v -> %v", before, after)
		}
		// Gitea's own delivery (to the recorder) arrives once: a sync.
		if code := deliver(func(h http.Header, b []byte) []byte { return b }); code != http.StatusAccepted {
			t.Fatalf("gitea's delivery: %d", code)
		}
		st := app.waitSync(t, before["last_sync_at"])
		if code := deliver(func(h http.Header, b []byte) []byte { return b }); code != http.StatusOK {
			t.Fatalf("replayed delivery: %d", code)
		}
		time.Sleep(500 * time.Millisecond)
		if again := app.status(t); again["last_sync_at"] != st["last_sync_at"] {
			t.Fatalf("a replayed delivery synced again: %v -> %v", st, again)
		}
	})

	t.Run("an unchanged upstream is not fetched", func(t *testing.T) {
		n := mirrorFetches(t, s)
		for range 3 {
			if st := app.sync(t); st["status"] != "ok" {
				t.Fatalf("sync: %v", st)
			}
		}
		if got := mirrorFetches(t, s); got != n {
			t.Fatalf("%d fetches for syncs of an unchanged upstream", got-n)
		}
		c := g.Commit(work, "b.txt", "b\n", "b")
		gt.Push(t, g, work, GiteaAdmin, "app", "HEAD:main")
		app.waitHead(t, g, "main", c, 30*time.Second)
		if got := mirrorFetches(t, s); got != n+1 {
			t.Fatalf("%d fetches for one push upstream, want 1", got-n)
		}
	})

	t.Run("force push upstream keeps the published version", func(t *testing.T) {
		worker := s.Token("admin", "builds")
		head := strings.TrimSpace(g.Must(work, "rev-parse", "HEAD"))
		app.waitBuilds(t, head, 1)
		// Run every queued build; publish the head's.
		var headBuild map[string]any
		for {
			code, b := claimBuild(t, s, worker, "w", 0, 300)
			if code == http.StatusNoContent {
				break
			}
			if code != http.StatusOK {
				t.Fatalf("claim: %d %v", code, b)
			}
			code, done := completeBuild(t, s, worker, jsonNum(t, b, "id"), jsonStr(b, "lease_token"), "succeeded")
			if code != http.StatusOK {
				t.Fatalf("complete: %d %v", code, done)
			}
			if jsonStr(b, "commit") == head {
				headBuild = done
			}
		}
		if headBuild == nil {
			t.Fatalf("no build of %s ran", head)
		}
		code, v := s.JSON("POST", "/api/v1/repos/admin/app/versions", admin, map[string]any{"build_id": jsonNum(t, headBuild, "id"), "bump": "minor"})
		if code != http.StatusCreated || jsonStr(v, "commit") != head {
			t.Fatalf("publish: %d %v", code, v)
		}
		// An unpublished commit on top, then the upstream rewrites main
		// without both: the control that shows gc prunes below.
		orphan := g.Commit(work, "c.txt", "unpublished\n", "unpublished")
		gt.Push(t, g, work, GiteaAdmin, "app", "HEAD:main")
		app.waitHead(t, g, "main", orphan, 30*time.Second)
		g.Must(work, "reset", "-q", "--hard", c1)
		rewritten := g.Commit(work, "d.txt", "rewritten\n", "rewritten")
		gt.Push(t, g, work, GiteaAdmin, "app", "+HEAD:main")
		app.waitHead(t, g, "main", rewritten, 30*time.Second)
		if upRefs, here := lsRefs(t, g, up.AuthURL), app.refs(t, g); fmt.Sprint(upRefs) != fmt.Sprint(here) {
			t.Fatalf("refs here %v, upstream %v", here, upRefs)
		}
		st := app.status(t)
		if lr := jsonStr(st, "last_rewrite"); !strings.Contains(lr, "main "+orphan+".."+rewritten) {
			t.Fatalf("last_rewrite %q, want main %s..%s", lr, orphan, rewritten)
		}
		// The published commit cannot be fetched by id by a client (pins
		// are hidden refs; only commits reachable from advertised refs
		// are served), so check the repository itself: after expiring
		// reflogs and gc --prune=now, the published commit is there and
		// the unpublished one is gone.
		dir := filepath.Join(s.Data, "repos", strconv.FormatInt(int64(jsonNum(t, repo, "id")), 10)+".git")
		for _, args := range [][]string{
			{"reflog", "expire", "--expire=now", "--expire-unreachable=now", "--all"},
			{"gc", "--quiet", "--prune=now"},
		} {
			if out, err := gitIn(t, dir, args...); err != nil {
				t.Fatalf("git %v: %v %s", args, err, out)
			}
		}
		if _, err := gitIn(t, dir, "cat-file", "-e", orphan+"^{commit}"); err == nil {
			t.Fatal("gc kept the unpublished rewritten-away commit: the check below proves nothing")
		}
		if out, err := gitIn(t, dir, "cat-file", "-e", head+"^{commit}"); err != nil {
			t.Fatalf("the published commit %s was lost to the upstream's force push: %s", head, out)
		}
		code, vs := s.Do("GET", "/api/v1/repos/admin/app/versions", admin, nil)
		if code != http.StatusOK || !strings.Contains(string(vs), head) {
			t.Fatalf("versions: %d %s", code, vs)
		}
	})

	t.Run("the upstream changes its default branch", func(t *testing.T) {
		g.Must(work, "checkout", "-q", "-b", "dev")
		d1 := g.Commit(work, "dev.txt", "dev\n", "dev")
		gt.Push(t, g, work, GiteaAdmin, "app", "HEAD:dev")
		app.waitHead(t, g, "dev", d1, 30*time.Second)
		if bs := buildsFor(t, s, admin, "admin", "app", d1); len(bs) != 0 {
			t.Fatalf("a push to another branch built: %v", bs)
		}
		gt.apiMust(t, http.StatusOK, "PATCH", "/repos/"+GiteaAdmin+"/app", map[string]any{"default_branch": "dev"}, nil)
		app.sync(t)
		if code, r := s.JSON("GET", "/api/v1/repos/admin/app", admin, nil); code != http.StatusOK || r["default_branch"] != "dev" {
			t.Fatalf("default branch: %d %v", code, r["default_branch"])
		}
		if out := gitMust(t, g, "", "ls-remote", "--symref", s.RepoURL(admin, "admin", "app"), "HEAD"); !strings.Contains(out, "ref: refs/heads/dev\tHEAD") {
			t.Fatalf("HEAD here: %s", out)
		}
		app.waitBuilds(t, d1, 1)
		d2 := g.Commit(work, "dev.txt", "dev 2\n", "dev 2")
		gt.Push(t, g, work, GiteaAdmin, "app", "HEAD:dev")
		app.waitHead(t, g, "dev", d2, 30*time.Second)
		if b := app.waitBuilds(t, d2, 1); b[0]["pushed_by"] != GiteaAdmin {
			t.Fatalf("build on the new default branch: %v", b)
		}
	})

	// A pasted key (made by ssh-keygen) and given host keys.
	pasted := gt.CreateRepo(t, GiteaAdmin, "pasted", true)
	key := newSSHKey(t, "pasted")
	priv, err := os.ReadFile(key.Priv)
	if err != nil {
		t.Fatal(err)
	}
	code, pr := s.JSON("POST", "/api/v1/repos", admin, map[string]any{"owner": "admin", "name": "pasted", "visibility": "restricted",
		"mirror": map[string]any{"url": pasted.SSHURL, "private_key": string(priv), "host_keys": gt.HostKeys(t), "interval": "1h"}})
	if code != http.StatusCreated {
		t.Fatalf("create mirror with a pasted key: %d %v", code, pr)
	}
	pm := pr["mirror"].(map[string]any)
	if f := strings.Fields(key.Text); !strings.HasPrefix(jsonStr(pm, "deploy_key"), f[0]+" "+f[1]) || pm["interval"] != "1h" {
		t.Fatalf("mirror of a pasted key: %v (key %s)", pm, key.Text)
	}
	if strings.Contains(string(mustJSON(pr)), "PRIVATE KEY") {
		t.Fatal("the answer carries the private key")
	}
	gt.AddDeployKey(t, GiteaAdmin, "pasted", "pasted", key.Text, true)
	pmir := giteaMirror{s: s, admin: admin, name: "pasted"}
	if st := pmir.sync(t); st["status"] != "ok" {
		t.Fatalf("sync with a pasted key: %v", st)
	}
	if upRefs, here := lsRefs(t, g, pasted.AuthURL), pmir.refs(t, g); len(here) == 0 || fmt.Sprint(upRefs) != fmt.Sprint(here) {
		t.Fatalf("pasted: refs here %v, upstream %v", here, upRefs)
	}

	// The deploy key deleted upstream: auth_failed, with a clear message.
	gt.DeleteDeployKey(t, GiteaAdmin, "app", keyID)
	st = app.sync(t)
	if le, _ := st["last_error"].(map[string]any); st["status"] != "error" || le == nil || le["code"] != "auth_failed" ||
		!strings.Contains(jsonStr(le, "message"), "deploy key") || strings.Contains(jsonStr(le, "message"), s.Data) {
		t.Fatalf("after the deploy key was deleted: %v", st)
	}

	// Gitea comes back with another host key: host_key_changed, nothing
	// fetched.
	gt.RestartWithNewHostKey(t)
	pw := g.Clone(pasted.AuthURL)
	newer := g.Commit(pw, "n.txt", "n\n", "after the host key changed")
	gt.Push(t, g, pw, GiteaAdmin, "pasted", "HEAD:main")
	before := pmir.refs(t, g)
	st = pmir.sync(t)
	if le, _ := st["last_error"].(map[string]any); st["status"] != "error" || le == nil || le["code"] != "host_key_changed" {
		t.Fatalf("after the host key changed: %v", st)
	}
	if after := pmir.refs(t, g); fmt.Sprint(after) != fmt.Sprint(before) || after["refs/heads/main"] == newer {
		t.Fatalf("fetched despite the changed host key: %v -> %v", before, after)
	}
	t.Logf("TestMirrorFromGitea took %v", time.Since(began).Round(time.Millisecond))
}
