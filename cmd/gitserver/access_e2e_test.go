package main

// End-to-end tests of the access rules (docs/api.md §4), the JSON API (§5) and
// the admin CLI (§2), with the real binary and the real git client.

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// canReadWrite reports the HTTP status of a read (upload-pack advertisement) and
// a write (receive-pack advertisement) of owner/name with credential c.
func canReadWrite(t *testing.T, s *TestServer, c Cred, owner, name string) (read, write int) {
	t.Helper()
	var hdr map[string]string
	switch {
	case c.User != "":
		hdr = basicAuth(c.User, c.Secret)
	case c.Secret != "":
		hdr = map[string]string{"Authorization": "Bearer " + c.Secret}
	}
	base := "/git/" + owner + "/" + name + ".git/info/refs?service="
	read = rawHTTP(t, s.HTTPAddr, "GET", base+"git-upload-pack", hdr, nil).Status
	write = rawHTTP(t, s.HTTPAddr, "GET", base+"git-receive-pack", hdr, nil).Status
	return read, write
}

// seedRepo pushes one commit to owner/name's master as c and returns it.
func seedRepo(t *testing.T, s *TestServer, c Cred, owner, name string) string {
	t.Helper()
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(c, owner, name))
	head := g.Commit(work, "README", owner+"/"+name+"\n", "seed")
	g.Must(work, "push", "-q", "origin", "master")
	return head
}

// gitReadWrite tries a real clone and a real push as c and reports which worked.
func gitReadWrite(t *testing.T, s *TestServer, c Cred, owner, name string) (cloned, pushed bool) {
	t.Helper()
	g := NewGitEnv(t)
	dir := filepath.Join(t.TempDir(), "c")
	if _, err := g.Run("", "clone", "-q", s.RepoURL(c, owner, name), dir); err != nil {
		return false, false
	}
	g.Commit(dir, "by-"+c.User+".txt", "x\n", "push test")
	_, err := g.Run(dir, "push", "-q", "origin", "master")
	return true, err == nil
}

func TestAccessRules(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	alice := Cred{"alice", s.CreateUser("alice", false)}
	bob := Cred{"bob", s.CreateUser("bob", false)}
	carol := Cred{"carol", s.CreateUser("carol", false)}
	anon := Cred{}

	s.CreateRepo(alice, "alice", "priv", "restricted")
	s.CreateRepo(alice, "alice", "pub", "public")
	if st, m := s.JSON("POST", "/api/v1/orgs", alice, map[string]any{"name": "acme"}); st != 201 {
		t.Fatalf("create org: %d %v", st, m)
	}
	if st, m := s.JSON("PUT", "/api/v1/orgs/acme/members/bob", alice, map[string]any{"role": "member"}); st != 200 {
		t.Fatalf("add member: %d %v", st, m)
	}
	s.CreateRepo(bob, "acme", "opriv", "restricted") // members may create org repos
	s.CreateRepo(alice, "acme", "opub", "public")
	for _, r := range []string{"alice/priv", "alice/pub", "acme/opriv", "acme/opub"} {
		o, n, _ := strings.Cut(r, "/")
		seedRepo(t, s, admin, o, n)
	}

	for _, tc := range []struct {
		who         string
		c           Cred
		repo        string
		read, write int
	}{
		// restricted repo owned by a user
		{"owner", alice, "alice/priv", 200, 200},
		{"other user", bob, "alice/priv", 404, 404},
		{"admin", admin, "alice/priv", 200, 200},
		{"anonymous", anon, "alice/priv", 401, 401},
		// public repo owned by a user
		{"owner", alice, "alice/pub", 200, 200},
		{"other user", bob, "alice/pub", 200, 403},
		{"admin", admin, "alice/pub", 200, 200},
		{"anonymous", anon, "alice/pub", 401, 401},
		// org repos
		{"org owner", alice, "acme/opriv", 200, 200},
		{"org member", bob, "acme/opriv", 200, 200},
		{"non-member", carol, "acme/opriv", 404, 404},
		{"admin", admin, "acme/opriv", 200, 200},
		{"member", bob, "acme/opub", 200, 200},
		{"non-member", carol, "acme/opub", 200, 403},
		{"anonymous", anon, "acme/opub", 401, 401},
	} {
		o, n, _ := strings.Cut(tc.repo, "/")
		r, w := canReadWrite(t, s, tc.c, o, n)
		if r != tc.read || w != tc.write {
			t.Errorf("%s on %s: read %d write %d, want %d %d", tc.who, tc.repo, r, w, tc.read, tc.write)
		}
	}

	// The same with the real client, for the interesting cells.
	for _, tc := range []struct {
		who            string
		c              Cred
		repo           string
		cloned, pushed bool
	}{
		{"owner", alice, "alice/priv", true, true},
		{"other user", bob, "alice/priv", false, false},
		{"admin", admin, "alice/priv", true, true},
		{"other user", bob, "alice/pub", true, false},
		{"org member", bob, "acme/opriv", true, true},
		{"non-member", carol, "acme/opriv", false, false},
		{"non-member", carol, "acme/opub", true, false},
	} {
		o, n, _ := strings.Cut(tc.repo, "/")
		c, p := gitReadWrite(t, s, tc.c, o, n)
		if c != tc.cloned || p != tc.pushed {
			t.Errorf("git as %s on %s: cloned %v pushed %v, want %v %v", tc.who, tc.repo, c, p, tc.cloned, tc.pushed)
		}
	}

	// The API follows the same rules.
	for _, tc := range []struct {
		c    Cred
		repo string
		want int
	}{
		{bob, "alice/priv", 404}, {bob, "alice/pub", 200}, {carol, "acme/opriv", 404}, {bob, "acme/opriv", 200}, {anon, "alice/pub", 401},
	} {
		if st, _ := s.Do("GET", "/api/v1/repos/"+tc.repo, tc.c, nil); st != tc.want {
			t.Errorf("GET repo %s as %q: %d, want %d", tc.repo, tc.c.User, st, tc.want)
		}
	}

	// Membership changes take effect at once.
	if st, _ := s.JSON("PUT", "/api/v1/orgs/acme/members/carol", alice, map[string]any{"role": "member"}); st != 200 {
		t.Fatalf("add carol: %d", st)
	}
	if r, w := canReadWrite(t, s, carol, "acme", "opriv"); r != 200 || w != 200 {
		t.Errorf("new member carol: %d %d", r, w)
	}
}

