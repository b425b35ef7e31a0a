package main

// End-to-end tests of smart HTTP with the real git client: protocol
// versions, large and gzip bodies, authentication, bad paths and bodies,
// throttling and graceful shutdown.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// rawResp is a raw HTTP answer.
type rawResp struct {
	Status int
	Header http.Header
	Body   string
}

// rawHTTP sends one request exactly as written (no client-side path
// cleaning or escaping) and reads the answer.
func rawHTTP(t *testing.T, addr, method, target string, hdr map[string]string, body []byte) rawResp {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n", method, target, addr)
	for k, v := range hdr {
		fmt.Fprintf(&b, "%s: %s\r\n", k, v)
	}
	if body != nil {
		fmt.Fprintf(&b, "Content-Length: %d\r\n", len(body))
	}
	b.WriteString("\r\n")
	b.Write(body)
	if _, err := conn.Write(b.Bytes()); err != nil {
		t.Fatalf("write request: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("%s %s: read response: %v", method, target, err)
	}
	defer resp.Body.Close()
	rb, _ := io.ReadAll(resp.Body)
	return rawResp{resp.StatusCode, resp.Header, string(rb)}
}

func basicAuth(user, secret string) map[string]string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(user, secret)
	return map[string]string{"Authorization": r.Header.Get("Authorization")}
}

// waitHealthy fails the test unless /healthz answers 200.
func waitHealthy(t *testing.T, s *TestServer) {
	t.Helper()
	if r := rawHTTP(t, s.HTTPAddr, "GET", "/healthz", nil, nil); r.Status != 200 {
		t.Fatalf("/healthz = %d after bad input\n%s", r.Status, s.Output())
	}
}

func pktLine(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }

func TestHTTPProtocolVersions(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	for _, v := range []string{"0", "1", "2"} {
		t.Run("v"+v, func(t *testing.T) {
			name := "proto" + v
			s.CreateRepo(admin, "admin", name, "restricted")
			url := s.RepoURL(admin, "admin", name)
			g := NewGitEnv(t)
			pv := "protocol.version=" + v
			trace := []string{"GIT_TRACE_PACKET=1"}

			// Clone of the empty repository.
			empty := filepath.Join(t.TempDir(), "empty")
			out, err := g.RunEnv("", trace, "-c", pv, "clone", url, empty)
			if err != nil {
				t.Fatalf("clone empty repo: %v\n%s", err, out)
			}
			if !strings.Contains(out, "empty repository") {
				t.Errorf("no empty-repository warning:\n%s", out)
			}
			checkProtocol(t, v, out)

			// Push from the clone of the empty repository.
			c1 := g.Commit(empty, "a.txt", "one\n", "one")
			c2 := g.Commit(empty, "b.txt", "two\n", "two")
			out, err = g.RunEnv(empty, trace, "-c", pv, "push", "origin", "master")
			if err != nil {
				t.Fatalf("push: %v\n%s", err, out)
			}
			checkProtocol(t, v, out)

			// Clone again and compare heads.
			clone := filepath.Join(t.TempDir(), "clone")
			out, err = g.RunEnv("", trace, "-c", pv, "clone", url, clone)
			if err != nil {
				t.Fatalf("clone: %v\n%s", err, out)
			}
			checkProtocol(t, v, out)
			if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != c2 {
				t.Fatalf("cloned HEAD %s, pushed %s", got, c2)
			}
			if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD~1")); got != c1 {
				t.Fatalf("cloned HEAD~1 %s, want %s", got, c1)
			}

			// ls-remote, and an incremental fetch.
			out, err = g.RunEnv("", trace, "-c", pv, "ls-remote", url)
			if err != nil {
				t.Fatalf("ls-remote: %v\n%s", err, out)
			}
			checkProtocol(t, v, out)
			if !strings.Contains(out, c2+"\trefs/heads/master") || !strings.Contains(out, c2+"\tHEAD") {
				t.Fatalf("ls-remote lacks master/HEAD at %s:\n%s", c2, out)
			}
			if v == "2" && !strings.Contains(out, "command=ls-refs") {
				t.Errorf("v2 ls-remote did not use ls-refs:\n%s", out)
			}
			c3 := g.Commit(empty, "c.txt", "three\n", "three")
			g.Must(empty, "-c", pv, "push", "-q", "origin", "master")
			out, err = g.RunEnv(clone, trace, "-c", pv, "pull", "-q", "--ff-only")
			if err != nil {
				t.Fatalf("pull: %v\n%s", err, out)
			}
			if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != c3 {
				t.Fatalf("pulled HEAD %s, want %s", got, c3)
			}
		})
	}
}

