package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"gitserver/store/sqlite"
)

// Taking access back (docs/api.md, "Taking access back"): every revocation
// takes effect on the very next request, through the real git and OpenSSH
// clients and the API.

// cloneFails clones url with g and expects a failure whose output holds want.
func cloneFails(t *testing.T, g *GitEnv, url, want string) {
	t.Helper()
	out := gitFails(t, g, "", "clone", "-q", url, filepath.Join(t.TempDir(), "clone"))
	if !strings.Contains(out, want) {
		t.Fatalf("clone of %s failed with %q, want it to say %q", url, out, want)
	}
}

// auditActions returns "actor action target" of the newest audit events.
func auditActions(t *testing.T, s *TestServer) string {
	t.Helper()
	db, err := sqlite.Open(context.Background(), filepath.Join(s.Data, "gitserver.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ev, err := db.AuditEvents(context.Background(), 200)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range ev {
		fmt.Fprintf(&b, "%s %s %s\n", e.Actor, e.Action, e.Target)
	}
	return b.String()
}

func wantAudit(t *testing.T, log string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(log, l+"\n") {
			t.Errorf("audit log lacks %q:\n%s", l, log)
		}
	}
}

func TestTakingAccessBackHTTP(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	root := Cred{"admin", s.AdminPassword}
	alicePW := s.CreateUser("alice", false)
	alice := Cred{"alice", alicePW}
	bob := Cred{"bob", s.CreateUser("bob", false)}
	s.CreateRepo(alice, "alice", "proj", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(alice, "alice", "proj"))
	g.Commit(work, "README", "hi\n", "first")
	g.Must(work, "push", "-q", "origin", "master")

	// --- Tokens: listed without secrets, revoked through the API. ---
	status, m := s.JSON("POST", "/api/v1/user/tokens", alice, map[string]any{"name": "laptop"})
	if status != http.StatusCreated {
		t.Fatalf("create token: %d %v", status, m)
	}
	secret, id := m["token"].(string), int64(m["id"].(float64))
	tok := Cred{"", secret}
	g.Clone(s.RepoURL(tok, "alice", "proj"))
	status, body := s.Do("GET", "/api/v1/user/tokens", alice, nil)
	var list []map[string]any
	json.Unmarshal(body, &list)
	if status != http.StatusOK || len(list) != 1 || list[0]["name"] != "laptop" || int64(list[0]["id"].(float64)) != id ||
		list[0]["created_at"] == nil || strings.Contains(string(body), secret) || list[0]["token"] != nil {
		t.Fatalf("GET /user/tokens = %d %s", status, body)
	}
	if status, _ := s.Do("DELETE", fmt.Sprintf("/api/v1/user/tokens/%d", id), bob, nil); status != http.StatusNotFound {
		t.Fatalf("bob revoking alice's token: %d, want 404", status)
	}
	if status, b := s.Do("DELETE", fmt.Sprintf("/api/v1/user/tokens/%d", id), alice, nil); status != http.StatusNoContent {
		t.Fatalf("revoke token: %d %s", status, b)
	}
	cloneFails(t, g, s.RepoURL(tok, "alice", "proj"), "Authentication failed")
	if status, _ := s.Do("GET", "/api/v1/user", tok, nil); status != http.StatusUnauthorized {
		t.Fatalf("API with a revoked token: %d, want 401", status)
	}

	// --- Tokens through the CLI. ---
	cliTok := Cred{"", s.Token("alice")}
	out, err := s.Admin("", "token", "list", "alice")
	if err != nil || !strings.Contains(out, "repo:read,repo:write") || strings.Contains(out, cliTok.Secret) || strings.Contains(out, "laptop") {
		t.Fatalf("admin token list = %q, %v", out, err)
	}
	fields := strings.Fields(strings.Split(strings.TrimSpace(out), "\n")[1])
	if out, err := s.Admin("", "token", "revoke", "bob", fields[0]); err == nil {
		t.Fatalf("revoking alice's token as bob's succeeded: %q", out)
	}
	if status, _ := s.Do("GET", "/api/v1/user", cliTok, nil); status != http.StatusOK {
		t.Fatalf("CLI token before revocation: %d", status)
	}
	if out, err := s.Admin("", "token", "revoke", "alice", fields[0]); err != nil || !strings.Contains(out, "revoked") {
		t.Fatalf("admin token revoke = %q, %v", out, err)
	}
	if status, _ := s.Do("GET", "/api/v1/user", cliTok, nil); status != http.StatusUnauthorized {
		t.Fatalf("API with a token revoked by the CLI: %d, want 401", status)
	}
	cloneFails(t, g, s.RepoURL(cliTok, "alice", "proj"), "Authentication failed")

	// --- A password change ends the old password at once, cache or not. ---
	if status, _ := s.Do("GET", "/api/v1/user", alice, nil); status != http.StatusOK {
		t.Fatal("sign-in before the password change failed")
	}
	g.Clone(s.RepoURL(alice, "alice", "proj")) // the cache is warm
	if _, err := s.Admin("a-brand-new-password\n", "user", "passwd", "alice", "--password-stdin"); err != nil {
		t.Fatal(err)
	}
	if status, _ := s.Do("GET", "/api/v1/user", alice, nil); status != http.StatusUnauthorized {
		t.Fatalf("old password after a change: %d, want 401", status)
	}
	cloneFails(t, g, s.RepoURL(alice, "alice", "proj"), "Authentication failed")
	alice = Cred{"alice", "a-brand-new-password"}
	g.Clone(s.RepoURL(alice, "alice", "proj"))

	// --- Organisations keep an owner; a removed member loses access. ---
	if status, m := s.JSON("POST", "/api/v1/orgs", alice, map[string]any{"name": "acme"}); status != http.StatusCreated {
		t.Fatalf("create org: %d %v", status, m)
	}
	s.CreateRepo(alice, "acme", "secret", "restricted")
	ow := g.Init(s.RepoURL(alice, "acme", "secret"))
	g.Commit(ow, "f", "x\n", "c")
	g.Must(ow, "push", "-q", "origin", "master")
	if status, m := s.JSON("PUT", "/api/v1/orgs/acme/members/bob", alice, map[string]any{"role": "member"}); status != http.StatusOK {
		t.Fatalf("add bob: %d %v", status, m)
	}
	g.Clone(s.RepoURL(bob, "acme", "secret"))
	if status, m := s.JSON("PUT", "/api/v1/orgs/acme/members/alice", alice, map[string]any{"role": "member"}); status != http.StatusConflict {
		t.Fatalf("sole owner demoting herself: %d %v, want 409", status, m)
	}
	if status, m := s.JSON("DELETE", "/api/v1/orgs/acme/members/alice", alice, nil); status != http.StatusConflict {
		t.Fatalf("sole owner leaving: %d %v, want 409", status, m)
	}
	if status, _ := s.Do("DELETE", "/api/v1/orgs/acme/members/alice", bob, nil); status != http.StatusForbidden {
		t.Fatalf("a member removing an owner: %d, want 403", status)
	}
	if status, b := s.Do("DELETE", "/api/v1/orgs/acme/members/bob", alice, nil); status != http.StatusNoContent {
		t.Fatalf("remove bob: %d %s", status, b)
	}
	cloneFails(t, g, s.RepoURL(bob, "acme", "secret"), "not found")
	if status, _ := s.Do("DELETE", "/api/v1/orgs/acme/members/bob", alice, nil); status != http.StatusNotFound {
		t.Fatalf("removing a non-member: %d, want 404", status)
	}
	// A member may leave on their own.
	s.JSON("PUT", "/api/v1/orgs/acme/members/bob", alice, map[string]any{"role": "member"})
	if status, b := s.Do("DELETE", "/api/v1/orgs/acme/members/bob", bob, nil); status != http.StatusNoContent {
		t.Fatalf("bob leaving: %d %s", status, b)
	}

	// --- Disabling an account: password (cache warm), token, git and API. ---
	bobTok := Cred{"", s.Token("bob")}
	s.CreateRepo(bob, "bob", "b", "restricted")
	bw := g.Init(s.RepoURL(bob, "bob", "b"))
	g.Commit(bw, "f", "x\n", "c")
	g.Must(bw, "push", "-q", "origin", "master")
	g.Clone(s.RepoURL(bobTok, "bob", "b"))
	if status, m := s.JSON("PATCH", "/api/v1/admin/users/bob", alice, map[string]any{"disabled": true}); status != http.StatusForbidden {
		t.Fatalf("a non-admin disabling bob: %d %v, want 403", status, m)
	}
	status, m = s.JSON("PATCH", "/api/v1/admin/users/bob", root, map[string]any{"disabled": true})
	if status != http.StatusOK || m["disabled"] != true || m["name"] != "bob" {
		t.Fatalf("disable bob: %d %v", status, m)
	}
	for _, c := range []Cred{bob, bobTok} {
		if status, _ := s.Do("GET", "/api/v1/user", c, nil); status != http.StatusUnauthorized {
			t.Fatalf("API as disabled bob (%v): %d, want 401", c.User != "", status)
		}
		cloneFails(t, g, s.RepoURL(c, "bob", "b"), "Authentication failed")
	}
	if out, err := s.Admin("", "user", "enable", "bob"); err != nil || !strings.Contains(out, "enabled bob") {
		t.Fatalf("admin user enable = %q, %v", out, err)
	}
	for _, c := range []Cred{bob, bobTok} {
		if status, _ := s.Do("GET", "/api/v1/user", c, nil); status != http.StatusOK {
			t.Fatalf("API as re-enabled bob: %d", status)
		}
		g.Clone(s.RepoURL(c, "bob", "b"))
	}
	if out, err := s.Admin("", "user", "disable", "bob"); err != nil || !strings.Contains(out, "disabled bob") {
		t.Fatalf("admin user disable = %q, %v", out, err)
	}
	if status, _ := s.Do("GET", "/api/v1/user", bob, nil); status != http.StatusUnauthorized {
		t.Fatalf("API as bob disabled by the CLI: %d, want 401", status)
	}
	if status, m := s.JSON("PATCH", "/api/v1/admin/users/bob", root, map[string]any{"disabled": false}); status != http.StatusOK || m["disabled"] != false {
		t.Fatalf("enable bob: %d %v", status, m)
	}

	// --- Nobody locks the server out: the last enabled admin stays. ---
	if status, m := s.JSON("PATCH", "/api/v1/admin/users/admin", root, map[string]any{"disabled": true}); status != http.StatusConflict {
		t.Fatalf("disabling the only admin: %d %v, want 409", status, m)
	}
	if _, err := s.Admin("", "user", "disable", "admin"); err == nil || !strings.Contains(err.Error(), "only enabled admin") {
		t.Fatalf("admin user disable admin: %v, want a refusal", err)
	}
	s.CreateUser("root2", true)
	if status, m := s.JSON("PATCH", "/api/v1/admin/users/admin", root, map[string]any{"disabled": true}); status != http.StatusOK {
		t.Fatalf("disabling admin while root2 is enabled: %d %v", status, m)
	}
	if status, _ := s.Do("GET", "/api/v1/user", root, nil); status != http.StatusUnauthorized {
		t.Fatalf("disabled admin signed in: %d", status)
	}
	if status, m := s.JSON("PATCH", "/api/v1/admin/users/nobody", Cred{"root2", "pw-root2-secret"}, map[string]any{"disabled": true}); status != http.StatusNotFound {
		t.Fatalf("disabling an unknown user: %d %v", status, m)
	}

	wantAudit(t, auditActions(t, s),
		"alice token.revoke alice", "cli token.revoke alice", "cli user.passwd alice",
		"alice org.member.remove acme", "bob org.member.remove acme",
		"admin user.disable bob", "cli user.enable bob", "cli user.disable bob", "admin user.enable bob",
		"admin user.disable admin")
}

