package service_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"gitserver/gitserver/access"
	"gitserver/gitserver/service"
	"gitserver/store"
	"gitserver/store/sqlite"
)

// fakeFS is a RepoFS that records what it was asked and fails on demand.
type fakeFS struct {
	dirs              map[int64]bool
	pins              []string
	failInit, failPin bool
	failMove          bool
	heads             map[int64]string
}

func (f *fakeFS) Init(ctx context.Context, r store.Repo) error {
	if f.failInit {
		return errors.New("init: disk full")
	}
	f.dirs[r.ID] = true
	return nil
}

func (f *fakeFS) Delete(ctx context.Context, r store.Repo, rows func(context.Context) error) error {
	if f.failMove {
		return errors.New("rename: permission denied")
	}
	had := f.dirs[r.ID]
	delete(f.dirs, r.ID)
	if err := rows(ctx); err != nil {
		f.dirs[r.ID] = had
		return err
	}
	return nil
}

// SetHead records the head; "missing" is a branch the repository lacks.
func (f *fakeFS) SetHead(ctx context.Context, r store.Repo, branch string) error {
	if branch == "missing" {
		return fmt.Errorf("%w: %s has no branch %q", store.ErrInvalid, r.FullName(), branch)
	}
	if f.heads == nil {
		f.heads = map[int64]string{}
	}
	f.heads[r.ID] = branch
	return nil
}

func (f *fakeFS) Pin(ctx context.Context, r store.Repo, commit string) error {
	if f.failPin {
		return errors.New("pin: update-ref failed")
	}
	f.pins = append(f.pins, commit)
	return nil
}

type fixture struct {
	path  string
	ctx   context.Context
	db    store.Store
	fs    *fakeFS
	svc   *service.Service
	admin store.Account
	alice store.Account
}

func setup(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "gitserver.db")
	db, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	fs := &fakeFS{dirs: map[int64]bool{}}
	f := &fixture{path: path, ctx: ctx, db: db, fs: fs, svc: &service.Service{Store: db, Repos: fs}}
	if f.admin, err = db.CreateUser(ctx, "root", "password-root", true); err != nil {
		t.Fatal(err)
	}
	if f.alice, err = db.CreateUser(ctx, "alice", "password-alice", false); err != nil {
		t.Fatal(err)
	}
	return f
}

func user(a store.Account) service.Actor { return service.As(store.Principal{User: &a}, access.API) }

func token(a store.Account, scopes ...store.Scope) service.Actor {
	return service.As(store.Principal{User: &a, Token: &store.Token{UserID: a.ID, Scopes: scopes}}, access.API)
}