// checkProtocol checks a GIT_TRACE_PACKET log for the protocol spoken.
func checkProtocol(t *testing.T, v, trace string) {
	t.Helper()
	// Pushes always use v0/v1 (git has no v2 push); fetches follow v.
	isPush := strings.Contains(trace, "receive-pack") || strings.Contains(trace, "report-status")
	v2 := strings.Contains(trace, "< version 2")
	switch {
	case v == "2" && !isPush && !v2:
		t.Errorf("protocol v2 requested but not spoken:\n%s", truncateTrace(trace))
	case v != "2" && v2:
		t.Errorf("protocol v%s requested but v2 spoken:\n%s", v, truncateTrace(trace))
	case v == "1" && !strings.Contains(trace, "< version 1"):
		t.Errorf("protocol v1 requested but not spoken:\n%s", truncateTrace(trace))
	case v == "0" && strings.Contains(trace, "< version 1"):
		t.Errorf("protocol v0 requested but v1 spoken:\n%s", truncateTrace(trace))
	}
}

// TestHTTPLargePush pushes ~3 MiB of incompressible data, which git sends
// as a chunked POST (over http.postBuffer), and clones it back.
func TestHTTPLargePush(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "big", "restricted")
	url := s.RepoURL(admin, "admin", "big")
	g := NewGitEnv(t)
	work := g.Init(url)
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	if err := os.WriteFile(filepath.Join(work, "random.bin"), blob, 0o644); err != nil {
		t.Fatal(err)
	}
	g.Must(work, "add", "random.bin")
	g.Must(work, "commit", "-q", "-m", "big")
	head := strings.TrimSpace(g.Must(work, "rev-parse", "HEAD"))
	out, err := g.RunEnv(work, []string{"GIT_TRACE_CURL=1", "GIT_TRACE_CURL_NO_DATA=1"}, "push", "origin", "master")
	if err != nil {
		t.Fatalf("push: %v\n%s", err, truncateTrace(out))
	}
	if !strings.Contains(strings.ToLower(out), "transfer-encoding: chunked") {
		t.Fatalf("push was not sent chunked; the test does not test what it should:\n%s", truncateTrace(out))
	}
	clone := g.Clone(url)
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != head {
		t.Fatalf("cloned %s, pushed %s", got, head)
	}
	back, err := os.ReadFile(filepath.Join(clone, "random.bin"))
	if err != nil || !bytes.Equal(back, blob) {
		t.Fatalf("cloned file differs (%d bytes, %v)", len(back), err)
	}
}

// TestHTTPGzipUploadPack sends a hand-made, gzip-compressed v0 want/done
// request for a known commit and checks that a pack for it comes back.
func TestHTTPGzipUploadPack(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "gz", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "gz"))
	head := g.Commit(work, "f", "gzip me\n", "c")
	g.Must(work, "push", "-q", "origin", "master")

	req := pktLine("want "+head+"\n") + "0000" + pktLine("done\n")
	var zb bytes.Buffer
	zw := gzip.NewWriter(&zb)
	zw.Write([]byte(req))
	zw.Close()
	hdr := basicAuth("admin", s.AdminPassword)
	hdr["Content-Type"] = "application/x-git-upload-pack-request"
	hdr["Content-Encoding"] = "gzip"
	r := rawHTTP(t, s.HTTPAddr, "POST", "/git/admin/gz.git/git-upload-pack", hdr, zb.Bytes())
	if r.Status != 200 || r.Header.Get("Content-Type") != "application/x-git-upload-pack-result" {
		t.Fatalf("gzip upload-pack: %d %v %q", r.Status, r.Header, r.Body)
	}
	if !strings.HasPrefix(r.Body, "0008NAK\n") {
		t.Fatalf("answer does not start with NAK: %q", r.Body[:min(len(r.Body), 64)])
	}
	pack := r.Body[len("0008NAK\n"):]
	checkPack(t, []byte(pack))

	// The same request uncompressed gives the same answer shape, and a
	// body that claims gzip but is not gets a 4xx.
	delete(hdr, "Content-Encoding")
	if r := rawHTTP(t, s.HTTPAddr, "POST", "/git/admin/gz.git/git-upload-pack", hdr, []byte(req)); r.Status != 200 || !strings.HasPrefix(r.Body, "0008NAK\nPACK") {
		t.Fatalf("plain upload-pack: %d %q", r.Status, r.Body[:min(len(r.Body), 64)])
	}
	hdr["Content-Encoding"] = "gzip"
	if r := rawHTTP(t, s.HTTPAddr, "POST", "/git/admin/gz.git/git-upload-pack", hdr, []byte(req)); r.Status < 400 || r.Status >= 500 {
		t.Fatalf("non-gzip body labelled gzip: %d %q", r.Status, r.Body)
	}
	hdr["Content-Encoding"] = "br"
	if r := rawHTTP(t, s.HTTPAddr, "POST", "/git/admin/gz.git/git-upload-pack", hdr, []byte(req)); r.Status != 415 {
		t.Fatalf("unknown Content-Encoding: %d %q", r.Status, r.Body)
	}
	waitHealthy(t, s)
}

