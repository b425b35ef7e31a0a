package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"gitserver/store"
)

// Taking access back (issue 10): listing and revoking tokens, disabling
// accounts, removing members; an organisation keeps an owner and the server
// an enabled admin, whatever the number of writers.

func audited(t *testing.T, s store.Store, action, target string) {
	t.Helper()
	ev, err := s.AuditEvents(context.Background(), 1)
	if err != nil || len(ev) != 1 || ev[0].Action != action || ev[0].Target != target || ev[0].Actor != "tester" {
		t.Fatalf("last audit event = %+v, %v; want tester %s %s", ev, err, action, target)
	}
}

func by(action, target string) store.AuditEntry {
	return store.AuditEntry{Actor: "tester", Action: action, Target: target}
}

func testTokenListAndRevoke(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	alice := mustUser(t, s, "alice", false)
	bob := mustUser(t, s, "bob", false)
	if toks, err := s.Tokens(ctx, alice.ID); err != nil || toks == nil || len(toks) != 0 {
		t.Fatalf("Tokens of a user without any = %#v, %v; want empty, not nil", toks, err)
	}
	sec1, t1, _ := s.CreateToken(ctx, alice.ID, "laptop", nil)
	sec2, t2, _ := s.CreateToken(ctx, alice.ID, "ci", []store.Scope{store.ScopeRepoRead})
	_, tb, _ := s.CreateToken(ctx, bob.ID, "bob's", nil)
	toks, err := s.Tokens(ctx, alice.ID)
	if err != nil || len(toks) != 2 || toks[0].ID != t1.ID || toks[1].ID != t2.ID || toks[1].Name != "ci" ||
		len(toks[1].Scopes) != 1 || toks[1].Scopes[0] != store.ScopeRepoRead || toks[0].CreatedAt.IsZero() {
		t.Fatalf("Tokens(alice) = %+v, %v", toks, err)
	}
	// Someone else's token, or an unknown one, is not found, and nothing
	// is revoked or audited.
	for _, id := range []int64{tb.ID, 9999} {
		if err := s.DeleteToken(ctx, alice.ID, id, by("token.revoke", "alice")); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("DeleteToken(alice, %d) = %v, want ErrNotFound", id, err)
		}
	}
	if err := s.DeleteToken(ctx, alice.ID, t1.ID, by("token.revoke", "alice")); err != nil {
		t.Fatal(err)
	}
	audited(t, s, "token.revoke", "alice")
	if _, _, err := s.CheckToken(ctx, "", sec1); !errors.Is(err, store.ErrBadCredentials) {
		t.Fatalf("revoked token: %v, want ErrBadCredentials", err)
	}
	if _, _, err := s.CheckToken(ctx, "", sec2); err != nil {
		t.Fatalf("the other token stopped working: %v", err)
	}
	if err := s.DeleteToken(ctx, alice.ID, t1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking twice = %v, want ErrNotFound", err)
	}
	if toks, _ := s.Tokens(ctx, bob.ID); len(toks) != 1 {
		t.Fatalf("bob's tokens %+v", toks)
	}
}

func testDisableAccount(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	root := mustUser(t, s, "root", true)
	bob := mustUser(t, s, "bob", false)
	secret, _, _ := s.CreateToken(ctx, bob.ID, "", nil)
	if _, err := s.SetDisabled(ctx, "nobody", true); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SetDisabled(nobody) = %v", err)
	}
	a, err := s.SetDisabled(ctx, "BOB", true, by("user.disable", "bob"))
	if err != nil || !a.Disabled || a.ID != bob.ID {
		t.Fatalf("SetDisabled(bob) = %+v, %v", a, err)
	}
	audited(t, s, "user.disable", "bob")
	if _, err := s.CheckPassword(ctx, "bob", "password-bob"); !errors.Is(err, store.ErrBadCredentials) {
		t.Fatalf("disabled password: %v", err)
	}
	if _, _, err := s.CheckToken(ctx, "", secret); !errors.Is(err, store.ErrBadCredentials) {
		t.Fatalf("disabled token: %v", err)
	}
	if a, _, err := s.UserWithPasswordHash(ctx, bob.ID); err != nil || !a.Disabled {
		t.Fatalf("UserWithPasswordHash of a disabled user = %+v, %v", a, err)
	}
	if a, err := s.AccountByID(ctx, bob.ID); err != nil || !a.Disabled {
		t.Fatalf("AccountByID = %+v, %v", a, err)
	}
	if a, err := s.SetDisabled(ctx, "bob", false); err != nil || a.Disabled {
		t.Fatalf("enable = %+v, %v", a, err)
	}
	if _, err := s.CheckPassword(ctx, "bob", "password-bob"); err != nil {
		t.Fatalf("re-enabled password: %v", err)
	}
	if _, _, err := s.CheckToken(ctx, "bob", secret); err != nil {
		t.Fatalf("re-enabled token: %v", err)
	}

	// The last enabled admin cannot be disabled; nothing is audited.
	n, _ := s.AuditEvents(ctx, 1000)
	if _, err := s.SetDisabled(ctx, "root", true, by("user.disable", "root")); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("disabling the only admin = %v, want ErrConflict", err)
	}
	if m, _ := s.AuditEvents(ctx, 1000); len(m) != len(n) {
		t.Fatal("a refused disable was audited")
	}
	mustUser(t, s, "root2", true)
	if _, err := s.SetDisabled(ctx, "root", true); err != nil {
		t.Fatalf("disabling an admin while another is enabled: %v", err)
	}
	if _, err := s.SetDisabled(ctx, "root2", true); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("disabling the last enabled admin = %v, want ErrConflict", err)
	}
	// Disabling a disabled admin again, or enabling one, is always fine.
	if _, err := s.SetDisabled(ctx, "root", true); err != nil {
		t.Fatal(err)
	}
	if a, err := s.SetDisabled(ctx, "root", false); err != nil || a.Disabled || a.ID != root.ID {
		t.Fatalf("enable root = %+v, %v", a, err)
	}
}

