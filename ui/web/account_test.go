package web

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"gitserver/store"
)

const (
	testKey1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIP9ivANantNiwjzvvWxjNzHG2N13u8VIKo+/9Dc4jGdi k1"
	testKey2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMXtLDQVxHGzbhTeXgdjK8EjXxne6d27rdy94iKYSYlz k2"
)

// audited reports whether the audit log has an event action on target by
// actor.
func (e *env) audited(actor, action, target string) bool {
	e.t.Helper()
	evs, err := e.store.AuditEvents(context.Background(), 100)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.Actor == actor && ev.Action == action && ev.Target == target {
			return true
		}
	}
	return false
}

// settingsPost posts form to path with the settings page's CSRF token.
func (c *client) settingsPost(path string, form url.Values) resp {
	c.e.t.Helper()
	pg := c.do("GET", "/user/settings", nil, nil)
	if pg.status != 200 {
		c.e.t.Fatalf("GET /user/settings = %d", pg.status)
	}
	if form == nil {
		form = url.Values{}
	}
	form.Set("csrf", csrfOf(c.e.t, pg.body))
	return c.do("POST", path, form, nil)
}

var (
	newPassword = regexp.MustCompile(`Your new password: <code>([0-9a-f]+)</code>`)
	newToken    = regexp.MustCompile(`Your new token: <code>([^<]+)</code>`)
)

func TestSettingsSignedOut(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	c := e.client()
	if r := c.do("GET", "/user/settings", nil, nil); r.status != http.StatusSeeOther || r.header.Get("Location") != "/login" {
		t.Fatalf("signed out GET = %d %s", r.status, r.header.Get("Location"))
	}
	if r := c.do("POST", "/user/settings/password", url.Values{"csrf": {"x"}}, nil); r.status != http.StatusForbidden {
		t.Fatalf("signed out POST = %d", r.status)
	}
}

func TestSettingsRegeneratePassword(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	c, other := e.client(), e.client()
	c.mustSignIn("alice")
	other.mustSignIn("alice")
	old := c.cookie(sessionCookie)

	// Without the CSRF token: refused, nothing changed.
	if r := c.do("POST", "/user/settings/password", url.Values{}, nil); r.status != http.StatusForbidden {
		t.Fatalf("no CSRF = %d", r.status)
	}
	if _, err := e.store.CheckPassword(ctx, "alice", "password-alice"); err != nil {
		t.Fatalf("password changed without CSRF: %v", err)
	}

	r := c.settingsPost("/user/settings/password", nil)
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("regenerate = %d %q\n%s", r.status, r.header.Get("Cache-Control"), r.body)
	}
	checkHeaders(t, r)
	m := newPassword.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no password shown:\n%s", r.body)
	}
	if _, err := e.store.CheckPassword(ctx, "alice", m[1]); err != nil {
		t.Fatalf("the new password does not work: %v", err)
	}
	if _, err := e.store.CheckPassword(ctx, "alice", "password-alice"); err == nil {
		t.Fatal("the old password still works")
	}
	if !e.audited("alice", "user.passwd", "alice") {
		t.Error("not audited")
	}
	// The session rotated: this browser stays signed in with a new id;
	// the other session ended.
	if nw := c.cookie(sessionCookie); nw == "" || nw == old {
		t.Fatalf("session not rotated: %q -> %q", old, nw)
	}
	g := c.do("GET", "/user/settings", nil, nil)
	if g.status != 200 {
		t.Fatalf("signed out after regenerating: %d", g.status)
	}
	if strings.Contains(g.body, m[1]) || strings.Contains(g.body, "Your new password") {
		t.Fatal("the password shows again on reload")
	}
	if r := other.do("GET", "/user/settings", nil, nil); r.status != http.StatusSeeOther {
		t.Fatalf("another session survived: %d", r.status)
	}
	// The new form token works (the page answered with the new session's).
	if r := c.do("POST", "/user/settings/tokens", url.Values{"csrf": {csrfOf(t, r.body)}, "name": {"x"}, "scope": {"repo:read"}}, nil); r.status != 200 {
		t.Fatalf("form of the regenerate answer = %d", r.status)
	}
	if e.client().signIn("alice", m[1]).status != http.StatusSeeOther {
		t.Fatal("cannot sign in with the new password")
	}
}

func TestSettingsTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	c := e.client()
	c.mustSignIn("alice")

	if r := c.do("POST", "/user/settings/tokens", url.Values{"name": {"ci"}, "scope": {"repo:read"}}, nil); r.status != http.StatusForbidden {
		t.Fatalf("no CSRF = %d", r.status)
	}
	if toks, _ := e.store.Tokens(ctx, e.users["alice"].ID); len(toks) != 0 {
		t.Fatalf("token created without CSRF: %v", toks)
	}

	page := c.do("GET", "/user/settings", nil, nil)
	if strings.Contains(page.body, `value="admin"`) || strings.Contains(page.body, `value="builds"`) {
		t.Error("a non-admin is offered the admin or builds scope")
	}
	r := c.settingsPost("/user/settings/tokens", url.Values{"name": {"ci"}, "scope": {"repo:read", "repo:write"}})
	if r.status != 200 || r.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create = %d\n%s", r.status, r.body)
	}
	m := newToken.FindStringSubmatch(r.body)
	if m == nil {
		t.Fatalf("no token shown:\n%s", r.body)
	}
	_, tok, err := e.store.CheckToken(ctx, "alice", m[1])
	if err != nil || tok.Name != "ci" || store.JoinScopes(tok.Scopes) != "repo:read repo:write" {
		t.Fatalf("token = %+v, %v", tok, err)
	}
	if !e.audited("alice", "token.create", "alice") {
		t.Error("not audited")
	}
	g := c.do("GET", "/user/settings", nil, nil)
	if strings.Contains(g.body, m[1]) || !strings.Contains(g.body, "repo:read repo:write") || !strings.Contains(g.body, ">ci<") {
		t.Fatalf("reload shows the secret or not the token:\n%s", g.body)
	}

	// A scope the user may not hold: the page again with the message.
	if r := c.settingsPost("/user/settings/tokens", url.Values{"name": {"adm"}, "scope": {"admin"}}); r.status < 400 || r.status >= 500 || !strings.Contains(r.body, `class="error"`) {
		t.Fatalf("admin scope = %d\n%s", r.status, r.body)
	}

	// Another user's token: 404, nothing changed.
	_, btok, err := e.store.CreateToken(ctx, e.users["bob"].ID, "bobs", []store.Scope{store.ScopeRepoRead})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.settingsPost(fmt.Sprintf("/user/settings/tokens/%d/revoke", btok.ID), nil); r.status != http.StatusNotFound {
		t.Fatalf("revoke bob's token = %d", r.status)
	}
	if toks, _ := e.store.Tokens(ctx, e.users["bob"].ID); len(toks) != 1 {
		t.Fatal("bob's token was revoked")
	}

	if r := c.do("POST", fmt.Sprintf("/user/settings/tokens/%d/revoke", tok.ID), url.Values{}, nil); r.status != http.StatusForbidden {
		t.Fatalf("revoke without CSRF = %d", r.status)
	}
	if r := c.settingsPost(fmt.Sprintf("/user/settings/tokens/%d/revoke", tok.ID), nil); r.status != http.StatusSeeOther {
		t.Fatalf("revoke = %d\n%s", r.status, r.body)
	}
	if _, _, err := e.store.CheckToken(ctx, "alice", m[1]); err == nil {
		t.Fatal("a revoked token still works")
	}
	if !e.audited("alice", "token.revoke", "alice") {
		t.Error("revoke not audited")
	}
}