// checkPack verifies a raw pack: "PACK" header and trailing SHA-1.
func checkPack(t *testing.T, pack []byte) {
	t.Helper()
	if len(pack) < 32 || string(pack[:4]) != "PACK" {
		t.Fatalf("not a pack: %q", pack[:min(len(pack), 32)])
	}
	sum := sha1.Sum(pack[:len(pack)-20])
	if !bytes.Equal(sum[:], pack[len(pack)-20:]) {
		t.Fatalf("pack checksum mismatch (%d bytes): truncated or corrupt", len(pack))
	}
}

func TestHTTPAuth(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	alicePw := s.CreateUser("alice", false)
	alice := Cred{"alice", alicePw}
	s.CreateRepo(alice, "alice", "auth", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(alice, "alice", "auth"))
	head := g.Commit(work, "f", "x\n", "c")
	g.Must(work, "push", "-q", "origin", "master")

	// Wrong password: git fails, the server said 401 with a challenge.
	bad := Cred{"alice", "wrong-password"}
	out, err := g.RunEnv("", []string{"GIT_TRACE_CURL=1", "GIT_TRACE_CURL_NO_DATA=1"}, "clone", s.RepoURL(bad, "alice", "auth"), filepath.Join(t.TempDir(), "x"))
	if err == nil {
		t.Fatalf("clone with a wrong password succeeded:\n%s", out)
	}
	if !strings.Contains(out, "HTTP/1.1 401") || !strings.Contains(strings.ToLower(out), "www-authenticate: basic") {
		t.Fatalf("wrong password: no 401 with WWW-Authenticate in trace:\n%s", truncateTrace(out))
	}
	for _, hdr := range []map[string]string{nil, basicAuth("alice", "wrong-password"), {"Authorization": "Bearer gst_nope"}, {"Authorization": "Negotiate abc"}} {
		r := rawHTTP(t, s.HTTPAddr, "GET", "/git/alice/auth.git/info/refs?service=git-upload-pack", hdr, nil)
		if r.Status != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
			t.Fatalf("auth %v: %d %v", hdr, r.Status, r.Header)
		}
	}

	// Token auth: Basic user+token, placeholder user + token, Bearer.
	tok := s.Token("alice")
	for _, url := range []string{s.RepoURL(Cred{"alice", tok}, "alice", "auth"), s.RepoURL(Cred{"", tok}, "alice", "auth")} {
		clone := g.Clone(url)
		if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != head {
			t.Fatalf("token clone HEAD %s, want %s", got, head)
		}
	}
	bearer := "http.extraHeader=Authorization: Bearer " + tok
	clone := g.Clone(s.RepoURL(Cred{}, "alice", "auth"), "-c", bearer)
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != head {
		t.Fatalf("bearer clone HEAD %s, want %s", got, head)
	}
	g.Commit(clone, "g", "via bearer\n", "bearer push")
	g.Must(clone, "-c", bearer, "push", "-q", "origin", "master")
	// Someone else's name with alice's token is refused.
	if r := rawHTTP(t, s.HTTPAddr, "GET", "/git/alice/auth.git/info/refs?service=git-upload-pack", basicAuth("admin", tok), nil); r.Status != 401 {
		t.Fatalf("alice's token under admin's name: %d", r.Status)
	}

	// A repo:read token clones but cannot push (403).
	ro := s.Token("alice", "repo:read")
	roURL := s.RepoURL(Cred{"alice", ro}, "alice", "auth")
	roClone := g.Clone(roURL)
	g.Commit(roClone, "h", "nope\n", "ro push")
	out, err = g.RunEnv(roClone, []string{"GIT_TRACE_CURL=1", "GIT_TRACE_CURL_NO_DATA=1"}, "push", "origin", "master")
	if err == nil {
		t.Fatalf("push with a repo:read token succeeded:\n%s", out)
	}
	if !strings.Contains(out, "HTTP/1.1 403") {
		t.Fatalf("read-only token push: no 403:\n%s", truncateTrace(out))
	}
	r := rawHTTP(t, s.HTTPAddr, "GET", "/git/alice/auth.git/info/refs?service=git-receive-pack", map[string]string{"Authorization": "Bearer " + ro}, nil)
	if r.Status != 403 {
		t.Fatalf("receive-pack advertisement with a repo:read token: %d", r.Status)
	}
	hdr := map[string]string{"Authorization": "Bearer " + ro, "Content-Type": "application/x-git-receive-pack-request"}
	if r := rawHTTP(t, s.HTTPAddr, "POST", "/git/alice/auth.git/git-receive-pack", hdr, []byte("0000")); r.Status != 403 {
		t.Fatalf("receive-pack POST with a repo:read token: %d", r.Status)
	}
	// A builds-only token has no repository access at all.
	bt := s.Token("admin", "builds")
	if r := rawHTTP(t, s.HTTPAddr, "GET", "/git/alice/auth.git/info/refs?service=git-upload-pack", map[string]string{"Authorization": "Bearer " + bt}, nil); r.Status != 404 {
		t.Fatalf("builds-only token on git: %d", r.Status)
	}
	// The admin's password still works everywhere.
	g.Clone(s.RepoURL(admin, "alice", "auth"))
}

