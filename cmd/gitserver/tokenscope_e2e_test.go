package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestBuildsTokenOnlyForAdminsE2E: docs/api.md §2, "only admins hold it,
// whether the token comes from the CLI or the API".
func TestBuildsTokenOnlyForAdminsE2E(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	alice := Cred{"alice", s.CreateUser("alice", false)}
	for _, scope := range []string{"builds", "admin"} {
		out, errOut, code := runAdmin(t, "", nil, "token", "create", "alice", "--scope", scope, "--data", s.Data)
		if code == 0 || strings.TrimSpace(out) != "" || !strings.Contains(errOut, "only admins") || !strings.Contains(errOut, scope) {
			t.Errorf("CLI %s token for a non-admin: exit %d, stdout %q, stderr %q; want a refusal", scope, code, out, errOut)
		}
		st, body := s.Do("POST", "/api/v1/user/tokens", alice, map[string]any{"name": "x", "scopes": []string{scope}})
		if st != http.StatusForbidden || !strings.Contains(string(body), `"forbidden"`) || !strings.Contains(string(body), "only admins") {
			t.Errorf("API %s token for a non-admin: %d %s; want 403 forbidden", scope, st, body)
		}
	}
	if out, errOut, code := runAdmin(t, "", nil, "token", "create", "alice", "--scope", "repo:read", "--data", s.Data); code != 0 || !strings.HasPrefix(out, "gst_") {
		t.Errorf("CLI repo:read token for a non-admin: %d %s", code, errOut)
	}
	// Admins get them both ways, and they claim.
	cliTok := s.Token("admin", "builds")
	st, m := s.JSON("POST", "/api/v1/user/tokens", admin, map[string]any{"name": "ci", "scopes": []string{"builds"}})
	if st != http.StatusCreated {
		t.Fatalf("API builds token for admin: %d %v", st, m)
	}
	for _, tok := range []string{cliTok, jsonStr(m, "token")} {
		if st, m := claimBuild(t, s, tok, "w", 0, 60); st != http.StatusNoContent {
			t.Errorf("claim with an admin's builds token: %d %v, want 204 (nothing queued)", st, m)
		}
	}
}
