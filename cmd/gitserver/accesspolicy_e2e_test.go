package main

// End-to-end tests of the one access policy (gitserver/access): git and the
// JSON API give the same answers, and the admin and builds scopes mean the
// same through both (docs/api.md §4, §5 and §7).

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// accessClass reduces a status to what the access policy decided:
// "ok", "hidden" (404, or 401 for anonymous: existence not revealed) or
// "forbidden" (403).
func accessClass(status int) string {
	switch status {
	case http.StatusOK:
		return "ok"
	case http.StatusNotFound, http.StatusUnauthorized:
		return "hidden"
	case http.StatusForbidden:
		return "forbidden"
	}
	return fmt.Sprintf("status %d", status)
}

// lsRemote runs the real `git ls-remote` as c and reports whether it worked.
func lsRemote(t *testing.T, s *TestServer, c Cred, owner, name string) bool {
	t.Helper()
	g := NewGitEnv(t)
	_, err := g.RunEnv("", []string{"GIT_TERMINAL_PROMPT=0"}, "ls-remote", s.RepoURL(c, owner, name))
	return err == nil
}

// TestAccessBuildsScope: a builds token (an admin's) works the build queue
// and reads every build, but reads no repository, through the API as
// through git (it clones with its builds' clone tokens). Before the one
// policy, GET /api/v1/repos/{owner}/{name} and .../versions answered it
// 200 for every repository while git answered 404.
func TestAccessBuildsScope(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	alice := Cred{"alice", s.CreateUser("alice", false)}
	carol := Cred{"carol", s.CreateUser("carol", false)}
	s.CreateRepo(alice, "alice", "priv", "restricted")
	seedRepo(t, s, alice, "alice", "priv")
	builds := s.Builds(alice, "alice", "priv")
	if len(builds) != 1 {
		t.Fatalf("builds after the first push: %v", builds)
	}
	buildPath := fmt.Sprintf("/api/v1/builds/%v", builds[0]["id"])
	bt := Cred{Secret: s.Token("admin", "builds")}

	// Repository code and metadata: hidden, through git and the API.
	if r, w := canReadWrite(t, s, bt, "alice", "priv"); r != 404 || w != 404 {
		t.Errorf("builds token over git: read %d write %d, want 404 404", r, w)
	}
	if lsRemote(t, s, bt, "alice", "priv") {
		t.Error("builds token: git ls-remote of a restricted repository worked")
	}
	for _, path := range []string{"/api/v1/repos/alice/priv", "/api/v1/repos/alice/priv/versions", "/api/v1/repos/alice/priv/deploy-keys"} {
		st, body := s.Do("GET", path, bt, nil)
		wantAPIError(t, s, "builds token GET "+path, st, body, http.StatusNotFound)
	}
	// Builds: the queue's and each repository's, the same way.
	for _, path := range []string{buildPath, "/api/v1/repos/alice/priv/builds"} {
		if st, body := s.Do("GET", path, bt, nil); st != http.StatusOK || !strings.Contains(string(body), "alice/priv") {
			t.Errorf("builds token GET %s: %d %s, want 200 with the build", path, st, body)
		}
	}
	// Without the builds scope, a build is as hidden as its repository:
	// GET /builds/{id} and the repository's builds list answer alike.
	carolRead := Cred{Secret: s.Token("carol", "repo:read")}
	for _, c := range []Cred{carol, carolRead} {
		for _, path := range []string{buildPath, "/api/v1/repos/alice/priv/builds"} {
			st, body := s.Do("GET", path, c, nil)
			wantAPIError(t, s, "non-member GET "+path, st, body, http.StatusNotFound)
		}
	}
	for _, c := range []Cred{alice, {Secret: s.Token("alice", "repo:read")}, {"admin", s.AdminPassword}} {
		for _, path := range []string{buildPath, "/api/v1/repos/alice/priv/builds"} {
			if st, body := s.Do("GET", path, c, nil); st != http.StatusOK {
				t.Errorf("%s GET %s: %d %s, want 200", c.User, path, st, body)
			}
		}
	}
	// And the builds token still works the queue.
	if st, m := claimBuild(t, s, bt.Secret, "w", 0, 60); st != http.StatusOK || jsonStr(m, "repo") != "alice/priv" {
		t.Errorf("claim with the builds token: %d %v", st, m)
	}
}