func (f *fixture) events(t *testing.T) []store.AuditEvent {
	t.Helper()
	ev, err := f.db.AuditEvents(f.ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	return ev
}

func (f *fixture) lastEvent(t *testing.T) store.AuditEvent {
	t.Helper()
	ev := f.events(t)
	if len(ev) == 0 {
		t.Fatal("no audit event")
	}
	return ev[0]
}

func TestCreateRepo(t *testing.T) {
	f := setup(t)
	rp, err := f.svc.CreateRepo(f.ctx, user(f.alice), service.NewRepoInput{Name: "hello", Visibility: string(store.Restricted)})
	if err != nil {
		t.Fatal(err)
	}
	if rp.FullName() != "alice/hello" || rp.DefaultBranch != store.DefaultBranch || !f.fs.dirs[rp.ID] {
		t.Fatalf("created %+v (dirs %v)", rp, f.fs.dirs)
	}
	if e := f.lastEvent(t); e.Actor != "alice" || e.Action != "repo.create" || e.Target != "alice/hello" || e.Detail != string(store.Restricted) {
		t.Fatalf("audit event %+v", e)
	}
}

func TestCreateRepoRefusals(t *testing.T) {
	f := setup(t)
	org, err := f.db.CreateOrg(f.ctx, "algos", f.admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.events(t))
	for _, tc := range []struct {
		name  string
		actor service.Actor
		in    service.NewRepoInput
		want  error
		code  string // the policy's code, for access refusals
		msg   string
	}{
		{"bad owner", user(f.alice), service.NewRepoInput{Owner: "-x", Name: "a", Visibility: string(store.Public)}, store.ErrInvalid, "", "owner name must match"},
		{"bad name", user(f.alice), service.NewRepoInput{Name: "a.git", Visibility: string(store.Public)}, store.ErrInvalid, "", "repository name must match"},
		{"bad visibility", user(f.alice), service.NewRepoInput{Name: "a", Visibility: "secret"}, store.ErrInvalid, "", "visibility"},
		{"unknown owner", user(f.alice), service.NewRepoInput{Owner: "nobody", Name: "a", Visibility: string(store.Public)}, store.ErrNotFound, "", ""},
		{"someone else's namespace", user(f.alice), service.NewRepoInput{Owner: "root", Name: "a", Visibility: string(store.Public)}, store.ErrForbidden, "forbidden", "cannot create repositories for root"},
		{"an organisation alice is not in", user(f.alice), service.NewRepoInput{Owner: org.Name, Name: "a", Visibility: string(store.Public)}, store.ErrForbidden, "forbidden", ""},
		{"a read-only token", token(f.alice, store.ScopeRepoRead), service.NewRepoInput{Name: "a", Visibility: string(store.Public)}, store.ErrForbidden, "insufficient_scope", ""},
		{"anonymous", service.As(store.Principal{}, access.API), service.NewRepoInput{Owner: "alice", Name: "a", Visibility: string(store.Public)}, store.ErrForbidden, "forbidden", "sign in"},
	} {
		_, err := f.svc.CreateRepo(f.ctx, tc.actor, tc.in)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
		if d, ok := service.Denied(err); ok != (tc.code != "") || d.Code != tc.code {
			t.Errorf("%s: Denied = %+v, %v; want code %q", tc.name, d, ok, tc.code)
		}
	}
	if n := len(f.events(t)); n != before {
		t.Errorf("refusals wrote %d audit events", n-before)
	}
	if rs, _ := f.db.Repos(f.ctx); len(rs) != 0 {
		t.Errorf("refusals created %v", rs)
	}
	// The admin creates anywhere, the operator too.
	if _, err := f.svc.CreateRepo(f.ctx, user(f.admin), service.NewRepoInput{Owner: "alice", Name: "a", Visibility: string(store.Public)}); err != nil {
		t.Error(err)
	}
	if _, err := f.svc.CreateRepo(f.ctx, service.Operator("cli"), service.NewRepoInput{Owner: "algos", Name: "b", Visibility: string(store.Public)}); err != nil {
		t.Error(err)
	}
	if e := f.lastEvent(t); e.Actor != "cli" || e.Target != "algos/b" {
		t.Errorf("operator's audit event %+v", e)
	}
}

// A directory that cannot be created undoes the row: no repository is
// left, and the log says the creation was undone.
func TestCreateRepoUndoesTheRowWhenInitFails(t *testing.T) {
	f := setup(t)
	f.fs.failInit = true
	_, err := f.svc.CreateRepo(f.ctx, user(f.alice), service.NewRepoInput{Name: "hello", Visibility: string(store.Public)})
	if err == nil || !strings.Contains(err.Error(), "disk full") || store.IsSentinel(err) {
		t.Fatalf("CreateRepo = %v, want the directory's (internal) error", err)
	}
	if _, err := f.db.RepoByName(f.ctx, "alice", "hello"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the row survived a failed init: %v", err)
	}
	ev := f.events(t)
	if len(ev) != 2 || ev[1].Action != "repo.create" || ev[0].Action != "repo.delete" || !strings.Contains(ev[0].Detail, "undo") {
		t.Fatalf("audit events %+v, want the creation and its undo", ev)
	}
	// The name is free again.
	f.fs.failInit = false
	if _, err := f.svc.CreateRepo(f.ctx, user(f.alice), service.NewRepoInput{Name: "hello", Visibility: string(store.Public)}); err != nil {
		t.Fatal(err)
	}
}

func TestDeleteRepo(t *testing.T) {
	f := setup(t)
	rp, err := f.svc.CreateRepo(f.ctx, user(f.alice), service.NewRepoInput{Name: "hello", Visibility: string(store.Public)})
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := f.db.CreateUser(f.ctx, "bob", "password-bob", false)
	if err := f.svc.DeleteRepo(f.ctx, user(bob), rp); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("bob deletes alice's public repository: %v", err)
	}
	f.fs.failMove = true
	n := len(f.events(t))
	if err := f.svc.DeleteRepo(f.ctx, user(f.alice), rp); !errors.Is(err, service.ErrNotDeleted) || store.IsSentinel(err) {
		t.Fatalf("DeleteRepo with an immovable directory = %v", err)
	}
	if _, err := f.db.RepoByID(f.ctx, rp.ID); err != nil || len(f.events(t)) != n {
		t.Fatalf("a delete that did not happen changed something: %v", err)
	}
	f.fs.failMove = false
	if err := f.svc.DeleteRepo(f.ctx, user(f.alice), rp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.RepoByID(f.ctx, rp.ID); !errors.Is(err, store.ErrNotFound) || f.fs.dirs[rp.ID] {
		t.Fatalf("repository survived: %v", err)
	}
	if e := f.lastEvent(t); e.Action != "repo.delete" || e.Target != "alice/hello" || e.Actor != "alice" {
		t.Fatalf("audit event %+v", e)
	}
	// Deleted meanwhile: the rows' error, and the directory is back.
	if err := f.svc.DeleteRepo(f.ctx, user(f.alice), rp); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}

func finishedBuild(t *testing.T, f *fixture, rp store.Repo, commit string, status store.BuildStatus) store.Build {
	t.Helper()
	base, err := f.db.BuildBase(f.ctx, rp.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := f.db.EnqueueBuild(f.ctx, store.NewBuild{RepoID: rp.ID, Branch: rp.DefaultBranch, Commit: commit, PushedBy: "alice", PreviousCommit: base, CommitCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.db.ClaimBuild(f.ctx, "w", 60e9)
	if err != nil || c.ID != b.ID {
		t.Fatalf("claim: %v, %v", c, err)
	}
	if b, err = f.db.CompleteBuild(f.ctx, b.ID, c.LeaseToken, status, "", ""); err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPublish(t *testing.T) {
	f := setup(t)
	rp, err := f.svc.CreateRepo(f.ctx, user(f.alice), service.NewRepoInput{Name: "hello", Visibility: string(store.Restricted)})
	if err != nil {
		t.Fatal(err)
	}
	bad := finishedBuild(t, f, rp, strings.Repeat("a", 40), store.BuildFailed)
	good := finishedBuild(t, f, rp, strings.Repeat("b", 40), store.BuildSucceeded)
	n := len(f.events(t))
	for _, tc := range []struct {
		actor   service.Actor
		build   int64
		bump    string
		want    error
		wantMsg string
	}{
		{user(f.alice), good.ID, "huge", store.ErrInvalid, "bump"},
		{user(f.alice), 999, store.BumpMinor, store.ErrNotFound, "no such build in alice/hello"},
		{user(f.alice), bad.ID, store.BumpMinor, store.ErrConflict, "only a succeeded build can be published; this one is failed"},
		{token(f.alice, store.ScopeRepoRead), good.ID, store.BumpMinor, store.ErrForbidden, "write access"},
	} {
		if _, err := f.svc.Publish(f.ctx, tc.actor, rp, tc.build, tc.bump, ""); !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.wantMsg) {
			t.Errorf("Publish(%d, %s) = %v, want %v %q", tc.build, tc.bump, err, tc.want, tc.wantMsg)
		}
	}
	// A pin that fails leaves no version.
	f.fs.failPin = true
	if _, err := f.svc.Publish(f.ctx, user(f.alice), rp, good.ID, store.BumpMinor, ""); err == nil || store.IsSentinel(err) {
		t.Fatalf("Publish with a failing pin = %v", err)
	}
	if vs, _ := f.db.Versions(f.ctx, rp.ID); len(vs) != 0 || len(f.events(t)) != n {
		t.Fatalf("refused publishes left versions %v or audit events", vs)
	}
	f.fs.failPin = false
	v, err := f.svc.Publish(f.ctx, user(f.alice), rp, good.ID, store.BumpMinor, "first")
	if err != nil {
		t.Fatal(err)
	}
	if v.String() != "0.1.0" || v.PublishedBy != "alice" || v.ReleaseNotes != "first" || len(f.fs.pins) != 1 || f.fs.pins[0] != good.Commit {
		t.Fatalf("published %+v, pins %v", v, f.fs.pins)
	}
	if e := f.lastEvent(t); e.Action != "version.publish" || e.Target != "alice/hello" || e.Detail != "0.1.0" {
		t.Fatalf("audit event %+v", e)
	}
	if _, err := f.svc.Publish(f.ctx, user(f.alice), rp, good.ID, store.BumpMinor, ""); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second publish of one build: %v", err)
	}
}

func newKey(t *testing.T, comment string) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))) + " " + comment
}

