package main

// End-to-end tests of the build's clone token (docs/api.md §7: a claim hands
// the worker a read-only credential for that one repository, valid while
// the lease lives) and of the README's build-worker loop, run verbatim with
// bash, curl, jq and the real git client.

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// gitGet sends GET path with the given Authorization header (none when
// auth is "") and returns the status and the WWW-Authenticate header.
func gitGet(t *testing.T, s *TestServer, path, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest("GET", s.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

func basic(user, secret string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+secret))
}

func uploadRefs(owner, name string) string {
	return "/git/" + owner + "/" + name + ".git/info/refs?service=git-upload-pack"
}

func receiveRefs(owner, name string) string {
	return "/git/" + owner + "/" + name + ".git/info/refs?service=git-receive-pack"
}

// bearerClone clones url with the clone token as a Bearer header, as the
// README's worker does.
func bearerClone(g *GitEnv, token, url, dir string) (string, error) {
	return g.Run("", "-c", "http.extraHeader=Authorization: Bearer "+token, "clone", "-q", url, dir)
}

func TestCloneTokenE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	worker := s.Token("admin", "builds") // an admin's builds token claims as before
	s.CreateRepo(admin, "admin", "app", "restricted")
	s.CreateRepo(admin, "admin", "other", "public")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "app"))
	c1 := g.Commit(work, "README", "one\n", "first")
	g.Must(work, "push", "-q", "origin", "master")

	code, b := claimBuild(t, s, worker, "w1", 0, 300)
	if code != http.StatusOK || jsonStr(b, "commit") != c1 {
		t.Fatalf("claim: %d %v", code, b)
	}
	id, lease, ct := jsonNum(t, b, "id"), jsonStr(b, "lease_token"), jsonStr(b, "clone_token")
	if !strings.HasPrefix(ct, "gsc_") {
		t.Fatalf("claim answer has no clone token: %v", b)
	}
	if !strings.HasSuffix(jsonStr(b, "clone_url"), "/git/admin/app.git") {
		t.Fatalf("clone_url %q", jsonStr(b, "clone_url"))
	}
	// The clone token is shown once: never in a build read later.
	if _, got := s.JSON("GET", fmt.Sprintf("/api/v1/builds/%d", id), admin, nil); got["clone_token"] != nil || got["lease_token"] != nil {
		t.Errorf("a build read shows its tokens: %v", got)
	}
	// Something to check the other repository against: it exists and has
	// history, and is even public.
	ow := g.Init(s.RepoURL(admin, "admin", "other"))
	g.Commit(ow, "x", "x\n", "x")
	g.Must(ow, "push", "-q", "origin", "master")
	// That push queued a build of its own, whose clone token reads admin/other
	// and not admin/app.
	code, ob := claimBuild(t, s, worker, "w1", 0, 300)
	if code != http.StatusOK || jsonStr(ob, "repo") != "admin/other" || jsonStr(ob, "clone_token") == ct {
		t.Fatalf("claim of admin/other's build: %d %v", code, ob)
	}
	if st, _ := gitGet(t, s, uploadRefs("admin", "other"), "Bearer "+jsonStr(ob, "clone_token")); st != http.StatusOK {
		t.Errorf("admin/other's clone token on admin/other: %d, want 200", st)
	}
	if st, _ := gitGet(t, s, uploadRefs("admin", "app"), "Bearer "+jsonStr(ob, "clone_token")); st != http.StatusNotFound {
		t.Errorf("admin/other's clone token on admin/app: %d, want 404", st)
	}
	if code, done := completeBuild(t, s, worker, jsonNum(t, ob, "id"), jsonStr(ob, "lease_token"), "succeeded"); code != http.StatusOK {
		t.Fatalf("complete admin/other's build: %d %v", code, done)
	}

	url := s.RepoURL(Cred{}, "admin", "app")
	t.Run("clone with Bearer", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "src")
		if out, err := bearerClone(g, ct, url, dir); err != nil {
			t.Fatalf("clone with the clone token as Bearer: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(g.Must(dir, "rev-parse", "HEAD")); got != c1 {
			t.Fatalf("cloned %s, want %s", got, c1)
		}
		// Fetching (protocol v2 is git's default) works too.
		g.Must(dir, "-c", "http.extraHeader=Authorization: Bearer "+ct, "fetch", "-q", "origin")
		// A push with it is refused.
		g.Commit(dir, "README", "evil\n", "evil")
		out, err := g.Run(dir, "-c", "http.extraHeader=Authorization: Bearer "+ct, "push", "origin", "HEAD:master")
		if err == nil || !strings.Contains(out, "403") {
			t.Errorf("push with a clone token: %v\n%s; want a 403 refusal", err, out)
		}
	})
	t.Run("clone with Basic and any user name", func(t *testing.T) {
		for _, user := range []string{"x-access-token", "build", "alice", "admin"} {
			dir := filepath.Join(t.TempDir(), "src")
			if out, err := g.Run("", "clone", "-q", s.RepoURL(Cred{user, ct}, "admin", "app"), dir); err != nil {
				t.Errorf("clone as %s:<clone token>: %v\n%s", user, err, out)
			}
		}
		// Pushing with it as Basic is refused the same way.
		out, err := g.Run(work, "push", s.RepoURL(Cred{"x", ct}, "admin", "app"), "master:refs/heads/other")
		if err == nil || !strings.Contains(out, "403") {
			t.Errorf("push with a clone token (Basic): %v\n%s", err, out)
		}
	})
	t.Run("git HTTP answers", func(t *testing.T) {
		for _, auth := range []string{"Bearer " + ct, basic("anyone", ct)} {
			if st, _ := gitGet(t, s, uploadRefs("admin", "app"), auth); st != http.StatusOK {
				t.Errorf("%.12s: upload-pack refs of its repo: %d, want 200", auth, st)
			}
			if st, _ := gitGet(t, s, receiveRefs("admin", "app"), auth); st != http.StatusForbidden {
				t.Errorf("%.12s: receive-pack refs of its repo: %d, want 403", auth, st)
			}
			hdr := map[string]string{"Authorization": auth, "Content-Type": "application/x-git-receive-pack-request"}
			if r := rawHTTP(t, s.HTTPAddr, "POST", "/git/admin/app.git/git-receive-pack", hdr, []byte("0000")); r.Status != http.StatusForbidden {
				t.Errorf("%.12s: receive-pack POST to its repo: %d, want 403", auth, r.Status)
			}
			for _, repo := range [][2]string{{"admin", "other"}, {"admin", "missing"}} {
				if st, _ := gitGet(t, s, uploadRefs(repo[0], repo[1]), auth); st != http.StatusNotFound {
					t.Errorf("%.12s: upload-pack refs of %s/%s: %d, want 404", auth, repo[0], repo[1], st)
				}
			}
		}
		dir := filepath.Join(t.TempDir(), "o")
		if out, err := bearerClone(g, ct, s.RepoURL(Cred{}, "admin", "other"), dir); err == nil || !strings.Contains(out, "not found") {
			t.Errorf("clone of another repository with a clone token: %v\n%s", err, out)
		}
	})
	t.Run("API refuses it", func(t *testing.T) {
		for _, c := range []Cred{{Secret: ct}, {User: "admin", Secret: ct}} {
			for _, req := range []struct {
				method, path string
				body         any
			}{
				{"GET", "/api/v1/user", nil},
				{"GET", "/api/v1/repos/admin/app", nil},
				{"GET", "/api/v1/repos/admin/app/builds", nil},
				{"GET", "/api/v1/repos/admin/app/versions", nil},
				{"GET", fmt.Sprintf("/api/v1/builds/%d", id), nil},
				{"POST", "/api/v1/builds/claim", map[string]any{"worker": "w", "wait_seconds": 0}},
				{"POST", fmt.Sprintf("/api/v1/builds/%d/heartbeat", id), map[string]any{"lease_token": lease}},
				{"POST", fmt.Sprintf("/api/v1/builds/%d/complete", id), map[string]any{"lease_token": lease, "status": "succeeded"}},
				{"POST", "/api/v1/user/tokens", map[string]any{"name": "x"}},
				{"POST", "/api/v1/repos", map[string]any{"owner": "admin", "name": "new", "visibility": "public"}},
				{"DELETE", "/api/v1/repos/admin/app", nil},
				{"POST", "/api/v1/repos/admin/app/versions", map[string]any{"build_id": id, "bump": "major"}},
			} {
				st, body := s.Do(req.method, req.path, c, req.body)
				if st != http.StatusForbidden || !strings.Contains(string(body), `"forbidden"`) {
					t.Errorf("%s %s with a clone token: %d %s, want 403 forbidden", req.method, req.path, st, body)
				}
			}
		}
		// None of that changed the build.
		if _, got := s.JSON("GET", fmt.Sprintf("/api/v1/builds/%d", id), admin, nil); jsonStr(got, "status") != "running" {
			t.Errorf("build after the refused API calls: %v", got)
		}
	})

	// Completion ends it: a bad credential from then on.
	if code, done := completeBuild(t, s, worker, id, lease, "succeeded"); code != http.StatusOK {
		t.Fatalf("complete: %d %v", code, done)
	}
	for _, auth := range []string{"Bearer " + ct, basic("x", ct)} {
		if st, chal := gitGet(t, s, uploadRefs("admin", "app"), auth); st != http.StatusUnauthorized || chal == "" {
			t.Errorf("%.12s after complete: %d (WWW-Authenticate %q), want 401 with a challenge", auth, st, chal)
		}
	}
	if out, err := bearerClone(g, ct, url, filepath.Join(t.TempDir(), "late")); err == nil {
		t.Errorf("clone after complete succeeded:\n%s", out)
	}
	if st, _ := s.Do("GET", "/api/v1/user", Cred{Secret: ct}, nil); st != http.StatusUnauthorized {
		t.Errorf("API with a dead clone token: %d, want 401", st)
	}

	// Lease expiry ends it too (the shortest lease the API takes is 1 s),
	// and the next attempt's claim gets a token of its own.
	c2 := g.Commit(work, "README", "two\n", "second")
	g.Must(work, "push", "-q", "origin", "master")
	code, b = claimBuild(t, s, worker, "w2", 0, 1)
	ct2 := jsonStr(b, "clone_token")
	if code != http.StatusOK || jsonStr(b, "commit") != c2 || ct2 == "" || ct2 == ct {
		t.Fatalf("claim with a 1 s lease: %d %v", code, b)
	}
	if st, _ := gitGet(t, s, uploadRefs("admin", "app"), "Bearer "+ct2); st != http.StatusOK {
		t.Errorf("fresh clone token with a 1 s lease: %d, want 200", st)
	}
	time.Sleep(1500 * time.Millisecond)
	if st, _ := gitGet(t, s, uploadRefs("admin", "app"), "Bearer "+ct2); st != http.StatusUnauthorized {
		t.Errorf("clone token after its lease expired: %d, want 401", st)
	}
	code, b = claimBuild(t, s, worker, "w3", 0, 300)
	ct3 := jsonStr(b, "clone_token")
	if code != http.StatusOK || jsonStr(b, "commit") != c2 || jsonNum(t, b, "attempt") != 2 || ct3 == "" || ct3 == ct2 {
		t.Fatalf("re-claim after expiry: %d %v", code, b)
	}
	if st, _ := gitGet(t, s, uploadRefs("admin", "app"), "Bearer "+ct2); st != http.StatusUnauthorized {
		t.Errorf("first attempt's clone token after the re-claim: %d, want 401", st)
	}
	// A heartbeat keeps the new one alive; it clones.
	if st, m := s.JSON("POST", fmt.Sprintf("/api/v1/builds/%d/heartbeat", jsonNum(t, b, "id")), Cred{Secret: worker},
		map[string]any{"lease_token": jsonStr(b, "lease_token")}); st != http.StatusOK {
		t.Fatalf("heartbeat: %d %v", st, m)
	}
	dir := filepath.Join(t.TempDir(), "attempt2")
	if out, err := bearerClone(g, ct3, url, dir); err != nil {
		t.Fatalf("clone with the second attempt's token: %v\n%s", err, out)
	}
	if got := strings.TrimSpace(g.Must(dir, "rev-parse", "HEAD")); got != c2 {
		t.Errorf("second attempt cloned %s, want %s", got, c2)
	}
}