func TestAnonymousRead(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithArgs("--anonymous-read"))
	admin := Cred{"admin", s.AdminPassword}
	s.CreateRepo(admin, "admin", "pub", "public")
	s.CreateRepo(admin, "admin", "priv", "restricted")
	head := seedRepo(t, s, admin, "admin", "pub")
	seedRepo(t, s, admin, "admin", "priv")
	anon := Cred{}
	if r, w := canReadWrite(t, s, anon, "admin", "pub"); r != 200 || w != 401 {
		t.Errorf("anonymous on public: read %d write %d, want 200 401", r, w)
	}
	if r, w := canReadWrite(t, s, anon, "admin", "priv"); r != 401 || w != 401 {
		t.Errorf("anonymous on restricted: read %d write %d, want 401 401", r, w)
	}
	if r, _ := canReadWrite(t, s, anon, "admin", "nosuch"); r != 401 {
		t.Errorf("anonymous on unknown repo: %d, want 401 (existence not revealed)", r)
	}
	g := NewGitEnv(t)
	clone := g.Clone(s.RepoURL(anon, "admin", "pub"))
	if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != head {
		t.Fatalf("anonymous clone HEAD %s, want %s", got, head)
	}
	g.Commit(clone, "x", "x\n", "anon push")
	if out, err := g.Run(clone, "push", "origin", "master"); err == nil {
		t.Fatalf("anonymous push succeeded:\n%s", out)
	}
	if out, err := g.Run("", "clone", s.RepoURL(anon, "admin", "priv"), filepath.Join(t.TempDir(), "p")); err == nil {
		t.Fatalf("anonymous clone of a restricted repo succeeded:\n%s", out)
	}
	// A wrong credential is still refused, not downgraded to anonymous.
	if r, _ := canReadWrite(t, s, Cred{"admin", "wrong-password"}, "admin", "pub"); r != 401 {
		t.Errorf("wrong password on public with --anonymous-read: %d", r)
	}
	// The API never shows a restricted repo to an anonymous client, and
	// answers an unknown repo the same way (401, existence not revealed).
	for _, path := range []string{"/api/v1/repos/admin/priv", "/api/v1/repos/admin/priv/versions", "/api/v1/repos/admin/nosuch"} {
		if st, _ := s.Do("GET", path, anon, nil); st != 401 {
			t.Errorf("anonymous API GET %s: %d, want 401", path, st)
		}
	}
	// Public repositories are readable through the API as they are by git;
	// writes still need credentials.
	if st, m := s.JSON("GET", "/api/v1/repos/admin/pub", anon, nil); st != 200 || m["name"] != "pub" {
		t.Errorf("anonymous API read of public repo: %d %v", st, m)
	}
	for _, path := range []string{"/api/v1/repos/admin/pub/versions", "/api/v1/repos/admin/pub/builds"} {
		if st, b := s.Do("GET", path, anon, nil); st != 200 || !strings.HasPrefix(strings.TrimSpace(string(b)), "[") {
			t.Errorf("anonymous API GET %s: %d %s", path, st, b)
		}
	}
	if st, _ := s.Do("DELETE", "/api/v1/repos/admin/pub", anon, nil); st != 401 {
		t.Errorf("anonymous API DELETE of public repo: %d, want 401", st)
	}
}