// listTree lists every path under root (names only), for before/after
// comparisons. SQLite's own files are left out: their presence varies.
func listTree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(filepath.Base(p), "gitserver.db") {
			return nil
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out
}

func TestHTTPBadPaths(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "real", "public")
	root := filepath.Dir(s.Data) // the data dir and its surroundings
	before := listTree(t, root)
	auth := basicAuth("admin", s.AdminPassword)
	long := strings.Repeat("a", 101)
	for _, path := range []string{
		"/git/../x.git/info/refs?service=git-upload-pack",
		"/git/admin/../real.git/info/refs?service=git-upload-pack",
		"/git/a/..%2f..%2fetc.git/info/refs?service=git-upload-pack",
		"/git/a/..%2F..%2Fetc.git/info/refs?service=git-upload-pack",
		"/git/admin%2Freal.git/info/refs?service=git-upload-pack",
		"/git/admin/real%2F.git/info/refs?service=git-upload-pack",
		"/git/%2Fetc/passwd.git/info/refs?service=git-upload-pack",
		"/git//etc/passwd.git/info/refs?service=git-upload-pack",
		"/git/admin//real.git/info/refs?service=git-upload-pack",
		"/git/" + root + "/x.git/info/refs?service=git-upload-pack",
		"/git/admin/real.git.git/info/refs?service=git-upload-pack",
		"/git/admin/real.git.git/info/refs?service=git-receive-pack",
		"/git/admin/" + long + ".git/info/refs?service=git-upload-pack",
		"/git/" + long + "/real.git/info/refs?service=git-receive-pack",
		"/git/admin/" + strings.Repeat("b", 5000) + ".git/info/refs?service=git-upload-pack",
		"/git/admin/.git/info/refs?service=git-upload-pack",
		"/git/admin/-real.git/info/refs?service=git-upload-pack",
		"/git/admin/re%00al.git/info/refs?service=git-upload-pack",
		"/git/admin/re%0aal.git/info/refs?service=git-upload-pack",
		"/git/admin/real/info/refs?service=git-upload-pack",
		"/git/admin/real.git/HEAD",
		"/git/admin/real.git/objects/info/packs",
		"/git/admin/real.git/config",
		"/git/admin/nosuch.git/info/refs?service=git-upload-pack",
		"/git/admin/nosuch.git/info/refs?service=git-receive-pack",
		"/git/nobody/nosuch.git/info/refs?service=git-receive-pack",
		"/git/admin/real.git/info/refs/../../config",
	} {
		for _, method := range []string{"GET", "POST"} {
			hdr := map[string]string{"Authorization": auth["Authorization"], "Content-Type": "application/x-git-upload-pack-request"}
			var body []byte
			if method == "POST" {
				body = []byte("0000")
			}
			r := rawHTTP(t, s.HTTPAddr, method, path, hdr, body)
			if r.Status < 400 || r.Status >= 500 {
				t.Errorf("%s %.120s = %d, want 4xx (Location %q)", method, path, r.Status, r.Header.Get("Location"))
			}
			if strings.Contains(r.Body, s.Data) || strings.Contains(r.Body, "goroutine") {
				t.Errorf("%s %.120s leaks internals: %q", method, path, r.Body)
			}
		}
	}
	// Unknown repositories are 404 and are not created, not even by a push.
	r := rawHTTP(t, s.HTTPAddr, "GET", "/git/admin/nosuch.git/info/refs?service=git-receive-pack", auth, nil)
	if r.Status != 404 {
		t.Errorf("unknown repo: %d", r.Status)
	}
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "nosuch"))
	g.Commit(work, "f", "x\n", "c")
	if out, err := g.Run(work, "push", "origin", "master"); err == nil {
		t.Errorf("push to an unknown repository succeeded:\n%s", out)
	}
	if st, _ := s.JSON("GET", "/api/v1/repos/admin/nosuch", admin, nil); st != 404 {
		t.Errorf("unknown repo exists after requests: %d", st)
	}
	if after := listTree(t, root); strings.Join(after, "\n") != strings.Join(before, "\n") {
		t.Errorf("files changed on disk:\nbefore %q\nafter  %q", before, after)
	}
	waitHealthy(t, s)
}

