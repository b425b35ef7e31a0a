package storetest

import (
	"context"
	"errors"
	"testing"

	"gitserver/store"
)

// testAuditCommitsWithTheChange: a mutating method's audit entries commit
// with its change, and a change that fails leaves no audit event.
func testAuditCommitsWithTheChange(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, newFakeClock())
	entry := func(action, target, detail string) store.AuditEntry {
		return store.AuditEntry{Actor: "alice", Action: action, Target: target, Detail: detail}
	}
	count := func() int {
		t.Helper()
		ev, err := s.AuditEvents(ctx, 1000)
		if err != nil {
			t.Fatal(err)
		}
		return len(ev)
	}
	last := func() store.AuditEvent {
		t.Helper()
		ev, err := s.AuditEvents(ctx, 1)
		if err != nil || len(ev) != 1 {
			t.Fatalf("AuditEvents = %v, %v", ev, err)
		}
		return ev[0]
	}
	// expect checks that a successful change left exactly its entry.
	expect := func(what string, before int, action, target, detail string) {
		t.Helper()
		if n := count(); n != before+1 {
			t.Fatalf("%s: %d audit events, want %d", what, n, before+1)
		}
		if e := last(); e.Actor != "alice" || e.Action != action || e.Target != target || e.Detail != detail {
			t.Fatalf("%s: audit event %+v, want %s %s %q", what, e, action, target, detail)
		}
	}
	// refused checks that a failed change left no audit event.
	refused := func(what string, before int, err, want error) {
		t.Helper()
		if !errors.Is(err, want) {
			t.Fatalf("%s: %v, want %v", what, err, want)
		}
		if n := count(); n != before {
			t.Fatalf("%s failed, yet %d audit events were written", what, n-before)
		}
	}

	n := count()
	alice, err := s.CreateUser(ctx, "alice", "password-alice", true, entry("user.create", "alice", "admin=true"))
	if err != nil {
		t.Fatal(err)
	}
	expect("CreateUser", n, "user.create", "alice", "admin=true")
	n = count()
	_, err = s.CreateUser(ctx, "ALICE", "password-alice", false, entry("user.create", "ALICE", ""))
	refused("CreateUser of a taken name", n, err, store.ErrExists)

	n = count()
	if err := s.SetPassword(ctx, "alice", "password-new", entry("user.passwd", "alice", "")); err != nil {
		t.Fatal(err)
	}
	expect("SetPassword", n, "user.passwd", "alice", "")
	refused("SetPassword of an unknown user", n+1, s.SetPassword(ctx, "nobody", "password-new", entry("user.passwd", "nobody", "")), store.ErrNotFound)

	n = count()
	bob := mustUser(t, s, "bob", false)
	if count() != n {
		t.Fatal("a change without audit entries wrote an audit event")
	}
	_, _, err = s.CreateToken(ctx, bob.ID, "ci", []store.Scope{store.ScopeBuilds}, entry("token.create", "bob", "ci builds"))
	refused("CreateToken of a builds token for a non-admin", n, err, store.ErrForbidden)
	if _, _, err := s.CreateToken(ctx, alice.ID, "ci", []store.Scope{store.ScopeBuilds}, entry("token.create", "alice", "ci builds")); err != nil {
		t.Fatal(err)
	}
	expect("CreateToken", n, "token.create", "alice", "ci builds")

	n = count()
	k, err := store.ParseSSHKey(newPubKey(t, "k1"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddKey(ctx, store.NewKey{UserID: bob.ID, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey}, entry("key.add", "bob", k.Fingerprint)); err != nil {
		t.Fatal(err)
	}
	expect("AddKey", n, "key.add", "bob", k.Fingerprint)
	n = count()
	_, err = s.AddKey(ctx, store.NewKey{UserID: alice.ID, Fingerprint: k.Fingerprint, PublicKey: k.PublicKey}, entry("key.add", "alice", k.Fingerprint))
	refused("AddKey of a key in use", n, err, store.ErrExists)

	n = count()
	org, err := s.CreateOrg(ctx, "algos", alice.ID, entry("org.create", "algos", ""))
	if err != nil {
		t.Fatal(err)
	}
	expect("CreateOrg", n, "org.create", "algos", "")
	_, err = s.CreateOrg(ctx, "Algos", alice.ID, entry("org.create", "Algos", ""))
	refused("CreateOrg of a taken name", n+1, err, store.ErrExists)
	n = count()
	if err := s.SetMembership(ctx, org.ID, bob.ID, store.RoleMember, entry("org.member", "algos", "bob=member")); err != nil {
		t.Fatal(err)
	}
	expect("SetMembership", n, "org.member", "algos", "bob=member")
	refused("SetMembership with a bad role", n+1, s.SetMembership(ctx, org.ID, bob.ID, "boss", entry("org.member", "algos", "bob=boss")), store.ErrInvalid)

	n = count()
	r, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: org.ID, Name: "sort", Visibility: store.Public}, entry("repo.create", "algos/sort", "public"))
	if err != nil {
		t.Fatal(err)
	}
	expect("CreateRepo", n, "repo.create", "algos/sort", "public")
	_, err = s.CreateRepo(ctx, store.NewRepo{OwnerID: org.ID, Name: "SORT", Visibility: store.Public}, entry("repo.create", "algos/SORT", "public"))
	refused("CreateRepo of a taken name", n+1, err, store.ErrExists)

	n = count()
	failed := finishedBuild(t, s, r, commitID(1), store.BuildFailed)
	_, err = s.Publish(ctx, r.ID, failed.ID, store.BumpMinor, "", "alice", entry("version.publish", "algos/sort", ""))
	refused("Publish of a failed build", n, err, store.ErrConflict)
	ok := finishedBuild(t, s, r, commitID(2), store.BuildSucceeded)
	v, err := s.Publish(ctx, r.ID, ok.ID, store.BumpMinor, "", "alice", entry("version.publish", "algos/sort", ""))
	if err != nil {
		t.Fatal(err)
	}
	expect("Publish", n, "version.publish", "algos/sort", "0.1.0")
	if v.String() != "0.1.0" {
		t.Fatalf("published %s", v)
	}

	n = count()
	refused("DeleteRepo of an unknown repository", n, s.DeleteRepo(ctx, r.ID+1000, entry("repo.delete", "algos/none", "")), store.ErrNotFound)
	if err := s.DeleteRepo(ctx, r.ID, entry("repo.delete", "algos/sort", "")); err != nil {
		t.Fatal(err)
	}
	expect("DeleteRepo", n, "repo.delete", "algos/sort", "")

	// Several entries commit together.
	n = count()
	if _, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: bob.ID, Name: "two", Visibility: store.Restricted},
		entry("repo.create", "bob/two", "a"), entry("repo.create", "bob/two", "b")); err != nil {
		t.Fatal(err)
	}
	if got := count(); got != n+2 {
		t.Fatalf("two audit entries gave %d events", got-n)
	}
}