var apiErrRE = regexp.MustCompile(`^\{"error":\{"code":"[a-z_]+","message":".+"\}\}$`)

// wantAPIError checks the contract's error shape and status, and that the body
// leaks no server path.
func wantAPIError(t *testing.T, s *TestServer, what string, status int, body []byte, want int) {
	t.Helper()
	if status != want {
		t.Errorf("%s: status %d, want %d: %s", what, status, want, body)
		return
	}
	var m struct {
		Error struct{ Code, Message string } `json:"error"`
	}
	compact := strings.Join(strings.Fields(string(body)), "")
	if err := json.Unmarshal(body, &m); err != nil || m.Error.Code == "" || m.Error.Message == "" || !apiErrRE.MatchString(compact) {
		t.Errorf("%s: error body not {\"error\":{\"code\",\"message\"}}: %s", what, body)
	}
	if strings.Contains(string(body), s.Data) || strings.Contains(string(body), "goroutine") || strings.Contains(string(body), ".go:") {
		t.Errorf("%s: error body leaks internals: %s", what, body)
	}
}

func newPubKey(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(sp))) + " test@key"
}

func TestAPI(t *testing.T) {
	t.Parallel()
	s := StartServer(t, WithArgs("--base-url", "https://git.example.com/"))
	admin := Cred{"admin", s.AdminPassword}
	alice := Cred{"alice", s.CreateUser("alice", false)}
	bob := Cred{"bob", s.CreateUser("bob", false)}

	// --- repos: creation and the repo object
	st, m := s.JSON("POST", "/api/v1/repos", alice, map[string]any{"owner": "alice", "name": "Proj", "visibility": "restricted"})
	if st != 201 {
		t.Fatalf("create repo: %d %v", st, m)
	}
	want := map[string]any{
		"owner": "alice", "name": "Proj", "visibility": "restricted", "default_branch": "master",
		"clone_url_http": "https://git.example.com/git/alice/Proj.git",
	}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("repo.%s = %v, want %v", k, m[k], v)
		}
	}
	if u, _ := m["clone_url_ssh"].(string); !strings.HasPrefix(u, "ssh://git@git.example.com:") || !strings.HasSuffix(u, "/alice/Proj.git") {
		t.Errorf("repo.clone_url_ssh = %q", m["clone_url_ssh"])
	}
	if c, _ := m["created_at"].(string); c == "" {
		t.Errorf("repo.created_at missing: %v", m)
	}
	st, m = s.JSON("GET", "/api/v1/repos/ALICE/proj", alice, nil)
	if st != 200 || m["name"] != "Proj" || m["default_branch"] != "master" {
		t.Errorf("GET repo case-insensitively: %d %v", st, m)
	}

	long := strings.Repeat("n", 101)
	for _, tc := range []struct {
		what string
		body any
		want int
	}{
		{"empty name", map[string]any{"owner": "alice", "name": "", "visibility": "public"}, 400},
		{"name with slash", map[string]any{"owner": "alice", "name": "a/b", "visibility": "public"}, 400},
		{"name ..", map[string]any{"owner": "alice", "name": "..", "visibility": "public"}, 400},
		{"leading dash", map[string]any{"owner": "alice", "name": "-x", "visibility": "public"}, 400},
		{"leading dot", map[string]any{"owner": "alice", "name": ".x", "visibility": "public"}, 400},
		{"ends in .git", map[string]any{"owner": "alice", "name": "x.git", "visibility": "public"}, 400},
		{"ends in .GIT", map[string]any{"owner": "alice", "name": "x.GIT", "visibility": "public"}, 400},
		{"space", map[string]any{"owner": "alice", "name": "a b", "visibility": "public"}, 400},
		{"unicode", map[string]any{"owner": "alice", "name": "café", "visibility": "public"}, 400},
		{"101 chars", map[string]any{"owner": "alice", "name": long, "visibility": "public"}, 400},
		{"bad owner name", map[string]any{"owner": "../alice", "name": "x", "visibility": "public"}, 400},
		{"bad visibility", map[string]any{"owner": "alice", "name": "x", "visibility": "private"}, 400},
		{"no visibility", map[string]any{"owner": "alice", "name": "x"}, 400},
		{"bad default branch", map[string]any{"owner": "alice", "name": "x", "visibility": "public", "default_branch": "a..b"}, 400},
		{"unknown field", map[string]any{"owner": "alice", "name": "x", "visibility": "public", "privat": true}, 400},
		{"not JSON", "{nope", 400},
		{"empty body", "", 400},
		{"trailing data", `{"owner":"alice","name":"x","visibility":"public"} {}`, 400},
		{"wrong type", `{"owner":"alice","name":5,"visibility":"public"}`, 400},
		{"duplicate, other case", map[string]any{"owner": "alice", "name": "PROJ", "visibility": "public"}, 409},
		{"duplicate", map[string]any{"owner": "alice", "name": "Proj", "visibility": "restricted"}, 409},
		{"someone else's namespace", map[string]any{"owner": "bob", "name": "x", "visibility": "public"}, 403},
		{"unknown owner", map[string]any{"owner": "nobody", "name": "x", "visibility": "public"}, 404},
	} {
		st, b := s.Do("POST", "/api/v1/repos", alice, tc.body)
		wantAPIError(t, s, "create repo: "+tc.what, st, b, tc.want)
	}
	if st, b := s.Do("POST", "/api/v1/repos", alice, `{"owner":"alice","name":"`+long[:100]+`","visibility":"public"}`); st != 201 {
		t.Errorf("100-character name refused: %d %s", st, b)
	}
	// Owner defaults to the caller.
	if st, m := s.JSON("POST", "/api/v1/repos", bob, map[string]any{"name": "mine", "visibility": "public"}); st != 201 || m["owner"] != "bob" {
		t.Errorf("create without owner: %d %v", st, m)
	}
	// Nothing was created on disk for the refused requests: one directory
	// per stored repository (besides the trash of deleted ones, .trash).
	entries, _ := os.ReadDir(filepath.Join(s.Data, "repos"))
	entries = slices.DeleteFunc(entries, func(e os.DirEntry) bool { return e.Name() == ".trash" })
	if len(entries) != 3 {
		t.Errorf("repos dir holds %d entries, want 3", len(entries))
	}

	// --- custom default branch: HEAD of a clone points to it
	st, m = s.JSON("POST", "/api/v1/repos", alice, map[string]any{"owner": "alice", "name": "trunky", "visibility": "restricted", "default_branch": "trunk"})
	if st != 201 || m["default_branch"] != "trunk" {
		t.Fatalf("create with default branch: %d %v", st, m)
	}
	g := NewGitEnv(t)
	url := s.RepoURL(alice, "alice", "trunky")
	empty := g.Clone(url, "-c", "protocol.version=2")
	if ref := strings.TrimSpace(g.Must(empty, "symbolic-ref", "HEAD")); ref != "refs/heads/trunk" {
		t.Errorf("clone of the empty repo is on %s, want refs/heads/trunk", ref)
	}
	work := filepath.Join(t.TempDir(), "w")
	g.Must("", "init", "-q", "-b", "feature", work)
	g.Must(work, "remote", "add", "origin", url)
	g.Commit(work, "f", "feature\n", "feature")
	g.Must(work, "push", "-q", "origin", "feature")
	g.Must(work, "checkout", "-q", "-b", "trunk")
	trunkHead := g.Commit(work, "t", "trunk\n", "trunk")
	g.Must(work, "push", "-q", "origin", "trunk")
	for _, pv := range []string{"0", "2"} {
		clone := g.Clone(url, "-c", "protocol.version="+pv)
		if ref := strings.TrimSpace(g.Must(clone, "symbolic-ref", "HEAD")); ref != "refs/heads/trunk" {
			t.Errorf("v%s clone checked out %s, want refs/heads/trunk", pv, ref)
		}
		if got := strings.TrimSpace(g.Must(clone, "rev-parse", "HEAD")); got != trunkHead {
			t.Errorf("v%s clone HEAD %s, want %s", pv, got, trunkHead)
		}
	}

	// --- GET and DELETE
	if st, b := s.Do("GET", "/api/v1/repos/alice/proj", bob, nil); true {
		wantAPIError(t, s, "GET restricted repo as another user", st, b, 404)
	}
	if st, b := s.Do("GET", "/api/v1/repos/alice/nosuch", alice, nil); true {
		wantAPIError(t, s, "GET unknown repo", st, b, 404)
	}
	if st, b := s.Do("GET", "/api/v1/repos/alice/x.git", alice, nil); true {
		wantAPIError(t, s, "GET repo with a bad name", st, b, 404)
	}
	if st, b := s.Do("GET", "/api/v1/repos/alice/proj", Cred{}, nil); true {
		wantAPIError(t, s, "GET repo anonymously", st, b, 401)
	}
	if st, b := s.Do("DELETE", "/api/v1/repos/alice/proj", bob, nil); true {
		wantAPIError(t, s, "DELETE someone else's restricted repo", st, b, 404)
	}
	if st, b := s.Do("DELETE", "/api/v1/repos/bob/mine", alice, nil); true {
		wantAPIError(t, s, "DELETE someone else's public repo", st, b, 403)
	}
	_, m = s.JSON("GET", "/api/v1/repos/alice/proj", alice, nil)
	id, _ := m["id"].(float64)
	dir := filepath.Join(s.Data, "repos", strconv.FormatInt(int64(id), 10)+".git")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("repo directory %s: %v", dir, err)
	}
	if st, b := s.Do("DELETE", "/api/v1/repos/alice/proj", alice, nil); st != 204 {
		t.Fatalf("DELETE own repo: %d %s", st, b)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("repo directory survived DELETE: %v", err)
	}
	if st, b := s.Do("GET", "/api/v1/repos/alice/proj", alice, nil); true {
		wantAPIError(t, s, "GET deleted repo", st, b, 404)
	}
	if st, b := s.Do("DELETE", "/api/v1/repos/alice/proj", alice, nil); true {
		wantAPIError(t, s, "DELETE deleted repo", st, b, 404)
	}
	if st, _ := s.JSON("POST", "/api/v1/repos", alice, map[string]any{"owner": "alice", "name": "proj", "visibility": "public"}); st != 201 {
		t.Errorf("recreate a deleted repo's name: %d", st)
	}

	// --- orgs and members
	for _, tc := range []struct {
		what string
		body any
		want int
	}{
		{"bad name", map[string]any{"name": "a/b"}, 400},
		{"ends in .git", map[string]any{"name": "org.git"}, 400},
		{"empty", map[string]any{}, 400},
		{"taken by a user", map[string]any{"name": "ALICE"}, 409},
	} {
		st, b := s.Do("POST", "/api/v1/orgs", alice, tc.body)
		wantAPIError(t, s, "create org: "+tc.what, st, b, tc.want)
	}
	if st, m := s.JSON("POST", "/api/v1/orgs", alice, map[string]any{"name": "Acme"}); st != 201 || m["name"] != "Acme" {
		t.Fatalf("create org: %d %v", st, m)
	}
	if st, b := s.Do("POST", "/api/v1/orgs", bob, map[string]any{"name": "acme"}); true {
		wantAPIError(t, s, "create org: duplicate", st, b, 409)
	}
	for _, tc := range []struct {
		what, path string
		c          Cred
		body       any
		want       int
	}{
		{"bad role", "/api/v1/orgs/acme/members/bob", alice, map[string]any{"role": "king"}, 400},
		{"no role", "/api/v1/orgs/acme/members/bob", alice, map[string]any{}, 400},
		{"not an owner", "/api/v1/orgs/acme/members/bob", bob, map[string]any{"role": "member"}, 403},
		{"unknown user", "/api/v1/orgs/acme/members/nobody", alice, map[string]any{"role": "member"}, 404},
		{"unknown org", "/api/v1/orgs/nope/members/bob", alice, map[string]any{"role": "member"}, 404},
		{"user is not an org", "/api/v1/orgs/alice/members/bob", alice, map[string]any{"role": "member"}, 404},
		{"org as member", "/api/v1/orgs/acme/members/acme", alice, map[string]any{"role": "member"}, 404},
	} {
		st, b := s.Do("PUT", tc.path, tc.c, tc.body)
		wantAPIError(t, s, "set member: "+tc.what, st, b, tc.want)
	}
	if st, b := s.Do("POST", "/api/v1/repos", bob, map[string]any{"owner": "acme", "name": "x", "visibility": "public"}); true {
		wantAPIError(t, s, "create repo in an org one is not a member of", st, b, 403)
	}
	if st, m := s.JSON("PUT", "/api/v1/orgs/acme/members/bob", alice, map[string]any{"role": "owner"}); st != 200 || m["role"] != "owner" {
		t.Fatalf("make bob owner: %d %v", st, m)
	}
	if st, _ := s.JSON("PUT", "/api/v1/orgs/acme/members/admin", bob, map[string]any{"role": "member"}); st != 200 {
		t.Errorf("new owner cannot add members: %d", st)
	}

	// --- tokens
	st, m = s.JSON("POST", "/api/v1/user/tokens", alice, map[string]any{"name": "laptop", "scopes": []string{"repo:read"}})
	if st != 201 {
		t.Fatalf("create token: %d %v", st, m)
	}
	tok, _ := m["token"].(string)
	if !strings.HasPrefix(tok, "gst_") || m["name"] != "laptop" {
		t.Fatalf("token answer %v", m)
	}
	if st, m := s.JSON("GET", "/api/v1/user", Cred{"", tok}, nil); st != 200 || m["name"] != "alice" {
		t.Errorf("new token does not authenticate: %d %v", st, m)
	}
	if r, w := canReadWrite(t, s, Cred{"", tok}, "alice", "trunky"); r != 200 || w != 403 {
		t.Errorf("repo:read API token on git: %d %d", r, w)
	}
	st, m = s.JSON("POST", "/api/v1/user/tokens", alice, map[string]any{"name": "default"})
	if sc, _ := json.Marshal(m["scopes"]); st != 201 || string(sc) != `["repo:read","repo:write"]` {
		t.Errorf("token without scopes: %d scopes %s", st, sc)
	}
	for _, tc := range []struct {
		what string
		c    Cred
		body any
		want int
	}{
		{"unknown scope", alice, map[string]any{"name": "x", "scopes": []string{"repo:all"}}, 400},
		{"builds scope by a non-admin", alice, map[string]any{"name": "x", "scopes": []string{"builds"}}, 403},
		{"admin scope by a non-admin", alice, map[string]any{"name": "x", "scopes": []string{"admin"}}, 403},
		{"with a token", Cred{"", tok}, map[string]any{"name": "x"}, 403},
		{"bad JSON", alice, `{"name":`, 400},
		{"anonymous", Cred{}, map[string]any{"name": "x"}, 401},
	} {
		st, b := s.Do("POST", "/api/v1/user/tokens", tc.c, tc.body)
		wantAPIError(t, s, "create token: "+tc.what, st, b, tc.want)
	}
	if st, _ := s.JSON("POST", "/api/v1/user/tokens", admin, map[string]any{"name": "ci", "scopes": []string{"builds"}}); st != 201 {
		t.Errorf("admin creating a builds token: %d", st)
	}

	// --- user keys
	key := newPubKey(t)
	st, m = s.JSON("POST", "/api/v1/user/keys", alice, map[string]any{"title": "laptop", "key": key})
	if st != 201 || !strings.HasPrefix(m["fingerprint"].(string), "SHA256:") || m["title"] != "laptop" {
		t.Fatalf("add key: %d %v", st, m)
	}
	for _, tc := range []struct {
		what string
		c    Cred
		body any
		want int
	}{
		{"duplicate", alice, map[string]any{"title": "again", "key": key}, 409},
		{"same key for another user", bob, map[string]any{"title": "stolen", "key": key}, 409},
		{"garbage", alice, map[string]any{"title": "x", "key": "ssh-ed25519 garbage"}, 400},
		{"empty", alice, map[string]any{"title": "x", "key": ""}, 400},
		{"two keys", alice, map[string]any{"title": "x", "key": newPubKey(t) + "\n" + newPubKey(t)}, 400},
		{"with options", alice, map[string]any{"title": "x", "key": `command="sh" ` + newPubKey(t)}, 400},
		{"private key", alice, map[string]any{"title": "x", "key": "-----BEGIN OPENSSH PRIVATE KEY-----"}, 400},
		{"read-only token", Cred{"", tok}, map[string]any{"title": "x", "key": newPubKey(t)}, 403},
	} {
		st, b := s.Do("POST", "/api/v1/user/keys", tc.c, tc.body)
		wantAPIError(t, s, "add key: "+tc.what, st, b, tc.want)
	}

	// --- deploy keys
	dkey := newPubKey(t)
	st, m = s.JSON("POST", "/api/v1/repos/alice/trunky/deploy-keys", alice, map[string]any{"title": "ci", "key": dkey})
	if st != 201 || m["read_only"] != true {
		t.Fatalf("add deploy key: %d %v", st, m)
	}
	st, m = s.JSON("POST", "/api/v1/repos/alice/trunky/deploy-keys", alice, map[string]any{"title": "rw", "key": newPubKey(t), "read_only": false})
	if st != 201 || m["read_only"] != false {
		t.Fatalf("add read-write deploy key: %d %v", st, m)
	}
	for _, tc := range []struct {
		what, path string
		c          Cred
		body       any
		want       int
	}{
		{"other user, restricted repo", "/api/v1/repos/alice/trunky/deploy-keys", bob, map[string]any{"title": "x", "key": newPubKey(t)}, 404},
		{"reader of a public repo", "/api/v1/repos/alice/proj/deploy-keys", bob, map[string]any{"title": "x", "key": newPubKey(t)}, 403},
		{"unknown repo", "/api/v1/repos/alice/nosuch/deploy-keys", alice, map[string]any{"title": "x", "key": newPubKey(t)}, 404},
		{"key in use", "/api/v1/repos/alice/trunky/deploy-keys", alice, map[string]any{"title": "x", "key": dkey}, 409},
		{"user's key as deploy key", "/api/v1/repos/alice/trunky/deploy-keys", alice, map[string]any{"title": "x", "key": key}, 409},
		{"bad key", "/api/v1/repos/alice/trunky/deploy-keys", alice, map[string]any{"title": "x", "key": "nope"}, 400},
		{"bad read_only", "/api/v1/repos/alice/trunky/deploy-keys", alice, `{"title":"x","key":"` + newPubKey(t) + `","read_only":"yes"}`, 400},
	} {
		st, b := s.Do("POST", tc.path, tc.c, tc.body)
		wantAPIError(t, s, "add deploy key: "+tc.what, st, b, tc.want)
	}

	// --- unknown endpoints and methods
	if st, b := s.Do("GET", "/api/v1/nope", alice, nil); true {
		wantAPIError(t, s, "unknown endpoint", st, b, 404)
	}
	if st, b := s.Do("PUT", "/api/v1/repos/alice/trunky", alice, nil); st != 405 && st != 404 {
		t.Errorf("PUT repo: %d %s", st, b)
	}
	if st, b := s.Do("GET", "/api/v1/user", Cred{"alice", "wrong-password"}, nil); true {
		wantAPIError(t, s, "wrong password", st, b, 401)
	}
}