func TestHTTPBadRequests(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "r", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "r"))
	head := g.Commit(work, "f", "x\n", "c")
	g.Must(work, "push", "-q", "origin", "master")
	auth := basicAuth("admin", s.AdminPassword)["Authorization"]

	// service= values.
	for _, q := range []string{"", "?service=", "?service=git-upload-archive", "?service=upload-pack", "?service=git-upload-pack%00", "?foo=bar"} {
		r := rawHTTP(t, s.HTTPAddr, "GET", "/git/admin/r.git/info/refs"+q, map[string]string{"Authorization": auth}, nil)
		if r.Status != 403 {
			t.Errorf("info/refs%s = %d, want 403", q, r.Status)
		}
	}
	// Wrong Content-Type.
	for _, ct := range []string{"", "application/json", "application/x-git-receive-pack-request", "text/plain"} {
		hdr := map[string]string{"Authorization": auth}
		if ct != "" {
			hdr["Content-Type"] = ct
		}
		r := rawHTTP(t, s.HTTPAddr, "POST", "/git/admin/r.git/git-upload-pack", hdr, []byte("0000"))
		if r.Status != 415 {
			t.Errorf("upload-pack with Content-Type %q = %d, want 415", ct, r.Status)
		}
	}
	r := rawHTTP(t, s.HTTPAddr, "POST", "/git/admin/r.git/git-receive-pack",
		map[string]string{"Authorization": auth, "Content-Type": "application/x-git-upload-pack-request"}, []byte("0000"))
	if r.Status != 415 {
		t.Errorf("receive-pack with the upload-pack Content-Type = %d, want 415", r.Status)
	}

	// Garbage and truncated bodies: a 4xx or a git error in a 200, and the
	// server stays healthy and the repository intact.
	zero := strings.Repeat("0", 40)
	for _, tc := range []struct{ service, body string }{
		{"upload-pack", ""},
		{"upload-pack", "garbage"},
		{"upload-pack", "zzzzwant"},
		{"upload-pack", "0032want " + head},                    // truncated pkt-line
		{"upload-pack", pktLine("want " + head + "\n")},        // no flush, no done
		{"upload-pack", pktLine("want "+zero+"\n") + "0000"},   // unknown object
		{"upload-pack", pktLine("want nothex\n") + "0000"},     // bad object id
		{"upload-pack", "ffff" + strings.Repeat("x", 100)},     // length beyond the body
		{"upload-pack", "0001"},                                // invalid length
		{"upload-pack", pktLine("command=ls-refs\n") + "0000"}, // v2 command without v2
		{"receive-pack", ""},
		{"receive-pack", "garbage"},
		{"receive-pack", pktLine(zero + " " + head + " refs/heads/x\x00report-status\n")}, // no flush, no pack
		{"receive-pack", pktLine(zero+" "+head+" refs/heads/x\x00report-status\n") + "0000PACK\x00\x00"},
		{"receive-pack", pktLine(head+" "+zero+" refs/heads/master\n") + "0000"}, // delete default branch
		{"receive-pack", "0004"},
	} {
		hdr := map[string]string{"Authorization": auth, "Content-Type": "application/x-git-" + tc.service + "-request"}
		r := rawHTTP(t, s.HTTPAddr, "POST", "/git/admin/r.git/git-"+tc.service, hdr, []byte(tc.body))
		if r.Status >= 500 || (r.Status >= 200 && r.Status < 400 && r.Status != 200) {
			t.Errorf("%s %q = %d", tc.service, tc.body, r.Status)
		}
		if strings.Contains(r.Body, s.Data) {
			t.Errorf("%s %q leaks the data path: %q", tc.service, tc.body, r.Body)
		}
	}
	// v2 garbage too.
	hdr := map[string]string{"Authorization": auth, "Content-Type": "application/x-git-upload-pack-request", "Git-Protocol": "version=2"}
	for _, body := range []string{"garbage", pktLine("command=nope\n") + "0000", pktLine("command=fetch\n") + "0001" + pktLine("want "+zero+"\n")} {
		if r := rawHTTP(t, s.HTTPAddr, "POST", "/git/admin/r.git/git-upload-pack", hdr, []byte(body)); r.Status >= 500 {
			t.Errorf("v2 %q = %d", body, r.Status)
		}
	}
	// A body cut off mid-request (connection closed early).
	conn, err := net.Dial("tcp", s.HTTPAddr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(conn, "POST /git/admin/r.git/git-receive-pack HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/x-git-receive-pack-request\r\nContent-Length: 100000\r\n\r\n%s", auth, pktLine(zero+" "+head+" refs/heads/y\x00report-status\n")+"0000PACK")
	conn.Close()

	waitHealthy(t, s)
	clone := g.Clone(s.RepoURL(admin, "admin", "r"))
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != head {
		t.Fatalf("repository changed by bad requests: HEAD %s, want %s", got, head)
	}
	if out := g.Must(clone, "ls-remote", "origin"); strings.Contains(out, "refs/heads/x") || strings.Contains(out, "refs/heads/y") {
		t.Fatalf("a bad push created a branch:\n%s", out)
	}
	if out, err := g.Run(clone, "fsck", "--strict"); err != nil {
		t.Fatalf("fsck: %v\n%s", err, out)
	}
}

