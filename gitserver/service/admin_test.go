package service_test

import (
	"errors"
	"testing"

	"gitserver/gitserver/service"
	"gitserver/store"
)

func TestAdminListsAndSetAdmin(t *testing.T) {
	f := setup(t)
	ctx := f.ctx
	if _, err := f.svc.Users(ctx, user(f.alice)); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a user lists users: %v", err)
	}
	if _, err := f.svc.Users(ctx, token(f.admin, store.ScopeRepoWrite)); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("an admin's repo:write token lists users: %v", err)
	}
	us, err := f.svc.Users(ctx, user(f.admin))
	if err != nil || len(us) != 2 || us[0].Name != "alice" || us[1].Name != "root" {
		t.Fatalf("Users = %+v, %v", us, err)
	}
	if _, err := f.svc.SetAdmin(ctx, user(f.alice), "alice", true); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a user makes herself admin: %v", err)
	}
	a, err := f.svc.SetAdmin(ctx, user(f.admin), "ALICE", true)
	if err != nil || !a.IsAdmin || a.Name != "alice" {
		t.Fatalf("SetAdmin = %+v, %v", a, err)
	}
	if e := f.lastEvent(t); e.Actor != "root" || e.Action != "user.admin" || e.Target != "alice" {
		t.Fatalf("audit %+v", e)
	}
	if _, err := f.svc.SetAdmin(ctx, user(f.admin), "root", false); err != nil {
		t.Fatal(err)
	}
	if e := f.lastEvent(t); e.Action != "user.unadmin" || e.Target != "root" {
		t.Fatalf("audit %+v", e)
	}
	alice, _ := f.db.UserByName(ctx, "alice")
	if _, err := f.svc.SetAdmin(ctx, user(alice), "alice", false); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("demoting the last admin: %v", err)
	}
	if _, err := f.svc.SetAdmin(ctx, service.Operator("cli"), "nobody", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetAdmin(nobody): %v", err)
	}
}

func TestAdminOrgsAndMembers(t *testing.T) {
	f := setup(t)
	ctx := f.ctx
	bob, err := f.db.CreateUser(ctx, "bob", "password-bob", false)
	if err != nil {
		t.Fatal(err)
	}
	org, err := f.svc.CreateOrg(ctx, user(f.alice), "team")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Orgs(ctx, user(f.alice)); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("a user lists organisations: %v", err)
	}
	if os, err := f.svc.Orgs(ctx, user(f.admin)); err != nil || len(os) != 1 || os[0].ID != org.ID {
		t.Fatalf("Orgs = %+v, %v", os, err)
	}
	// An admin (no member) manages the members, as the API lets it.
	if _, _, err := f.svc.SetMember(ctx, user(f.admin), "team", "bob", "member"); err != nil {
		t.Fatal(err)
	}
	for _, who := range []store.Account{f.admin, f.alice, bob} {
		o, ms, err := f.svc.Members(ctx, user(who), "TEAM")
		if err != nil || o.ID != org.ID || len(ms) != 2 || ms[0].User.Name != "alice" || ms[0].Role != store.RoleOwner || ms[1].User.Name != "bob" || ms[1].Role != store.RoleMember {
			t.Fatalf("Members as %s = %+v, %v", who.Name, ms, err)
		}
	}
	carol, _ := f.db.CreateUser(ctx, "carol", "password-carol", false)
	for _, name := range []string{"team", "nothing", "alice"} {
		if _, _, err := f.svc.Members(ctx, user(carol), name); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Members(%s) as an outsider: %v, want ErrNotFound", name, err)
		}
	}
	if _, _, err := f.svc.Members(ctx, token(bob, store.ScopeRepoRead), "team"); !errors.Is(err, store.ErrForbidden) {
		t.Fatalf("Members with a read-only token: %v", err)
	}
}
