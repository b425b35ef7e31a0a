package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"gitserver/store"
)

// Web sessions (issue 13): create, look up joined with the account, expire
// (idle and absolute), delete; a password change or a disable ends them.

func testSessions(t *testing.T, f Factory) {
	ctx := context.Background()
	clock := newFakeClock()
	s := f.open(t, clock)
	alice := mustUser(t, s, "alice", false)
	bob := mustUser(t, s, "bob", false)
	mustUser(t, s, "root", true)

	id, sess, err := s.CreateSession(ctx, alice.ID)
	if err != nil || len(id) != 64 || sess.UserID != alice.ID || len(sess.CSRF) < 32 {
		t.Fatalf("CreateSession = %q, %+v, %v", id, sess, err)
	}
	id2, sess2, err := s.CreateSession(ctx, alice.ID)
	if err != nil || id2 == id || sess2.CSRF == sess.CSRF {
		t.Fatalf("second session not fresh: %q %q, %v", id, id2, err)
	}
	a, got, err := s.SessionByID(ctx, id)
	if err != nil || a.ID != alice.ID || a.Name != "alice" || got.CSRF != sess.CSRF {
		t.Fatalf("SessionByID = %+v, %+v, %v", a, got, err)
	}
	for _, bad := range []string{"", "x", id[:63], store.SessionIDHash(id)} {
		if _, _, err := s.SessionByID(ctx, bad); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SessionByID(%q) = %v, want ErrNotFound", bad, err)
		}
	}

	// Idle expiry, kept alive by use.
	clock.Advance(store.SessionIdle - time.Minute)
	if _, _, err := s.SessionByID(ctx, id); err != nil {
		t.Fatalf("session used within the idle time: %v", err)
	}
	clock.Advance(store.SessionIdle - time.Minute)
	if _, _, err := s.SessionByID(ctx, id); err != nil {
		t.Fatalf("session kept alive by use: %v", err)
	}
	if _, _, err := s.SessionByID(ctx, id2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("idle session: %v, want ErrNotFound", err)
	}
	// Absolute expiry, however busy.
	for elapsed := 2 * (store.SessionIdle - time.Minute); elapsed < store.SessionMaxAge; elapsed += time.Hour {
		clock.Advance(time.Hour)
		if _, _, err := s.SessionByID(ctx, id); err != nil && elapsed+time.Hour < store.SessionMaxAge {
			t.Fatalf("busy session at %v: %v", elapsed, err)
		}
	}
	clock.Advance(time.Hour)
	if _, _, err := s.SessionByID(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session past its maximum age: %v, want ErrNotFound", err)
	}

	// Delete one; delete all of a user.
	a1, _, _ := s.CreateSession(ctx, alice.ID)
	a2, _, _ := s.CreateSession(ctx, alice.ID)
	b1, _, _ := s.CreateSession(ctx, bob.ID)
	if err := s.DeleteSession(ctx, a1); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteSession(ctx, a1); err != nil {
		t.Fatalf("deleting a deleted session: %v", err)
	}
	if _, _, err := s.SessionByID(ctx, a1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("deleted session: %v", err)
	}
	if n, err := s.DeleteUserSessions(ctx, alice.ID); err != nil || n != 1 {
		t.Fatalf("DeleteUserSessions = %d, %v, want 1", n, err)
	}
	if _, _, err := s.SessionByID(ctx, a2); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session after DeleteUserSessions: %v", err)
	}
	if _, _, err := s.SessionByID(ctx, b1); err != nil {
		t.Fatalf("another user's session ended: %v", err)
	}

	// A password change ends the user's sessions; others keep theirs.
	a3, _, _ := s.CreateSession(ctx, alice.ID)
	if err := s.SetPassword(ctx, "alice", "a-new-password-1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionByID(ctx, a3); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session after a password change: %v", err)
	}
	if _, _, err := s.SessionByID(ctx, b1); err != nil {
		t.Fatalf("bob's session after alice's password change: %v", err)
	}

	// A disabled account's session stops working, and stays ended when the
	// account is enabled again.
	if _, err := s.SetDisabled(ctx, "bob", true); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionByID(ctx, b1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("disabled account's session: %v", err)
	}
	if _, err := s.SetDisabled(ctx, "bob", false); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.SessionByID(ctx, b1); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("session of a re-enabled account came back: %v", err)
	}
}