func testOrgKeepsAnOwner(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	alice := mustUser(t, s, "alice", false)
	bob := mustUser(t, s, "bob", false)
	carol := mustUser(t, s, "carol", false)
	org, err := s.CreateOrg(ctx, "acme", alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.SetMembership(ctx, org.ID, alice.ID, store.RoleMember); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("demoting the only owner = %v, want ErrConflict", err)
	}
	if err := s.RemoveMember(ctx, org.ID, alice.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("removing the only owner = %v, want ErrConflict", err)
	}
	if err := s.RemoveMember(ctx, org.ID, bob.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("removing a non-member = %v, want ErrNotFound", err)
	}
	if err := s.SetMembership(ctx, org.ID, alice.ID, store.RoleOwner); err != nil {
		t.Fatalf("the only owner re-stating their role: %v", err)
	}
	_ = s.SetMembership(ctx, org.ID, carol.ID, store.RoleMember)
	if err := s.RemoveMember(ctx, org.ID, carol.ID, by("org.member.remove", "acme")); err != nil {
		t.Fatal(err)
	}
	audited(t, s, "org.member.remove", "acme")
	if role, _ := s.Role(ctx, org.ID, carol.ID); role != "" {
		t.Fatalf("removed member's role %q", role)
	}
	if err := s.SetMembership(ctx, org.ID, bob.ID, store.RoleOwner); err != nil {
		t.Fatal(err)
	}
	// With a second owner, the first may step down, then leave.
	if err := s.SetMembership(ctx, org.ID, alice.ID, store.RoleMember); err != nil {
		t.Fatalf("demoting one of two owners: %v", err)
	}
	if err := s.RemoveMember(ctx, org.ID, bob.ID); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("removing the new only owner = %v, want ErrConflict", err)
	}
	if err := s.RemoveMember(ctx, org.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
}

// testTwoHandlesKeepAnOwner: the two owners of an organisation each leave
// (or step down) at once through two Store values: exactly one succeeds,
// the other gets ErrConflict, and the organisation keeps an owner. The same
// for the server's last two enabled admins.
func testTwoHandlesKeepAnOwner(t *testing.T, f Factory) {
	ctx := context.Background()
	a := f.open(t, nil)
	b := f.second(t, a, nil)
	const rounds = 10
	o1 := mustUser(t, a, "own1", false)
	o2 := mustUser(t, a, "own2", false)
	for i := 0; i < rounds; i++ {
		org, err := a.CreateOrg(ctx, fmt.Sprintf("org%d", i), o1.ID)
		if err != nil {
			t.Fatal(err)
		}
		if err := a.SetMembership(ctx, org.ID, o2.ID, store.RoleOwner); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for j, s := range []store.Store{a, b} {
			wg.Add(1)
			go func(j int, s store.Store) {
				defer wg.Done()
				<-start
				uid := []int64{o1.ID, o2.ID}[j]
				if i%2 == 0 {
					errs[j] = s.RemoveMember(ctx, org.ID, uid)
				} else {
					errs[j] = s.SetMembership(ctx, org.ID, uid, store.RoleMember)
				}
			}(j, s)
		}
		close(start)
		wg.Wait()
		ok := 0
		for j, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("round %d, handle %d: %v, want ErrConflict", i, j, err)
			}
		}
		owners := 0
		for _, u := range []int64{o1.ID, o2.ID} {
			if r, _ := b.Role(ctx, org.ID, u); r == store.RoleOwner {
				owners++
			}
		}
		if ok != 1 || owners != 1 {
			t.Fatalf("round %d: %d of 2 owners left or stepped down, %d owners remain; want 1 and 1", i, ok, owners)
		}
	}

	for i := 0; i < 4; i++ {
		// A fresh database each round: these two are its only admins.
		a := f.open(t, nil)
		b := f.second(t, a, nil)
		mustUser(t, a, "adm1", true)
		mustUser(t, a, "adm2", true)
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for j, s := range []store.Store{a, b} {
			wg.Add(1)
			go func(j int, s store.Store) {
				defer wg.Done()
				<-start
				_, errs[j] = s.SetDisabled(ctx, []string{"adm1", "adm2"}[j], true)
			}(j, s)
		}
		close(start)
		wg.Wait()
		ok := 0
		for j, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrConflict):
				t.Fatalf("admins round %d, handle %d: %v, want ErrConflict", i, j, err)
			}
		}
		if ok != 1 {
			t.Fatalf("admins round %d: %d of the last 2 enabled admins disabled, want 1", i, ok)
		}
	}
}