// TestHTTPThrottle: >20 wrong passwords from 127.0.0.1 give 429 with
// Retry-After, while the right password from 127.0.0.2 still gets in.
func TestHTTPThrottle(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	s.CreateRepo(Cred{"admin", s.AdminPassword}, "admin", "t", "restricted")
	path := "/git/admin/t.git/info/refs?service=git-upload-pack"
	bad := basicAuth("admin", "wrong-password")
	var got429 *rawResp
	for i := 0; i < 25; i++ {
		r := rawHTTP(t, s.HTTPAddr, "GET", path, bad, nil)
		if r.Status == 429 {
			got429 = &r
			break
		}
		if r.Status != 401 {
			t.Fatalf("wrong password %d: %d", i, r.Status)
		}
	}
	if got429 == nil {
		t.Fatal("no 429 after 25 wrong passwords")
	}
	if ra := got429.Header.Get("Retry-After"); ra == "" || ra == "0" {
		t.Fatalf("429 without a useful Retry-After: %v", got429.Header)
	}
	// The API is throttled too, with the JSON error shape.
	st, body := s.Do("GET", "/api/v1/user", Cred{"admin", s.AdminPassword}, nil)
	if st != 429 || !strings.Contains(string(body), `"rate_limited"`) {
		t.Fatalf("API from the throttled address: %d %s", st, body)
	}
	// From 127.0.0.2 the right password works.
	_, port, _ := net.SplitHostPort(s.HTTPAddr)
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")},
		Timeout:   10 * time.Second,
	}).DialContext}}
	req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+path, nil)
	req.SetBasicAuth("admin", s.AdminPassword)
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("from 127.0.0.2: %v", err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("right password from 127.0.0.2: %d", resp.StatusCode)
	}
}