func TestTakingAccessBackSSH(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	root := Cred{"admin", s.AdminPassword}
	bob := Cred{"bob", s.CreateUser("bob", false)}
	s.CreateRepo(bob, "bob", "proj", "restricted")
	g := NewGitEnv(t)
	work := g.Init(s.RepoURL(bob, "bob", "proj"))
	g.Commit(work, "README", "hi\n", "first")
	g.Must(work, "push", "-q", "origin", "master")
	url := sshURL(t, s, "bob", "proj")

	key := newSSHKey(t, "bob")
	k := addUserKey(t, s, bob, "laptop", key.Text)
	deploy := newSSHKey(t, "deploy")
	dk := addDeployKey(t, s, bob, "bob", "proj", deploy, nil)
	gk := sshGit(t, sshOptions(key.Priv))
	gd := sshGit(t, sshOptions(deploy.Priv))
	cloneT(t, gk, url)
	cloneT(t, gd, url)

	// A disabled account's SSH key is refused on the next connection; the
	// repository's deploy key keeps working.
	if status, m := s.JSON("PATCH", "/api/v1/admin/users/bob", root, map[string]any{"disabled": true}); status != http.StatusOK {
		t.Fatalf("disable bob: %d %v", status, m)
	}
	cloneFails(t, gk, url, "Permission denied")
	cloneT(t, gd, url)
	if _, err := s.Admin("", "user", "enable", "bob"); err != nil {
		t.Fatal(err)
	}
	cloneT(t, gk, url)

	// A deleted user key and a deleted deploy key stop working at once.
	if status, b := s.Do("DELETE", fmt.Sprintf("/api/v1/user/keys/%d", int64(k["id"].(float64))), bob, nil); status != http.StatusNoContent {
		t.Fatalf("delete key: %d %s", status, b)
	}
	cloneFails(t, gk, url, "Permission denied")
	if status, b := s.Do("DELETE", fmt.Sprintf("/api/v1/repos/bob/proj/deploy-keys/%d", int64(dk["id"].(float64))), bob, nil); status != http.StatusNoContent {
		t.Fatalf("delete deploy key: %d %s", status, b)
	}
	cloneFails(t, gd, url, "Permission denied")

	wantAudit(t, auditActions(t, s), "admin user.disable bob", "cli user.enable bob", "bob key.delete bob", "bob deploy_key.delete bob/proj")
}
