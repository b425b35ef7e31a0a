package main

// Abuse resistance (issue 10): edge values, content types, stalled bodies,
// file modes, secrets on the command line.

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClaimWaitEdgeValues: a wait_seconds whose nanoseconds overflow waits
// the cap rather than answering at once; a negative one is a 400.
func TestClaimWaitEdgeValues(t *testing.T) {
	s := StartServer(t)
	s.CreateUser("ops", true)
	tok := s.Token("ops", "builds")

	code, m := s.JSON("POST", "/api/v1/builds/claim", Cred{Secret: tok}, map[string]any{"worker": "w", "wait_seconds": -1})
	if code != http.StatusBadRequest || !strings.Contains(errMessage(m), "wait_seconds") {
		t.Errorf("claim with wait_seconds -1: %d %v, want 400 naming wait_seconds", code, m)
	}

	// 9223372037 s × time.Second overflows int64: before the fix the claim
	// answered 204 at once. It must wait (the cap, 60 s); nothing is
	// queued, so it is still waiting when the client gives up.
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/builds/claim",
		strings.NewReader(`{"worker":"w","wait_seconds":9223372037}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("claim with wait_seconds 9223372037 answered %d after %v; want it to wait", resp.StatusCode, time.Since(start))
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("claim with wait_seconds 9223372037: %v, want the client's timeout", err)
	}
}

// TestDefaultBranchRefRules: a default branch git would refuse (here a
// component ending in .lock) is a 400 naming the problem, not a 500.
func TestDefaultBranchRefRules(t *testing.T) {
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	for _, b := range []string{"a.lock/b", "x/.y", "a..b", "-x"} {
		code, m := s.JSON("POST", "/api/v1/repos", admin,
			map[string]any{"owner": "admin", "name": "r", "visibility": "restricted", "default_branch": b})
		if code != http.StatusBadRequest || !strings.Contains(errMessage(m), "default_branch") {
			t.Errorf("create repo with default_branch %q: %d %v, want 400 naming default_branch", b, code, m)
		}
	}
	code, m := s.JSON("POST", "/api/v1/repos", admin,
		map[string]any{"owner": "admin", "name": "r", "visibility": "restricted", "default_branch": "a.lock/b"})
	if msg := errMessage(m); code != http.StatusBadRequest || !strings.Contains(msg, `"a.lock" ends in ".lock"`) {
		t.Errorf("default_branch a.lock/b: %d %q, want a message naming the .lock component", code, msg)
	}
	if code, m := s.JSON("POST", "/api/v1/repos", admin,
		map[string]any{"owner": "admin", "name": "r", "visibility": "restricted", "default_branch": "release/a.b"}); code != http.StatusCreated {
		t.Errorf("create repo with default_branch release/a.b: %d %v", code, m)
	}
}

// errMessage is the message of an API error object.
func errMessage(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}

// TestAPIRefusesNonJSONContentType: a cross-site form (text/plain, form,
// multipart, or no type) with the browser's cached Basic credentials must
// not act: 415 and nothing changes. application/json (with charset=utf-8)
// is served.
func TestAPIRefusesNonJSONContentType(t *testing.T) {
	s := StartServer(t)
	pw := s.CreateUser("victim", false)
	c := Cred{"victim", pw}
	body, _ := json.Marshal(map[string]any{"title": "attacker", "key": newPubKey(t)})
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "", "application/json; charset=latin1", "application/jsonx"} {
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/user/keys", bytes.NewReader(body))
		req.SetBasicAuth(c.User, c.Secret)
		req.Header.Set("Origin", "https://evil.example")
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		e, _ := m["error"].(map[string]any)
		if resp.StatusCode != http.StatusUnsupportedMediaType || e["code"] != "unsupported_media_type" {
			t.Errorf("POST /user/keys with Content-Type %q: %d %v, want 415 unsupported_media_type", ct, resp.StatusCode, m)
		}
	}
	if code, b := s.Do("GET", "/api/v1/user/keys", c, nil); code != 200 || strings.Contains(string(b), "attacker") {
		t.Fatalf("keys after the refused requests: %d %s, want none added", code, b)
	}
	// What clients send is served.
	for i, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"} {
		body, _ := json.Marshal(map[string]any{"title": "k" + strconv.Itoa(i), "key": newPubKey(t)})
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/user/keys", bytes.NewReader(body))
		req.SetBasicAuth(c.User, c.Secret)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("POST /user/keys with Content-Type %q: %d, want 201", ct, resp.StatusCode)
		}
	}
}

// stalledRequest sends a POST with a chunked body of which only part
// arrives, then stalls, and returns how long the server took to close the
// connection and what it answered. during runs while the body stalls.
func stalledRequest(t *testing.T, s *TestServer, c Cred, path, contentType string, part []byte, during func()) (time.Duration, string) {
	t.Helper()
	conn, err := net.Dial("tcp", s.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n", path, s.HTTPAddr, contentType)
	if c.User != "" {
		fmt.Fprintf(&req, "Authorization: Basic %s\r\n", base64.StdEncoding.EncodeToString([]byte(c.User+":"+c.Secret)))
	}
	fmt.Fprintf(&req, "\r\n%x\r\n%s\r\n", len(part), part) // no last chunk: the body stalls here
	start := time.Now()
	if _, err := conn.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	if during != nil {
		during()
	}
	conn.SetReadDeadline(start.Add(15 * time.Second))
	answer, err := io.ReadAll(conn)
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("POST %s with a stalled body: connection still open after %v (%v); answer so far %q", path, elapsed.Round(time.Millisecond), err, answer)
	}
	return elapsed, string(answer)
}

// TestStalledBodyTimesOut: a push or fetch whose request body stops
// arriving ends after --http-body-timeout: the connection is closed, git
// has exited, no ref changed, and the server goes on serving.
func TestStalledBodyTimesOut(t *testing.T) {
	const timeout = 2 * time.Second
	s := StartServer(t, WithArgs("--http-body-timeout", timeout.String()))
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "r", "restricted")
	url := s.RepoURL(admin, "admin", "r")
	g := NewGitEnv(t)
	work := g.Init(url)
	c1 := g.Commit(work, "a", "1", "one")
	g.Must(work, "push", "-q", "origin", "master")
	c2 := g.Commit(work, "b", strings.Repeat("payload\n", 2000), "two")
	packCmd := exec.Command("git", "-C", work, "pack-objects", "--stdout", "--revs")
	packCmd.Stdin = strings.NewReader(c2 + "\n^" + c1 + "\n")
	packCmd.Env = os.Environ()
	packBytes, err := packCmd.Output()
	if err != nil || len(packBytes) < 40 {
		t.Fatalf("pack-objects: %v (%d bytes)", err, len(packBytes))
	}
	before := lsRemoteRefs(t, g, url)

	gitRunning := func(service string) func() {
		return func() {
			time.Sleep(timeout / 2)
			if busy := strings.Join(processesIn(t, s.Data), "\n"); !strings.Contains(busy, service) {
				t.Errorf("while the body stalls, no git %s runs in the data directory:\n%s", service, busy)
			}
		}
	}
	check := func(what string, elapsed time.Duration, answer string) {
		t.Helper()
		if elapsed > timeout+5*time.Second {
			t.Errorf("%s: connection closed after %v, want about %v", what, elapsed.Round(time.Millisecond), timeout)
		}
		if elapsed < timeout-200*time.Millisecond {
			t.Errorf("%s: connection closed after %v, before the body timeout %v: %q", what, elapsed.Round(time.Millisecond), timeout, answer)
		}
		deadline := time.Now().Add(5 * time.Second)
		for busy := processesIn(t, s.Data); len(busy) > 0; busy = processesIn(t, s.Data) {
			if time.Now().After(deadline) {
				t.Fatalf("%s: git still running 5s after the connection closed:\n%s", what, strings.Join(busy, "\n"))
			}
			time.Sleep(20 * time.Millisecond)
		}
		if got := lsRemoteRefs(t, g, url); !maps.Equal(got, before) {
			t.Fatalf("%s: refs changed: %v, want %v", what, got, before)
		}
	}

	// A push: its commands and half its pack, then nothing.
	var body bytes.Buffer
	cmd := c1 + " " + c2 + " refs/heads/master\x00report-status side-band-64k\n"
	fmt.Fprintf(&body, "%04x%s0000", len(cmd)+4, cmd)
	body.Write(packBytes[:len(packBytes)/2])
	elapsed, answer := stalledRequest(t, s, admin, "/git/admin/r.git/git-receive-pack",
		"application/x-git-receive-pack-request", body.Bytes(), gitRunning("receive-pack"))
	check("stalled push", elapsed, answer)

	// A fetch: half a want line. The response cache reads a fetch's request
	// (up to its size limit) before any git starts, so nothing runs while it
	// stalls; without the cache, upload-pack reads it, and is killed.
	want := "want " + c1 + "\n"
	halfWant := []byte(fmt.Sprintf("%04x%s", len(want)+4, want[:20]))
	elapsed, answer = stalledRequest(t, s, admin, "/git/admin/r.git/git-upload-pack",
		"application/x-git-upload-pack-request", halfWant, func() {
			time.Sleep(timeout / 2)
			if busy := processesIn(t, s.Data); len(busy) > 0 {
				t.Errorf("while a fetch's request stalls, the response cache runs no git yet:\n%s", strings.Join(busy, "\n"))
			}
		})
	check("stalled fetch", elapsed, answer)
	uncached := StartServer(t, WithArgs("--http-body-timeout", timeout.String(), "--response-cache=false"))
	uncached.CreateRepo(Cred{"admin", uncached.AdminPassword}, "admin", "r", "restricted")
	func() {
		s := uncached // what gitRunning and check look at
		elapsed, answer := stalledRequest(t, s, Cred{"admin", s.AdminPassword}, "/git/admin/r.git/git-upload-pack",
			"application/x-git-upload-pack-request", halfWant, func() {
				time.Sleep(timeout / 2)
				if busy := strings.Join(processesIn(t, s.Data), "\n"); !strings.Contains(busy, "upload-pack") {
					t.Errorf("while the body stalls (no response cache), no git upload-pack runs in the data directory:\n%s", busy)
				}
			})
		if elapsed > timeout+5*time.Second || elapsed < timeout-200*time.Millisecond {
			t.Errorf("stalled fetch without the response cache: connection closed after %v, want about %v: %q", elapsed.Round(time.Millisecond), timeout, answer)
		}
		deadline := time.Now().Add(5 * time.Second)
		for busy := processesIn(t, s.Data); len(busy) > 0; busy = processesIn(t, s.Data) {
			if time.Now().After(deadline) {
				t.Fatalf("stalled fetch without the response cache: git still running 5s after the connection closed:\n%s", strings.Join(busy, "\n"))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()

	// Without credentials: answered 401, and the unread body does not hold
	// the connection either.
	elapsed, answer = stalledRequest(t, s, Cred{}, "/git/admin/r.git/git-receive-pack",
		"application/x-git-receive-pack-request", body.Bytes(), nil)
	if !strings.HasPrefix(answer, "HTTP/1.1 401") {
		t.Errorf("anonymous stalled push answered %q, want 401", answer)
	}
	check("anonymous stalled push", elapsed, answer)

	// The server still serves: the same push, sent in full, lands.
	g.Must(work, "push", "-q", "origin", "master")
	if got := lsRemoteRefs(t, g, url)["refs/heads/master"]; got != c2 {
		t.Fatalf("master after a full push = %s, want %s", got, c2)
	}
	if strings.Contains(s.Output(), "panic") {
		t.Errorf("server output has a panic:\n%s", s.Output())
	}
}

// TestWebhookSecretFlagWarns: a secret on the command line still works but
// the log says it is visible in ps (without repeating it); from a file,
// there is no warning.
func TestWebhookSecretFlagWarns(t *testing.T) {
	const secret = "flag-secret-4711"
	s := StartServer(t, WithArgs("--build-webhook", "http://127.0.0.1:9/hook", "--build-webhook-secret", secret))
	out := s.Output()
	if !strings.Contains(out, "--build-webhook-secret on the command line is visible") {
		t.Errorf("no warning about the secret on the command line:\n%s", out)
	}
	if strings.Contains(out, secret) {
		t.Errorf("the log repeats the secret:\n%s", out)
	}
	s.Kill()

	file := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s = StartServer(t, WithArgs("--build-webhook", "http://127.0.0.1:9/hook", "--build-webhook-secret-file", file))
	if out := s.Output(); strings.Contains(out, "--build-webhook-secret on the command line") || strings.Contains(out, secret) {
		t.Errorf("secret from a file: warning or secret in the log:\n%s", out)
	}
}

// TestDataFileModes: with a data directory created beforehand 0755 and the
// server and the admin CLI started under umask 022, the database (with its
// -wal and -shm) and every secret are 0600, and nothing in the data
// directory is readable by other users.
func TestDataFileModes(t *testing.T) {
	data := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(data, 0o755)
	wrapper := filepath.Join(t.TempDir(), "gitserver-umask022")
	script := "#!/bin/sh\numask 022\nexec " + binPath + " \"$@\"\n"
	if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	s := StartServer(t, WithData(data), func(s *TestServer) { s.bin = wrapper })
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "r", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "r"))
	g.Commit(work, "a", "1", "one")
	g.Must(work, "push", "-q", "origin", "master")

	mode := func(name string) os.FileMode {
		t.Helper()
		fi, err := os.Stat(filepath.Join(data, name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return fi.Mode().Perm()
	}
	checkSecrets := func(when string) {
		t.Helper()
		names := []string{"gitserver.db", "gitserver.db-wal", "gitserver.db-shm", "initial-admin-password"}
		keys, _ := filepath.Glob(filepath.Join(data, "ssh_host_*_key"))
		if len(keys) == 0 {
			t.Fatalf("%s: no SSH host key in %s", when, data)
		}
		for _, k := range keys {
			names = append(names, filepath.Base(k))
		}
		for _, n := range names {
			if m := mode(n); m != 0o600 {
				t.Errorf("%s: %s has mode %o, want 600", when, n, m)
			}
		}
	}
	checkSecrets("server running")
	// Nothing under the data directory (0755 itself) can be read by other
	// users: what they can reach (through directories they may enter) is
	// not readable or writable by them.
	filepath.WalkDir(data, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == data {
			return nil
		}
		fi, err := d.Info()
		if err != nil || fi.Mode()&os.ModeSymlink != 0 {
			return nil
		}
		if perm := fi.Mode().Perm(); perm&0o006 != 0 {
			t.Errorf("%s has mode %o: open to other users", strings.TrimPrefix(p, data+"/"), perm)
		}
		if d.IsDir() && fi.Mode().Perm()&0o001 == 0 {
			return filepath.SkipDir // others cannot enter it
		}
		return nil
	})

	// An admin command under umask 022 keeps them so, and makes a database
	// left 0644 (by an earlier version) 0600 again.
	for _, n := range []string{"gitserver.db", "gitserver.db-wal", "gitserver.db-shm"} {
		os.Chmod(filepath.Join(data, n), 0o644)
	}
	cmd := exec.Command(wrapper, "admin", "user", "create", "carol", "--password-stdin", "--data", data)
	cmd.Stdin = strings.NewReader("carol-secret-1\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("admin user create: %v\n%s", err, out)
	}
	checkSecrets("after an admin command")
}