// readmeWorkerLoop returns the build-worker loop from README.md: the code
// block (fenced, or indented by four spaces) of the section "Builds and the
// build system" that claims builds.
func readmeWorkerLoop(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	start := strings.Index(text, "\n## Builds and the build system\n")
	if start < 0 {
		t.Fatal(`README.md has no section "## Builds and the build system"`)
	}
	section := text[start+1:]
	if end := strings.Index(section, "\n## "); end >= 0 {
		section = section[:end]
	}
	var blocks []string
	var cur []string
	fenced := false
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, strings.TrimRight(strings.Join(cur, "\n"), "\n")+"\n")
		}
		cur = nil
	}
	for _, line := range strings.Split(section, "\n") {
		switch {
		case fenced && strings.TrimSpace(line) == "```":
			flush()
			fenced = false
		case fenced:
			cur = append(cur, line)
		case strings.HasPrefix(line, "```"):
			flush()
			fenced = true
		case strings.HasPrefix(line, "    "):
			cur = append(cur, line[4:])
		case strings.TrimSpace(line) == "" && len(cur) > 0:
			cur = append(cur, "")
		default:
			flush()
		}
	}
	flush()
	for _, b := range blocks {
		if strings.Contains(b, "/builds/claim") {
			return b
		}
	}
	t.Fatalf("no code block claiming builds in README's build section:\n%s", section)
	return ""
}