// runAdmin runs the admin CLI with args exactly as given (no --data added)
// and returns stdout, stderr and the exit code.
func runAdmin(t *testing.T, stdin string, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(binPath, append([]string{"admin"}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.Env = append(os.Environ(), env...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run admin: %v", err)
	}
	return out.String(), errb.String(), code
}

func TestAdminCLI(t *testing.T) {
	t.Parallel()
	s := StartServer(t) // the CLI works while the server runs
	userOK := func(c Cred) int {
		st, _ := s.Do("GET", "/api/v1/user", c, nil)
		return st
	}

	// user create with a generated password, flags before the positionals.
	out, errOut, code := runAdmin(t, "", nil, "--data", s.Data, "user", "create", "alice")
	m := regexp.MustCompile(`password: (\S+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("user create: exit %d\n%s%s", code, out, errOut)
	}
	pw1 := m[1]
	if st := userOK(Cred{"alice", pw1}); st != 200 {
		t.Fatalf("generated password does not work: %d", st)
	}
	// --password-stdin, flags after and between the positionals, GITSERVER_DATA.
	out, errOut, code = runAdmin(t, "bob-password-1\n", []string{"GITSERVER_DATA=" + s.Data}, "user", "--admin", "create", "bob", "--password-stdin")
	if code != 0 || strings.Contains(out, "bob-password-1") {
		t.Fatalf("user create --password-stdin: exit %d\n%s%s", code, out, errOut)
	}
	if st, m := s.JSON("GET", "/api/v1/user", Cred{"bob", "bob-password-1"}, nil); st != 200 || m["admin"] != true {
		t.Fatalf("bob: %d %v", st, m)
	}
	// Duplicate user, bad name, short password: non-zero with a message.
	for _, tc := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"user", "create", "ALICE"}, "taken"},
		{"", []string{"user", "create", "bad/name"}, "name"},
		{"short\n", []string{"user", "create", "carol", "--password-stdin"}, "password"},
		{"", []string{"user", "create", "carol", "--password-stdin"}, "stdin"},
		{"", []string{"user", "passwd", "nobody"}, "nobody"},
		{"", []string{"token", "create", "alice", "--scope", "repo:all"}, `unknown scope "repo:all"`},
		{"", []string{"token", "create", "alice", "--scope"}, "scope"},
		{"", []string{"frobnicate", "x", "y"}, "unknown command"},
		{"", []string{"token", "create"}, "usage"},
	} {
		out, errOut, code := runAdmin(t, tc.stdin, nil, append(tc.args, "--data", s.Data)...)
		if code == 0 || !strings.Contains(errOut, tc.want) {
			t.Errorf("admin %q: exit %d, stderr %q, want non-zero and %q (stdout %q)", tc.args, code, errOut, tc.want, out)
		}
		if strings.Contains(errOut, "goroutine") || strings.Contains(errOut, "panic") {
			t.Errorf("admin %q: %s", tc.args, errOut)
		}
	}

	// passwd: the old password stops working at once, even though the
	// server cached it, and the new one works.
	for i := 0; i < 2; i++ {
		if st := userOK(Cred{"alice", pw1}); st != 200 {
			t.Fatalf("old password before passwd: %d", st)
		}
	}
	out, errOut, code = runAdmin(t, "", nil, "user", "passwd", "alice", "--data", s.Data)
	m = regexp.MustCompile(`new password for alice: (\S+)`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("passwd: exit %d\n%s%s", code, out, errOut)
	}
	pw2 := m[1]
	if pw2 == pw1 {
		t.Fatal("passwd generated the same password")
	}
	if st := userOK(Cred{"alice", pw1}); st != 401 {
		t.Errorf("old password after passwd: %d, want 401", st)
	}
	if st := userOK(Cred{"alice", pw2}); st != 200 {
		t.Errorf("new password after passwd: %d, want 200", st)
	}
	if _, errOut, code := runAdmin(t, "alice-chosen-pw\n", nil, "--data", s.Data, "user", "passwd", "--password-stdin", "alice"); code != 0 {
		t.Fatalf("passwd --password-stdin: %d %s", code, errOut)
	}
	if userOK(Cred{"alice", pw2}) != 401 || userOK(Cred{"alice", "alice-chosen-pw"}) != 200 {
		t.Errorf("passwd --password-stdin did not take effect")
	}

	// token create: default scopes, explicit scopes, label.
	tokScopes := func(tok string) string {
		st, m := s.JSON("GET", "/api/v1/user", Cred{"", tok}, nil)
		if st != 200 {
			t.Fatalf("token does not authenticate: %d", st)
		}
		b, _ := json.Marshal(m["token_scopes"])
		return string(b)
	}
	out, _, code = runAdmin(t, "", nil, "token", "create", "alice", "--data", s.Data)
	if code != 0 {
		t.Fatalf("token create: %d", code)
	}
	if sc := tokScopes(strings.TrimSpace(out)); sc != `["repo:read","repo:write"]` {
		t.Errorf("default token scopes %s", sc)
	}
	out, _, code = runAdmin(t, "", nil, "--scope", "builds", "token", "--data", s.Data, "create", "bob", "--scope", "repo:read", "--name", "ci")
	if code != 0 {
		t.Fatalf("token create with scopes: %d", code)
	}
	if sc := tokScopes(strings.TrimSpace(out)); sc != `["builds","repo:read"]` {
		t.Errorf("token scopes %s", sc)
	}
	// A token printed once is a single line and nothing else.
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "gst_") {
		t.Errorf("token output %q", out)
	}

	// key add
	keyFile := filepath.Join(t.TempDir(), "id.pub")
	os.WriteFile(keyFile, []byte(newPubKey(t)+"\n"), 0o644)
	if out, errOut, code := runAdmin(t, "", nil, "key", "add", "alice", "--file", keyFile, "--data", s.Data); code != 0 || !strings.Contains(out, "SHA256:") {
		t.Errorf("key add: %d %s %s", code, out, errOut)
	}
	if _, errOut, code := runAdmin(t, "", nil, "key", "add", "bob", "--file", keyFile, "--data", s.Data); code == 0 || !strings.Contains(errOut, "in use") {
		t.Errorf("same key for bob: %d %s", code, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.pub")
	os.WriteFile(bad, []byte("not a key\n"), 0o644)
	if _, errOut, code := runAdmin(t, "", nil, "key", "add", "alice", "--file", bad, "--data", s.Data); code == 0 || !strings.Contains(errOut, "SSH public key") {
		t.Errorf("bad key file: %d %s", code, errOut)
	}
	if _, errOut, code := runAdmin(t, "", nil, "key", "add", "alice", "--data", s.Data); code == 0 || !strings.Contains(errOut, "--file") {
		t.Errorf("key add without --file: %d %s", code, errOut)
	}
}