func TestAccountOperations(t *testing.T) {
	f := setup(t)
	cli := service.Operator("cli")
	// Users: the operator or an admin.
	if _, err := f.svc.CreateUser(f.ctx, user(f.alice), "eve", "password-eve", true); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("alice creates a user: %v", err)
	}
	bob, err := f.svc.CreateUser(f.ctx, cli, "bob", "password-bob", false)
	if err != nil {
		t.Fatal(err)
	}
	if e := f.lastEvent(t); e.Actor != "cli" || e.Action != "user.create" || e.Target != "bob" || e.Detail != "admin=false" {
		t.Fatalf("audit event %+v", e)
	}
	if _, err := f.svc.CreateUser(f.ctx, cli, "BOB", "password-bob", false); !errors.Is(err, store.ErrExists) {
		t.Fatalf("taken name: %v", err)
	}
	// Passwords: the operator names anyone, a user only themselves.
	if u, err := f.svc.SetPassword(f.ctx, cli, "BOB", "password-new"); err != nil || u.Name != "bob" {
		t.Fatalf("SetPassword = %v, %v", u, err)
	}
	if e := f.lastEvent(t); e.Action != "user.passwd" || e.Target != "bob" {
		t.Fatalf("audit event %+v", e)
	}
	if _, err := f.db.CheckPassword(f.ctx, "bob", "password-new"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.SetPassword(f.ctx, user(f.alice), "bob", "password-x"); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("alice sets bob's password: %v", err)
	}
	if _, err := f.svc.SetPassword(f.ctx, cli, "nobody", "password-x"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown user: %v", err)
	}
	// Tokens.
	secret, tok, u, err := f.svc.CreateToken(f.ctx, cli, "bob", "", nil)
	if err != nil || !strings.HasPrefix(secret, store.TokenPrefix) || u.ID != bob.ID || tok.Name != "token" {
		t.Fatalf("CreateToken = %q %+v %+v %v", secret, tok, u, err)
	}
	if e := f.lastEvent(t); e.Action != "token.create" || e.Target != "bob" || e.Detail != "token repo:read repo:write" {
		t.Fatalf("audit event %+v", e)
	}
	n := len(f.events(t))
	if _, _, _, err := f.svc.CreateToken(f.ctx, cli, "bob", "ci", []string{string(store.ScopeBuilds)}); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("builds token for a non-admin: %v", err)
	}
	if _, _, _, err := f.svc.CreateToken(f.ctx, token(f.alice, store.ScopeRepoRead, store.ScopeRepoWrite), "", "x", nil); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a token mints a token: %v", err)
	}
	if len(f.events(t)) != n {
		t.Fatal("refused token creations were audited")
	}
	if _, tok, _, err := f.svc.CreateToken(f.ctx, user(f.alice), "", "laptop", []string{string(store.ScopeRepoRead)}); err != nil || tok.UserID != f.alice.ID {
		t.Fatalf("alice's own token: %+v, %v", tok, err)
	}
	// Keys.
	text := newKey(t, "bob@laptop")
	k, u, err := f.svc.AddKey(f.ctx, cli, "bob", "", text)
	if err != nil || u.ID != bob.ID || k.Title != "bob@laptop" {
		t.Fatalf("AddKey = %+v %+v %v", k, u, err)
	}
	if e := f.lastEvent(t); e.Action != "key.add" || e.Target != "bob" || e.Detail != k.Fingerprint {
		t.Fatalf("audit event %+v", e)
	}
	if _, _, err := f.svc.AddKey(f.ctx, user(f.alice), "", "", text); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a key in use: %v", err)
	}
	if _, _, err := f.svc.AddKey(f.ctx, user(f.alice), "", "", "not a key"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("not a key: %v", err)
	}
	// Organisations and members.
	if _, err := f.svc.CreateOrg(f.ctx, cli, "algos"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("the operator creates an organisation: %v", err)
	}
	org, err := f.svc.CreateOrg(f.ctx, user(f.alice), "algos")
	if err != nil {
		t.Fatal(err)
	}
	if e := f.lastEvent(t); e.Action != "org.create" || e.Target != "algos" || e.Actor != "alice" {
		t.Fatalf("audit event %+v", e)
	}
	if _, _, err := f.svc.SetMember(f.ctx, user(bob), "algos", "bob", string(store.RoleOwner)); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("bob makes himself owner: %v", err)
	}
	if _, _, err := f.svc.SetMember(f.ctx, user(f.alice), "alice", "bob", string(store.RoleMember)); !errors.Is(err, store.ErrNotFound) || err.Error() != `no organisation "alice"` {
		t.Fatalf("a user as organisation: %v", err)
	}
	o, m, err := f.svc.SetMember(f.ctx, user(f.alice), "ALGOS", "Bob", string(store.RoleMember))
	if err != nil || o.ID != org.ID || m.ID != bob.ID {
		t.Fatalf("SetMember = %+v %+v %v", o, m, err)
	}
	if e := f.lastEvent(t); e.Action != "org.member" || e.Target != "algos" || e.Detail != "bob=member" {
		t.Fatalf("audit event %+v", e)
	}
	if role, _ := f.db.Role(f.ctx, org.ID, bob.ID); role != store.RoleMember {
		t.Fatalf("role %q", role)
	}
}