// TestAccessAdminScopeToken: a token with only the admin scope, held by an
// admin, acts as the admin everywhere. Before the one policy it could
// create a repository (for anyone) that it then could neither clone,
// push to, nor delete.
func TestAccessAdminScopeToken(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	s.CreateUser("alice", false)
	at := Cred{Secret: s.Token("admin", "admin")}
	for _, full := range []string{"admin/mine", "alice/made"} {
		owner, name, _ := strings.Cut(full, "/")
		s.CreateRepo(at, owner, name, "restricted")
		if r, w := canReadWrite(t, s, at, owner, name); r != 200 || w != 200 {
			t.Errorf("admin-scope token on %s it created: git read %d write %d, want 200 200", full, r, w)
		}
		if cloned, pushed := gitReadWrite(t, s, at, owner, name); !cloned || !pushed {
			t.Errorf("admin-scope token on %s: cloned %v pushed %v, want both", full, cloned, pushed)
		}
		if st, m := s.JSON("GET", "/api/v1/repos/"+full, at, nil); st != 200 || m["full_name"] != full {
			t.Errorf("admin-scope token GET %s: %d %v", full, st, m)
		}
		if st, b := s.Do("GET", "/api/v1/repos/"+full+"/deploy-keys", at, nil); st != 200 {
			t.Errorf("admin-scope token lists %s's deploy keys: %d %s", full, st, b)
		}
	}
	if st, b := s.Do("DELETE", "/api/v1/repos/alice/made", at, nil); st != http.StatusNoContent {
		t.Errorf("admin-scope token deletes alice/made: %d %s, want 204", st, b)
	}
	// The admin scope of a token whose holder is no admin is nothing: only
	// admins may hold it (TestBuildsTokenOnlyForAdminsE2E).
}

// TestAccessGitAndAPIAgree asks each actor, for each kind of repository,
// through git (the smart-HTTP advertisements of upload-pack and
// receive-pack) and through the API (GET the repository, which needs read;
// GET its deploy keys, which needs write): the answers agree.
func TestAccessGitAndAPIAgree(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	alice := Cred{"alice", s.CreateUser("alice", false)}
	bob := Cred{"bob", s.CreateUser("bob", false)}
	carol := Cred{"carol", s.CreateUser("carol", false)}
	if st, m := s.JSON("POST", "/api/v1/orgs", alice, map[string]any{"name": "acme"}); st != 201 {
		t.Fatalf("create org: %d %v", st, m)
	}
	if st, m := s.JSON("PUT", "/api/v1/orgs/acme/members/bob", alice, map[string]any{"role": "member"}); st != 200 {
		t.Fatalf("add member: %d %v", st, m)
	}
	repos := []string{"alice/pub", "alice/priv", "acme/opub", "acme/opriv"}
	for _, full := range repos {
		owner, name, _ := strings.Cut(full, "/")
		vis := "restricted"
		if strings.Contains(name, "pub") {
			vis = "public"
		}
		s.CreateRepo(alice, owner, name, vis)
	}
	actors := []struct {
		name string
		c    Cred
	}{
		{"anonymous", Cred{}},
		{"owner", alice},
		{"org member", bob},
		{"other user", carol},
		{"admin", admin},
		{"admin token admin", Cred{Secret: s.Token("admin", "admin")}},
		{"admin token repo", Cred{Secret: s.Token("admin", "repo:read", "repo:write")}},
		{"owner token repo:read", Cred{Secret: s.Token("alice", "repo:read")}},
		{"other token repo:read", Cred{Secret: s.Token("carol", "repo:read")}},
		{"admin token builds", Cred{Secret: s.Token("admin", "builds")}},
	}
	for _, a := range actors {
		for _, full := range repos {
			owner, name, _ := strings.Cut(full, "/")
			gr, gw := canReadWrite(t, s, a.c, owner, name)
			ar, _ := s.Do("GET", "/api/v1/repos/"+full, a.c, nil)
			aw, _ := s.Do("GET", "/api/v1/repos/"+full+"/deploy-keys", a.c, nil)
			if accessClass(gr) != accessClass(ar) || accessClass(gw) != accessClass(aw) {
				t.Errorf("%s on %s: git read %d write %d, API read %d write %d", a.name, full, gr, gw, ar, aw)
			}
		}
	}
	// The real client, for the credentials whose answers the one policy
	// changed: it agrees with the advertisements above.
	for _, a := range actors[5:] {
		for _, full := range []string{"alice/priv", "acme/opriv"} {
			owner, name, _ := strings.Cut(full, "/")
			ar, _ := s.Do("GET", "/api/v1/repos/"+full, a.c, nil)
			if got := lsRemote(t, s, a.c, owner, name); got != (ar == http.StatusOK) {
				t.Errorf("%s on %s: git ls-remote worked %v, API GET %d", a.name, full, got, ar)
			}
		}
	}
}
