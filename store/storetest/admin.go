package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gitserver/store"
)

// What the admin pages need (issue 13): listing accounts and members,
// making a user admin (the server keeps an enabled admin, whatever the
// number of writers), and the queue's depth.

func accountNames(as []store.Account) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Name)
	}
	return out
}

func testListAccounts(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	if us, err := s.ListAccounts(ctx, store.KindUser); err != nil || us == nil || len(us) != 0 {
		t.Fatalf("ListAccounts of an empty store = %#v, %v; want an empty list", us, err)
	}
	bob := mustUser(t, s, "bob", false)
	mustUser(t, s, "Alice", true)
	mustUser(t, s, "carol", false)
	if _, err := s.SetDisabled(ctx, "carol", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateOrg(ctx, "zeta", bob.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateOrg(ctx, "Beta", bob.ID); err != nil {
		t.Fatal(err)
	}
	us, err := s.ListAccounts(ctx, store.KindUser)
	if err != nil || len(us) != 3 {
		t.Fatalf("ListAccounts(user) = %v, %v", accountNames(us), err)
	}
	if got := accountNames(us); got[0] != "Alice" || got[1] != "bob" || got[2] != "carol" {
		t.Fatalf("users = %v, want Alice bob carol (by name, without case)", got)
	}
	if !us[0].IsAdmin || us[1].IsAdmin || !us[2].Disabled || us[0].Kind != store.KindUser || us[1].ID != bob.ID || us[0].CreatedAt.IsZero() {
		t.Fatalf("users = %+v", us)
	}
	orgs, err := s.ListAccounts(ctx, store.KindOrg)
	if got := accountNames(orgs); err != nil || len(got) != 2 || got[0] != "Beta" || got[1] != "zeta" || orgs[0].Kind != store.KindOrg {
		t.Fatalf("ListAccounts(org) = %v, %v", got, err)
	}
	if _, err := s.ListAccounts(ctx, "robot"); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("ListAccounts(robot) = %v, want ErrInvalid", err)
	}
}

func testSetAdmin(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	root := mustUser(t, s, "root", true)
	bob := mustUser(t, s, "bob", false)
	if _, err := s.SetAdmin(ctx, "nobody", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetAdmin(nobody) = %v", err)
	}
	if _, err := s.CreateOrg(ctx, "team", bob.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAdmin(ctx, "team", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetAdmin(an organisation) = %v, want ErrNotFound", err)
	}
	a, err := s.SetAdmin(ctx, "BOB", true, by("user.admin", "bob"))
	if err != nil || !a.IsAdmin || a.ID != bob.ID || a.Name != "bob" {
		t.Fatalf("SetAdmin(bob) = %+v, %v", a, err)
	}
	audited(t, s, "user.admin", "bob")
	if a, err := s.UserByName(ctx, "bob"); err != nil || !a.IsAdmin {
		t.Fatalf("bob after SetAdmin = %+v, %v", a, err)
	}
	// An admin may now hold the admin scope.
	if _, _, err := s.CreateToken(ctx, bob.ID, "ops", []store.Scope{store.ScopeAdmin}); err != nil {
		t.Fatalf("admin token for a new admin: %v", err)
	}
	// Either admin may be demoted while the other is enabled, not both.
	if a, err := s.SetAdmin(ctx, "root", false); err != nil || a.IsAdmin || a.ID != root.ID {
		t.Fatalf("demote root = %+v, %v", a, err)
	}
	n, _ := s.AuditEvents(ctx, 1000)
	if _, err := s.SetAdmin(ctx, "bob", false, by("user.unadmin", "bob")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("demoting the last admin = %v, want ErrConflict", err)
	}
	if m, _ := s.AuditEvents(ctx, 1000); len(m) != len(n) {
		t.Fatal("a refused demotion was audited")
	}
	if a, _ := s.UserByName(ctx, "bob"); !a.IsAdmin {
		t.Fatal("the refused demotion changed bob")
	}
	// A disabled admin does not count: with root an admin again but
	// disabled, bob is still the last enabled one.
	if _, err := s.SetAdmin(ctx, "root", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetDisabled(ctx, "root", true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAdmin(ctx, "bob", false); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("demoting the last enabled admin = %v, want ErrConflict", err)
	}
	// Demoting a disabled admin, or promoting anyone, is always fine.
	if a, err := s.SetAdmin(ctx, "root", false); err != nil || a.IsAdmin {
		t.Fatalf("demote disabled root = %+v, %v", a, err)
	}
	if a, err := s.SetAdmin(ctx, "bob", true); err != nil || !a.IsAdmin {
		t.Fatalf("promote an admin again = %+v, %v", a, err)
	}
}

// testSetAdminKeepsAnAdmin: two writers demoting the last two admins at
// once, through two handles: one wins.
func testSetAdminKeepsAnAdmin(t *testing.T, f Factory) {
	ctx := context.Background()
	_, a, b := f.twoHandles(t)
	for round := 0; round < 5; round++ {
		names := []string{"x" + string(rune('a'+round)), "y" + string(rune('a'+round))}
		for _, n := range names {
			if _, err := a.CreateUser(ctx, n, "password-"+n, true); err != nil {
				t.Fatal(err)
			}
		}
		// The admins made earlier are demoted first: only the two remain.
		us, _ := a.ListAccounts(ctx, store.KindUser)
		for _, u := range us {
			if u.IsAdmin && u.Name != names[0] && u.Name != names[1] {
				if _, err := a.SetAdmin(ctx, u.Name, false); err != nil {
					t.Fatal(err)
				}
			}
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, st := range []store.Store{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, errs[i] = st.SetAdmin(ctx, names[i], false)
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if ok != 1 {
			t.Fatalf("round %d: %d of 2 concurrent demotions of the last two admins succeeded, want 1 (%v)", round, ok, errs)
		}
	}
}

func testMembers(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	zed := mustUser(t, s, "zed", false)
	amy := mustUser(t, s, "Amy", false)
	org, err := s.CreateOrg(ctx, "team", zed.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetMembership(ctx, org.ID, amy.ID, store.RoleMember); err != nil {
		t.Fatal(err)
	}
	ms, err := s.Members(ctx, org.ID)
	if err != nil || len(ms) != 2 {
		t.Fatalf("Members = %+v, %v", ms, err)
	}
	if ms[0].User.ID != amy.ID || ms[0].User.Name != "Amy" || ms[0].Role != store.RoleMember || ms[1].User.ID != zed.ID || ms[1].Role != store.RoleOwner || ms[0].User.Kind != store.KindUser {
		t.Fatalf("Members = %+v, want Amy (member), zed (owner)", ms)
	}
	if err := s.RemoveMember(ctx, org.ID, amy.ID); err != nil {
		t.Fatal(err)
	}
	if ms, err := s.Members(ctx, org.ID); err != nil || len(ms) != 1 || ms[0].User.ID != zed.ID {
		t.Fatalf("Members after removal = %+v, %v", ms, err)
	}
	for _, id := range []int64{zed.ID, org.ID + 1000} {
		if _, err := s.Members(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Members(%d, not an organisation) = %v, want ErrNotFound", id, err)
		}
	}
}

func testCountBuilds(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	if n, err := s.CountBuilds(ctx, store.BuildQueued); err != nil || n != 0 {
		t.Fatalf("CountBuilds of an empty queue = %d, %v", n, err)
	}
	r1, r2 := testRepo(t, s, "alice", "one"), testRepo(t, s, "alice", "two")
	enqueue(t, s, r1, commitID(1), "", 1)
	enqueue(t, s, r2, commitID(2), "", 1)
	if n, err := s.CountBuilds(ctx, store.BuildQueued); err != nil || n != 2 {
		t.Fatalf("queued = %d, %v; want 2", n, err)
	}
	claim(t, s, "w1", time.Minute)
	q, _ := s.CountBuilds(ctx, store.BuildQueued)
	r, _ := s.CountBuilds(ctx, store.BuildRunning)
	if q != 1 || r != 1 {
		t.Fatalf("after a claim: queued %d, running %d; want 1 and 1", q, r)
	}
}