func TestSettingsAdminScopes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	if _, err := e.store.CreateUser(context.Background(), "root", "password-root", true); err != nil {
		t.Fatal(err)
	}
	c := e.client()
	c.mustSignIn("root")
	page := c.do("GET", "/user/settings", nil, nil)
	if !strings.Contains(page.body, `value="admin"`) || !strings.Contains(page.body, `value="builds"`) {
		t.Fatalf("an admin is not offered the admin and builds scopes:\n%s", page.body)
	}
}

func TestSettingsKeys(t *testing.T) {
	t.Parallel()
	e := newEnv(t, false)
	ctx := context.Background()
	c := e.client()
	c.mustSignIn("alice")
	alice := e.users["alice"].ID

	if r := c.do("POST", "/user/settings/keys", url.Values{"title": {"laptop"}, "key": {testKey1}}, nil); r.status != http.StatusForbidden {
		t.Fatalf("no CSRF = %d", r.status)
	}
	if r := c.settingsPost("/user/settings/keys", url.Values{"title": {"laptop"}, "key": {testKey1}}); r.status != http.StatusSeeOther {
		t.Fatalf("add = %d\n%s", r.status, r.body)
	}
	keys, _ := e.store.UserKeys(ctx, alice)
	if len(keys) != 1 || keys[0].Title != "laptop" {
		t.Fatalf("keys = %+v", keys)
	}
	if !e.audited("alice", "key.add", "alice") {
		t.Error("not audited")
	}
	g := c.do("GET", "/user/settings", nil, nil)
	if !strings.Contains(g.body, strings.ReplaceAll(keys[0].Fingerprint, "+", "&#43;")) || !strings.Contains(g.body, "laptop") {
		t.Fatalf("key not listed:\n%s", g.body)
	}
	// Errors re-render with the message and the form filled.
	if r := c.settingsPost("/user/settings/keys", url.Values{"title": {"dup"}, "key": {testKey1}}); r.status < 400 || r.status >= 500 || !strings.Contains(r.body, `class="error"`) {
		t.Fatalf("duplicate = %d\n%s", r.status, r.body)
	}
	if r := c.settingsPost("/user/settings/keys", url.Values{"title": {"bad"}, "key": {"ssh-rsa nope"}}); r.status != http.StatusBadRequest ||
		!strings.Contains(r.body, `class="error"`) || !strings.Contains(r.body, "ssh-rsa nope") {
		t.Fatalf("bad key = %d\n%s", r.status, r.body)
	}
	if keys, _ := e.store.UserKeys(ctx, alice); len(keys) != 1 {
		t.Fatalf("keys = %+v", keys)
	}

	// Another user's key: 404, nothing changed.
	bk, err := e.store.AddKey(ctx, store.NewKey{UserID: e.users["bob"].ID, Title: "bobs", Fingerprint: "SHA256:bob", PublicKey: strings.TrimSuffix(testKey2, " k2")})
	if err != nil {
		t.Fatal(err)
	}
	if r := c.settingsPost(fmt.Sprintf("/user/settings/keys/%d/delete", bk.ID), nil); r.status != http.StatusNotFound {
		t.Fatalf("delete bob's key = %d", r.status)
	}
	if keys, _ := e.store.UserKeys(ctx, e.users["bob"].ID); len(keys) != 1 {
		t.Fatal("bob's key was deleted")
	}
	if r := c.do("POST", fmt.Sprintf("/user/settings/keys/%d/delete", keys[0].ID), url.Values{}, nil); r.status != http.StatusForbidden {
		t.Fatalf("delete without CSRF = %d", r.status)
	}
	if r := c.settingsPost(fmt.Sprintf("/user/settings/keys/%d/delete", keys[0].ID), nil); r.status != http.StatusSeeOther {
		t.Fatalf("delete = %d\n%s", r.status, r.body)
	}
	if keys, _ := e.store.UserKeys(ctx, alice); len(keys) != 0 {
		t.Fatalf("key not deleted: %+v", keys)
	}
	if !e.audited("alice", "key.delete", "alice") {
		t.Error("delete not audited")
	}
}