// TestReadmeBuildWorkerLoopE2E runs the README's worker loop as written
// (only its API address points at the test server) with bash, curl, jq and
// git: a pushed build is cloned, built and reported succeeded; a build whose
// clone fails is reported failed, and the loop goes on.
func TestReadmeBuildWorkerLoopE2E(t *testing.T) {
	t.Parallel()
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			msg := fmt.Sprintf("SKIPPING TestReadmeBuildWorkerLoopE2E: %s is not installed (apt-get install -y %s; .ci/run installs it): the README's build-worker loop is NOT tested", tool, tool)
			fmt.Fprintln(os.Stderr, "!!!", msg)
			t.Skip(msg)
		}
	}
	loop := readmeWorkerLoop(t)
	for _, want := range []string{"TOKEN=$(./bin/gitserver admin token create admin --scope builds", "API=http://localhost:8080/api/v1", "clone_token"} {
		if !strings.Contains(loop, want) {
			t.Fatalf("README's worker loop lacks %q:\n%s", want, loop)
		}
	}
	s := StartServer(t) // default --base-url: clone URLs say http://localhost:8080
	// The only change to the loop: its API address is the test server's.
	script := "set -euo pipefail\n" + strings.ReplaceAll(loop, "http://localhost:8080", s.URL)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "ok", "restricted")
	goneRepo := s.CreateRepo(admin, "admin", "gone", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "ok"))
	h1 := g.Commit(work, "README", "one\n", "first")
	g.Must(work, "push", "-q", "origin", "master")
	gw := g.Init(s.RepoURL(admin, "admin", "gone"))
	gone := g.Commit(gw, "README", "gone\n", "first")
	g.Must(gw, "push", "-q", "origin", "master")
	// The second repository's directory disappears: its clone must fail.
	goneDir := filepath.Join(s.Data, "repos", strconv.FormatInt(int64(goneRepo["id"].(float64)), 10)+".git")
	if err := os.Rename(goneDir, goneDir+".away"); err != nil {
		t.Fatalf("move %s away: %v", goneDir, err)
	}

	// The loop runs where ./bin/gitserver is, as in a checkout after make.
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(binPath, filepath.Join(dir, "bin", "gitserver")); err != nil {
		t.Fatal(err)
	}
	built := filepath.Join(t.TempDir(), "built")
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, g.Env...),
		"GITSERVER_DATA="+s.Data,
		// The build: record what was checked out, prove it is the pushed tree.
		`BUILD_CMD=test -f README && git rev-parse HEAD >>"$BUILT"`,
		"BUILT="+built,
		// Clone URLs carry the default --base-url; reach the test server.
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=url."+s.URL+"/.insteadOf",
		"GIT_CONFIG_VALUE_0=http://localhost:8080/",
	)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})

	// waitFor polls until owner/name's build of commit is finished.
	waitFor := func(name, commit string) map[string]any {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for {
			select {
			case err := <-exited:
				t.Fatalf("the README loop exited: %v\n%s", err, out.String())
			default:
			}
			for _, b := range buildsFor(t, s, admin, "admin", name, commit) {
				if st := jsonStr(b, "status"); st != "queued" && st != "running" {
					return b
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("build of admin/%s %s not finished after 90 s; loop output:\n%s\nserver:\n%s", name, commit, out.String(), s.Output())
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	b := waitFor("ok", h1)
	if jsonStr(b, "status") != "succeeded" || jsonStr(b, "worker") != "w1" {
		t.Errorf("README loop's build of admin/ok: %v, want succeeded by w1\nloop output:\n%s", b, out.String())
	}
	b = waitFor("gone", gone)
	if jsonStr(b, "status") != "failed" || jsonStr(b, "message") != "clone failed" {
		t.Errorf("README loop's build of a repository it cannot clone: %v, want failed with \"clone failed\"\nloop output:\n%s", b, out.String())
	}
	// The loop goes on: the next push is claimed from its long poll.
	h2 := g.Commit(work, "README", "two\n", "second")
	g.Must(work, "push", "-q", "origin", "master")
	if b := waitFor("ok", h2); jsonStr(b, "status") != "succeeded" {
		t.Errorf("README loop's second build: %v\nloop output:\n%s", b, out.String())
	}
	got, _ := os.ReadFile(built)
	if want := h1 + "\n" + h2 + "\n"; string(got) != want {
		t.Errorf("the loop built %q, want exactly the pushed commits %q\nloop output:\n%s", got, want, out.String())
	}
}