// TestHTTPThrottleBehindProxy: with --trusted-proxies, requests from the
// proxy are throttled per X-Forwarded-For client: one user's wrong
// passwords lock out that user only, and the others behind the same proxy
// (here a real git client sending the header) still get in. A peer that is
// not a trusted proxy cannot escape its throttle by varying the header.
func TestHTTPThrottleBehindProxy(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithArgs("--trusted-proxies", "127.0.0.1/32, 10.0.0.0/8"))
	s.CreateRepo(Cred{"admin", s.AdminPassword}, "admin", "p", "restricted")
	path := "/git/admin/p.git/info/refs?service=git-upload-pack"
	from := func(client string, auth map[string]string) map[string]string {
		h := map[string]string{"X-Forwarded-For": client + ", 10.1.2.3"}
		maps.Copy(h, auth)
		return h
	}
	bad := basicAuth("admin", "wrong-password")
	throttled := false
	for i := 0; i < 25 && !throttled; i++ {
		switch r := rawHTTP(t, s.HTTPAddr, "GET", path, from("203.0.113.5", bad), nil); r.Status {
		case 429:
			throttled = true
		case 401:
		default:
			t.Fatalf("wrong password %d: %d", i, r.Status)
		}
	}
	if !throttled {
		t.Fatal("no 429 after 25 wrong passwords from one client behind the proxy")
	}
	if r := rawHTTP(t, s.HTTPAddr, "GET", path, from("203.0.113.5", basicAuth("admin", s.AdminPassword)), nil); r.Status != 429 {
		t.Fatalf("right password from the throttled client: %d, want 429", r.Status)
	}
	// Another user behind the same proxy: a real clone.
	g := NewGitEnv(t)
	g.Must("", "-c", "http.extraHeader=X-Forwarded-For: 203.0.113.6", "ls-remote", s.RepoURL(Cred{"admin", s.AdminPassword}, "admin", "p"))

	// 127.0.0.2 is not a trusted proxy: its X-Forwarded-For is not
	// believed, so a new header per guess does not reset its throttle.
	_, port, _ := net.SplitHostPort(s.HTTPAddr)
	client := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{
		LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}, Timeout: 10 * time.Second}).DialContext}}
	got := map[int]int{}
	for i := 0; i < 25; i++ {
		req, _ := http.NewRequest("GET", "http://127.0.0.1:"+port+path, nil)
		req.SetBasicAuth("admin", "wrong-password")
		req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		got[resp.StatusCode]++
	}
	if got[429] == 0 || got[401] > 20 {
		t.Fatalf("25 wrong passwords from an untrusted peer with varying X-Forwarded-For: %v (status: count), want 429s", got)
	}
}

// holdGate is a TCP proxy that stops forwarding server-to-client bytes once
// more than threshold have passed, until it is opened.
type holdGate struct {
	ln        net.Listener
	target    string
	threshold int64
	reached   chan struct{}
	open      chan struct{}
	once      sync.Once
}

func newHoldGate(t *testing.T, target string, threshold int64) *holdGate {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &holdGate{ln: ln, target: target, threshold: threshold, reached: make(chan struct{}), open: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go g.serve(c)
		}
	}()
	return g
}

