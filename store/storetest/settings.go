package storetest

import (
	"context"
	"errors"
	"testing"

	"gitserver/store"
)

// testUpdateRepo: visibility and default branch change (nil fields are
// kept) with their audit entry in the same transaction; bad values and
// unknown ids change nothing.
func testUpdateRepo(t *testing.T, f Factory) {
	s := f.open(t, newFakeClock())
	ctx := context.Background()
	r := testRepo(t, s, "alice", "app")
	pub, branch := store.Public, "trunk"
	got, err := s.UpdateRepo(ctx, r.ID, store.RepoUpdate{Visibility: &pub}, store.AuditEntry{Actor: "alice", Action: "repo.update", Target: "alice/app"})
	if err != nil || got.Visibility != store.Public || got.DefaultBranch != store.DefaultBranch || got.FullName() != "alice/app" {
		t.Fatalf("UpdateRepo visibility = %+v, %v", got, err)
	}
	if got, err = s.UpdateRepo(ctx, r.ID, store.RepoUpdate{DefaultBranch: &branch}); err != nil || got.Visibility != store.Public || got.DefaultBranch != "trunk" {
		t.Fatalf("UpdateRepo branch = %+v, %v", got, err)
	}
	if again, _ := s.RepoByName(ctx, "alice", "app"); again != got {
		t.Fatalf("stored %+v, returned %+v", again, got)
	}
	ev, err := s.AuditEvents(ctx, 10)
	if err != nil || len(ev) == 0 || ev[0].Action != "repo.update" {
		t.Fatalf("audit %+v, %v", ev, err)
	}
	bad, badBranch := store.Visibility("secret"), "a..b"
	for _, u := range []store.RepoUpdate{{Visibility: &bad}, {DefaultBranch: &badBranch}} {
		if _, err := s.UpdateRepo(ctx, r.ID, u); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("UpdateRepo(%+v) = %v, want ErrInvalid", u, err)
		}
	}
	if _, err := s.UpdateRepo(ctx, r.ID+1000, store.RepoUpdate{Visibility: &pub}, store.AuditEntry{Actor: "x", Action: "repo.update", Target: "x"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
	if ev2, _ := s.AuditEvents(ctx, 10); len(ev2) != len(ev) {
		t.Errorf("refusals wrote audit events: %d -> %d", len(ev), len(ev2))
	}
	if again, _ := s.RepoByName(ctx, "alice", "app"); again != got {
		t.Fatalf("refusals changed %+v", again)
	}
}

// testUserOrgs: the organisations a user is a member of, by name, any
// role; none is an empty list.
func testUserOrgs(t *testing.T, f Factory) {
	s := f.open(t, newFakeClock())
	ctx := context.Background()
	alice, bob := mustUser(t, s, "alice", false), mustUser(t, s, "bob", false)
	for _, n := range []string{"zeta", "alpha"} {
		if _, err := s.CreateOrg(ctx, n, alice.ID); err != nil {
			t.Fatal(err)
		}
	}
	other, err := s.CreateOrg(ctx, "other", bob.ID)
	if err != nil {
		t.Fatal(err)
	}
	orgs, err := s.UserOrgs(ctx, alice.ID)
	if err != nil || len(orgs) != 2 || orgs[0].Name != "alpha" || orgs[1].Name != "zeta" || orgs[0].Kind != store.KindOrg {
		t.Fatalf("UserOrgs(alice) = %+v, %v", orgs, err)
	}
	if err := s.SetMembership(ctx, other.ID, alice.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	if orgs, _ = s.UserOrgs(ctx, alice.ID); len(orgs) != 3 || orgs[1].Name != "other" {
		t.Fatalf("UserOrgs after joining = %+v", orgs)
	}
	carol := mustUser(t, s, "carol", false)
	if orgs, err := s.UserOrgs(ctx, carol.ID); err != nil || orgs == nil || len(orgs) != 0 {
		t.Fatalf("UserOrgs(carol) = %#v, %v", orgs, err)
	}
}