// An audit event that cannot be written fails the change: nothing happens
// (the admin CLI then exits 1).
func TestNoChangeWithoutItsAuditEvent(t *testing.T) {
	f := setup(t)
	raw, err := sql.Open("sqlite", f.path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if _, err := raw.Exec(`CREATE TRIGGER audit_full BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'audit log full'); END`); err != nil {
		t.Fatal(err)
	}
	cli := service.Operator("cli")
	if _, err := f.svc.CreateUser(f.ctx, cli, "bob", "password-bob", false); err == nil || !strings.Contains(err.Error(), "audit log full") {
		t.Fatalf("CreateUser = %v, want the audit's error", err)
	}
	if _, err := f.db.UserByName(f.ctx, "bob"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the user was created without its audit event: %v", err)
	}
	if _, err := f.svc.SetPassword(f.ctx, cli, "alice", "password-new"); err == nil {
		t.Fatal("SetPassword succeeded without its audit event")
	}
	if _, err := f.db.CheckPassword(f.ctx, "alice", "password-alice"); err != nil {
		t.Fatalf("the password changed without its audit event: %v", err)
	}
	if _, _, _, err := f.svc.CreateToken(f.ctx, cli, "alice", "t", nil); err == nil {
		t.Fatal("CreateToken succeeded without its audit event")
	}
	if _, err := f.svc.CreateRepo(f.ctx, user(f.alice), service.NewRepoInput{Name: "r", Visibility: string(store.Public)}); err == nil {
		t.Fatal("CreateRepo succeeded without its audit event")
	}
	if rs, _ := f.db.Repos(f.ctx); len(rs) != 0 || len(f.fs.dirs) != 0 {
		t.Fatalf("repository created without its audit event: %v %v", rs, f.fs.dirs)
	}
}

// TestTakingAccessBack: who may revoke tokens and keys, disable accounts and
// remove members, and that each change commits with its audit event naming
// the actor.
func TestTakingAccessBack(t *testing.T) {
	f := setup(t)
	cli := service.Operator("cli")
	bob, err := f.db.CreateUser(f.ctx, "bob", "password-bob", false)
	if err != nil {
		t.Fatal(err)
	}
	expect := func(actor, action, target string) {
		t.Helper()
		if e := f.lastEvent(t); e.Actor != actor || e.Action != action || e.Target != target {
			t.Fatalf("audit event %+v, want %s %s %s", e, actor, action, target)
		}
	}
	// Tokens: one's own, or any user's for the operator.
	_, tok, _ := f.db.CreateToken(f.ctx, f.alice.ID, "laptop", nil)
	if toks, _, err := f.svc.Tokens(f.ctx, token(f.alice, store.ScopeRepoRead), ""); err != nil || len(toks) != 1 || toks[0].ID != tok.ID {
		t.Fatalf("alice's tokens with a read token = %+v, %v", toks, err)
	}
	if _, _, err := f.svc.Tokens(f.ctx, user(bob), "alice"); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("bob lists alice's tokens: %v", err)
	}
	if _, err := f.svc.RevokeToken(f.ctx, user(bob), "", tok.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("bob revokes alice's token: %v", err)
	}
	if _, err := f.svc.RevokeToken(f.ctx, token(f.alice, store.ScopeRepoRead), "", tok.ID); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a read-only token revokes a token: %v", err)
	}
	if _, err := f.svc.RevokeToken(f.ctx, user(f.alice), "", tok.ID); err != nil {
		t.Fatal(err)
	}
	expect("alice", "token.revoke", "alice")
	_, tok2, _ := f.db.CreateToken(f.ctx, f.alice.ID, "ci", nil)
	if _, err := f.svc.RevokeToken(f.ctx, cli, "alice", tok2.ID); err != nil {
		t.Fatal(err)
	}
	expect("cli", "token.revoke", "alice")
	// Keys.
	k, _, err := f.svc.AddKey(f.ctx, user(bob), "", "", newKey(t, "bob"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DeleteKey(f.ctx, user(f.alice), "", k.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("alice deletes bob's key: %v", err)
	}
	if _, err := f.svc.DeleteKey(f.ctx, user(bob), "", k.ID); err != nil {
		t.Fatal(err)
	}
	expect("bob", "key.delete", "bob")
	// Disabling: admins and the operator only.
	if _, err := f.svc.SetDisabled(f.ctx, user(f.alice), "bob", true); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("alice disables bob: %v", err)
	}
	if u, err := f.svc.SetDisabled(f.ctx, user(f.admin), "BOB", true); err != nil || !u.Disabled || u.Name != "bob" {
		t.Fatalf("root disables bob: %+v, %v", u, err)
	}
	expect("root", "user.disable", "bob")
	if _, err := f.svc.SetDisabled(f.ctx, cli, "bob", false); err != nil {
		t.Fatal(err)
	}
	expect("cli", "user.enable", "bob")
	if _, err := f.svc.SetDisabled(f.ctx, cli, "root", true); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("disabling the only admin: %v", err)
	}
	// Members: owners remove anyone, members themselves; the only owner stays.
	carol, _ := f.db.CreateUser(f.ctx, "carol", "password-carol", false)
	if _, err := f.svc.CreateOrg(f.ctx, user(f.alice), "algos"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []string{"bob", "carol"} {
		if _, _, err := f.svc.SetMember(f.ctx, user(f.alice), "algos", u, string(store.RoleMember)); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.svc.RemoveMember(f.ctx, user(bob), "algos", "carol"); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a member removes another: %v", err)
	}
	if _, _, err := f.svc.RemoveMember(f.ctx, user(carol), "algos", "carol"); err != nil {
		t.Fatalf("carol leaves: %v", err)
	}
	expect("carol", "org.member.remove", "algos")
	if _, _, err := f.svc.RemoveMember(f.ctx, user(f.alice), "algos", "bob"); err != nil {
		t.Fatal(err)
	}
	expect("alice", "org.member.remove", "algos")
	if _, _, err := f.svc.RemoveMember(f.ctx, user(f.alice), "algos", "alice"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the only owner leaves: %v", err)
	}
	if _, _, err := f.svc.SetMember(f.ctx, user(f.alice), "algos", "alice", string(store.RoleMember)); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("the only owner steps down: %v", err)
	}
	if _, _, err := f.svc.RemoveMember(f.ctx, user(f.admin), "algos", "alice"); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("an admin removes the only owner: %v", err)
	}
}