func (g *holdGate) serve(c net.Conn) {
	defer c.Close()
	up, err := net.Dial("tcp", g.target)
	if err != nil {
		return
	}
	defer up.Close()
	go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := up.Read(buf)
		if k > 0 {
			n += int64(k)
			if n > g.threshold {
				g.once.Do(func() { close(g.reached) })
				<-g.open
			}
			if _, werr := c.Write(buf[:k]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestHTTPGracefulShutdown: SIGTERM while a clone is streaming its pack;
// the clone completes and the process exits 0.
func TestHTTPGracefulShutdown(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "big", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "big"))
	blob := make([]byte, 8<<20)
	rand.Read(blob)
	os.WriteFile(filepath.Join(work, "random.bin"), blob, 0o644)
	g.Must(work, "add", ".")
	g.Must(work, "commit", "-q", "-m", "big")
	head := strings.TrimSpace(g.Must(work, "rev-parse", "HEAD"))
	g.Must(work, "push", "-q", "origin", "master")

	gate := newHoldGate(t, s.HTTPAddr, 1<<20)
	url := "http://admin:" + s.AdminPassword + "@" + gate.ln.Addr().String() + "/git/admin/big.git"
	dir := filepath.Join(t.TempDir(), "clone")
	type result struct {
		out string
		err error
	}
	cloneDone := make(chan result, 1)
	go func() {
		out, err := g.Run("", "clone", "-q", url, dir)
		cloneDone <- result{out, err}
	}()
	select {
	case <-gate.reached: // the pack is streaming and held at the gate
	case r := <-cloneDone:
		t.Fatalf("clone ended before its pack was streaming: %v\n%s", r.err, r.out)
	case <-time.After(120 * time.Second):
		t.Fatal("clone did not start streaming")
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	// Wait until the server is shutting down, then let the clone finish.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for !strings.Contains(s.Output(), "shutting down") {
		select {
		case <-ctx.Done():
			t.Fatalf("server did not start shutting down\n%s", s.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	// New connections are refused while the clone is still held.
	if c, err := net.DialTimeout("tcp", s.HTTPAddr, 5*time.Second); err == nil {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			t.Errorf("new request served during shutdown: %d", resp.StatusCode)
		}
		c.Close()
	}
	close(gate.open)
	r := <-cloneDone
	if r.err != nil {
		t.Fatalf("clone interrupted by shutdown: %v\n%s\n%s", r.err, r.out, s.Output())
	}
	if got := strings.TrimSpace(g.Must(dir, "rev-parse", "HEAD")); got != head {
		t.Fatalf("cloned %s, want %s", got, head)
	}
	g.Must(dir, "fsck")
	err, exited := s.Signal(syscall.SIGTERM, 60*time.Second)
	if !exited {
		t.Fatalf("server did not exit\n%s", s.Output())
	}
	if err != nil {
		t.Fatalf("server exit: %v\n%s", err, s.Output())
	}
}

func TestHTTPHealthAndMetrics(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "m", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(admin, "admin", "m"))
	g.Commit(work, "f", "x\n", "c")
	g.Must(work, "push", "-q", "origin", "master")
	g.Clone(s.RepoURL(admin, "admin", "m"))
	for _, p := range []string{"/healthz", "/readyz"} {
		if r := rawHTTP(t, s.HTTPAddr, "GET", p, nil, nil); r.Status != 200 {
			t.Errorf("%s = %d", p, r.Status)
		}
	}
	r := rawHTTP(t, s.HTTPAddr, "GET", "/metrics", nil, nil)
	if r.Status != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics = %d %v", r.Status, r.Header)
	}
	for _, want := range []string{
		"gitserver_http_requests_total{",
		`gitserver_git_operations_total{result="ok",service="upload-pack",transport="http"}`,
		`gitserver_git_operations_total{result="ok",service="receive-pack",transport="http"}`,
	} {
		if !strings.Contains(r.Body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if r := rawHTTP(t, s.HTTPAddr, "GET", "/nope", nil, nil); r.Status != 404 {
		t.Errorf("/nope = %d", r.Status)
	}
}

// TestHTTPPushLimit: a push over --max-push-mb is refused cleanly and
// changes nothing; shallow and partial clones work.
func TestHTTPPushLimit(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithArgs("--max-push-mb", "1"))
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "lim", "restricted")
	url := s.RepoURL(admin, "admin", "lim")
	g := NewGitEnv(t)
	work := g.Init(url)
	small := g.Commit(work, "a", "small\n", "small")
	g.Must(work, "push", "-q", "origin", "master")
	blob := make([]byte, 3<<20)
	rand.Read(blob)
	os.WriteFile(filepath.Join(work, "random.bin"), blob, 0o644)
	g.Must(work, "add", ".")
	g.Must(work, "commit", "-q", "-m", "too big")
	if out, err := g.Run(work, "push", "origin", "master"); err == nil {
		t.Fatalf("push over the limit succeeded:\n%s", out)
	} else if !strings.Contains(out, "remote: fatal: pack exceeds maximum allowed size") {
		t.Errorf("the client is not told that the push is over the limit:\n%s", out)
	}
	waitHealthy(t, s)
	out := g.Must("", "ls-remote", url)
	if !strings.Contains(out, small+"\trefs/heads/master") {
		t.Fatalf("refused push moved master:\n%s", out)
	}
	// The repository holds no objects of the refused push.
	clone := g.Clone(url)
	if out, err := g.Run(clone, "cat-file", "-e", strings.TrimSpace(g.Must(work, "rev-parse", "HEAD"))); err == nil {
		t.Fatalf("object of the refused push is in the repository: %s", out)
	}

	// Shallow and partial clones (v2 and v0).
	g.Must(work, "reset", "-q", "--hard", small)
	for i := 0; i < 3; i++ {
		g.Commit(work, "n", strings.Repeat("x", i+1)+"\n", "more")
	}
	head := strings.TrimSpace(g.Must(work, "rev-parse", "HEAD"))
	g.Must(work, "push", "-q", "origin", "master")
	for _, pv := range []string{"0", "2"} {
		sh := g.Clone(url, "-c", "protocol.version="+pv, "--depth", "1")
		if n := strings.TrimSpace(g.Must(sh, "rev-list", "--count", "HEAD")); n != "1" {
			t.Errorf("v%s shallow clone has %s commits", pv, n)
		}
		pc := g.Clone(url, "-c", "protocol.version="+pv, "--filter=blob:none")
		if got := strings.TrimSpace(g.Must(pc, "rev-parse", "HEAD")); got != head {
			t.Errorf("v%s partial clone HEAD %s, want %s", pv, got, head)
		}
		if f := strings.TrimSpace(g.Must(pc, "config", "remote.origin.partialclonefilter")); f != "blob:none" {
			t.Errorf("v%s partial clone filter %q: the server did not honour --filter", pv, f)
		}
	}
}
