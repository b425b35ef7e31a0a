package service_test

import (
	"errors"
	"strings"
	"testing"

	"gitserver/gitserver/service"
	"gitserver/store"
)

func ptr[T any](v T) *T { return &v }

// TestUpdateRepo: the owners change visibility and default branch (HEAD
// first, then the row with its audit event); members who may write,
// readers and strangers are refused as the policy says; bad values, a
// missing branch and a mirror's default branch change nothing.
func TestUpdateRepo(t *testing.T) {
	f := setup(t)
	bob, err := f.db.CreateUser(f.ctx, "bob", "password-bob", false)
	if err != nil {
		t.Fatal(err)
	}
	org, err := f.db.CreateOrg(f.ctx, "team", f.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.db.SetMembership(f.ctx, org.ID, bob.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	rp, err := f.svc.CreateRepo(f.ctx, user(f.alice), service.NewRepoInput{Owner: "team", Name: "app", Visibility: string(store.Restricted)})
	if err != nil {
		t.Fatal(err)
	}

	got, err := f.svc.UpdateRepo(f.ctx, user(f.alice), rp, service.RepoUpdate{Visibility: ptr("public"), DefaultBranch: ptr("main")})
	if err != nil {
		t.Fatal(err)
	}
	if got.Visibility != store.Public || got.DefaultBranch != "main" || f.fs.heads[rp.ID] != "main" {
		t.Fatalf("updated %+v, HEAD %q", got, f.fs.heads[rp.ID])
	}
	if again, _ := f.db.RepoByID(f.ctx, rp.ID); again.Visibility != store.Public || again.DefaultBranch != "main" {
		t.Fatalf("stored %+v", again)
	}
	if e := f.lastEvent(t); e.Actor != "alice" || e.Action != "repo.update" || e.Target != "team/app" ||
		e.Detail != "visibility restricted → public, default branch master → main" {
		t.Fatalf("audit event %+v", e)
	}
	rp = got

	// Nothing to change: no event.
	before := len(f.events(t))
	if _, err := f.svc.UpdateRepo(f.ctx, user(f.alice), rp, service.RepoUpdate{Visibility: ptr("public")}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		actor service.Actor
		in    service.RepoUpdate
		want  error
		msg   string
	}{
		{"a member who may write", user(bob), service.RepoUpdate{Visibility: ptr("restricted")}, store.ErrForbidden, "only owners of team"},
		{"a read-only token of the owner", token(f.alice, store.ScopeRepoRead), service.RepoUpdate{Visibility: ptr("restricted")}, store.ErrForbidden, "write access"},
		{"a bad visibility", user(f.alice), service.RepoUpdate{Visibility: ptr("secret")}, store.ErrInvalid, `visibility must be "public" or "restricted"`},
		{"a bad branch name", user(f.alice), service.RepoUpdate{DefaultBranch: ptr("a..b")}, store.ErrInvalid, "not a valid branch name"},
		{"a branch the repository lacks", user(f.alice), service.RepoUpdate{DefaultBranch: ptr("missing")}, store.ErrInvalid, `no branch "missing"`},
	} {
		_, err := f.svc.UpdateRepo(f.ctx, tc.actor, rp, tc.in)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v, want %v containing %q", tc.name, err, tc.want, tc.msg)
		}
	}
	if n := len(f.events(t)); n != before {
		t.Errorf("refusals and no-ops wrote %d audit events", n-before)
	}
	if again, _ := f.db.RepoByID(f.ctx, rp.ID); again.Visibility != store.Public || again.DefaultBranch != "main" || f.fs.heads[rp.ID] != "main" {
		t.Fatalf("refusals changed %+v, HEAD %q", again, f.fs.heads[rp.ID])
	}

	// A stranger may not even see the restricted repository.
	if _, err := f.svc.UpdateRepo(f.ctx, user(f.alice), rp, service.RepoUpdate{Visibility: ptr("restricted")}); err != nil {
		t.Fatal(err)
	}
	rp, _ = f.db.RepoByID(f.ctx, rp.ID)
	carol, _ := f.db.CreateUser(f.ctx, "carol", "password-carol", false)
	if _, err := f.svc.UpdateRepo(f.ctx, user(carol), rp, service.RepoUpdate{Visibility: ptr("public")}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a stranger: %v, want not found", err)
	}
}

// TestDeployKeysThroughTheService: add (read-only by default, the comment
// as title), list, delete, each for writers only, audited.
func TestDeployKeysThroughTheService(t *testing.T) {
	f := setup(t)
	rp, err := f.svc.CreateRepo(f.ctx, user(f.alice), service.NewRepoInput{Name: "app", Visibility: string(store.Public)})
	if err != nil {
		t.Fatal(err)
	}
	bob, _ := f.db.CreateUser(f.ctx, "bob", "password-bob", false)
	line := newKey(t, "test@key")
	if _, err := f.svc.AddDeployKey(f.ctx, user(bob), rp, "x", line, true); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a reader adds a deploy key: %v", err)
	}
	if _, err := f.svc.AddDeployKey(f.ctx, user(f.alice), rp, "x", "ssh-rsa nope", true); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a bad key: %v", err)
	}
	k, err := f.svc.AddDeployKey(f.ctx, user(f.alice), rp, "", line, false)
	if err != nil {
		t.Fatal(err)
	}
	if k.ReadOnly || k.RepoID != rp.ID || k.Title != "test@key" {
		t.Fatalf("key %+v", k)
	}
	if e := f.lastEvent(t); e.Action != "deploy_key.add" || e.Target != "alice/app" || !strings.HasSuffix(e.Detail, "read_only=false") {
		t.Fatalf("audit event %+v", e)
	}
	if _, err := f.svc.DeployKeys(f.ctx, user(bob), rp); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a reader lists deploy keys: %v", err)
	}
	keys, err := f.svc.DeployKeys(f.ctx, user(f.alice), rp)
	if err != nil || len(keys) != 1 || keys[0].ID != k.ID {
		t.Fatalf("keys %v, %v", keys, err)
	}
}

// TestCreatableOwners: the user, then the organisations the user belongs
// to; a read-only token none.
func TestCreatableOwners(t *testing.T) {
	f := setup(t)
	for _, name := range []string{"zeta", "alpha"} {
		if _, err := f.db.CreateOrg(f.ctx, name, f.alice.ID); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.db.CreateOrg(f.ctx, "others", f.admin.ID); err != nil {
		t.Fatal(err)
	}
	owners, err := f.svc.CreatableOwners(f.ctx, user(f.alice))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, o := range owners {
		names = append(names, o.Name)
	}
	if strings.Join(names, ",") != "alice,alpha,zeta" {
		t.Fatalf("owners %v", names)
	}
	if _, err := f.svc.CreatableOwners(f.ctx, token(f.alice, store.ScopeRepoRead)); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a read-only token: %v", err)
	}
}
