package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"gitserver/store"
	"gitserver/store/postgres"
	"gitserver/store/postgres/pgtest"
)

// node opens a DB on url whose Changed closes only on a notification or
// a reconnection (the fallback re-check is an hour away), so that a test
// sees which one woke it.
func node(t *testing.T, url string) *postgres.DB {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{MaxConns: 4, Recheck: time.Hour})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func newRepo(t *testing.T, s store.Store) store.Repo {
	t.Helper()
	ctx := context.Background()
	u, err := s.CreateUser(ctx, "alice", "password-of-alice", false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: u.ID, Name: "app", Visibility: store.Public})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func enqueue(t *testing.T, s store.Store, repoID int64, commit string) store.Build {
	t.Helper()
	ctx := context.Background()
	base, err := s.BuildBase(ctx, repoID, "")
	if err != nil {
		t.Fatal(err)
	}
	b, created, err := s.EnqueueBuild(ctx, store.NewBuild{RepoID: repoID, Branch: "main", Commit: commit, PreviousCommit: base, CommitCount: 1})
	if err != nil || !created {
		t.Fatalf("enqueue %s: %v %v", commit, created, err)
	}
	return b
}

func commitID(n int) string { return fmt.Sprintf("%040x", n) }

func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(20 * time.Second):
		t.Fatalf("%s: Changed did not close", what)
	}
}

func assertOpen(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: Changed closed with nothing queued", what)
	default:
	}
}

// TestChangedAcrossNodes: an enqueue and a lease expiry on node A close
// the Changed channel of node B (LISTEN/NOTIFY), and nothing else does.
func TestChangedAcrossNodes(t *testing.T) {
	url := pgtest.Start(t)
	a, b := node(t, url), node(t, url)
	r := newRepo(t, a)
	ctx := context.Background()

	ch := b.Changed()
	assertOpen(t, ch, "before any enqueue")
	enqueue(t, a, r.ID, commitID(1))
	waitClosed(t, ch, "enqueue on the other node")

	// A claim by B, a lease that runs out, expiry run by A: B hears it.
	got, err := b.ClaimBuild(ctx, "w", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ch = b.Changed()
	time.Sleep(1100 * time.Millisecond) // the lease is whole seconds
	for deadline := time.Now().Add(10 * time.Second); ; {
		n, err := a.ExpireLeases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lease of build %d never expired", got.ID)
		}
		time.Sleep(100 * time.Millisecond)
	}
	waitClosed(t, ch, "lease expiry on the other node")
	again, err := b.ClaimBuild(ctx, "w", time.Minute)
	if err != nil || again.ID != got.ID || again.Attempt != 2 {
		t.Fatalf("re-claim: %+v %v", again, err)
	}
}

// TestListenerReconnects: when the LISTEN connection is killed, the DB
// connects again, and notifications reach it afterwards.
func TestListenerReconnects(t *testing.T) {
	url := pgtest.Start(t)
	a, b := node(t, url), node(t, url)
	r := newRepo(t, a)

	ch := b.Changed()
	conn, err := pgx.Connect(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tag, err := conn.Exec(context.Background(), `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND query LIKE 'LISTEN %'`)
	if err != nil {
		t.Fatal(err)
	}
	if tag.RowsAffected() != 2 {
		t.Fatalf("terminated %d listeners, want 2 (one per node)", tag.RowsAffected())
	}
	waitClosed(t, ch, "reconnection") // after a reconnection, a re-check
	ch = b.Changed()
	enqueue(t, a, r.ID, commitID(1))
	waitClosed(t, ch, "enqueue after the reconnection")
}

// TestSurvivesDatabaseRestart: after PostgreSQL restarts, the pool
// reconnects (Ping, claims) and the listener too.
func TestSurvivesDatabaseRestart(t *testing.T) {
	url := pgtest.Start(t)
	a, b := node(t, url), node(t, url)
	r := newRepo(t, a)
	ctx := context.Background()

	pgtest.Restart(t)
	// The pool's idle connections died with the server: the first use
	// may fail; a later one must not.
	var err error
	for i := 0; i < 50; i++ {
		if err = a.Ping(ctx); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("ping after restart: %v", err)
	}
	// Wait for B's listener to be back (it re-checks when it is).
	for i := 0; ; i++ {
		var n int
		conn, err := pgx.Connect(ctx, url)
		if err == nil {
			err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND query LIKE 'LISTEN %'`).Scan(&n)
			conn.Close(ctx)
		}
		if err == nil && n == 2 {
			break
		}
		if i == 100 {
			t.Fatalf("listeners not back after the restart: %d, %v", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	ch := b.Changed()
	for i := 0; ; i++ {
		_, err = a.BuildBase(ctx, r.ID, "")
		if err == nil || i == 20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	enqueue(t, a, r.ID, commitID(1))
	waitClosed(t, ch, "enqueue after the restart")
	if _, err := b.ClaimBuild(ctx, "w", time.Minute); err != nil {
		t.Fatalf("claim after restart: %v", err)
	}
}

// TestRedactsPassword: no error of Open shows the password.
func TestRedactsPassword(t *testing.T) {
	url := pgtest.Start(t)
	bad := strings.Replace(url, "/t", "/nosuchdb", 1)
	_, err := postgres.Open(context.Background(), bad, postgres.Options{})
	if err == nil {
		t.Fatal("opened a database that does not exist")
	}
	if strings.Contains(err.Error(), pgtest.Password) {
		t.Fatalf("error shows the password: %v", err)
	}
	if got := postgres.Redact(url); strings.Contains(got, pgtest.Password) || !strings.Contains(got, "xxxxx") {
		t.Fatalf("Redact(%q) = %q", url, got)
	}
	if errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a connection failure is not a sentinel: %v", err)
	}
}

// TestTryLockAcrossNodes: a lock is one node's at a time, per key, and is
// free for the other node as soon as release returns (release used to only
// close the session, which frees the lock when the server gets to it: B's
// TryLock right after sometimes still found it held; -count=40 showed it).
func TestTryLockAcrossNodes(t *testing.T) {
	url := pgtest.Start(t)
	a, b := node(t, url), node(t, url)
	ctx := context.Background()
	relA, ok, err := a.TryLock(ctx, "maintain:1")
	if err != nil || !ok {
		t.Fatalf("A: %v %v", ok, err)
	}
	if _, ok, err := b.TryLock(ctx, "maintain:1"); err != nil || ok {
		t.Fatalf("B took a lock A holds: %v %v", ok, err)
	}
	relB2, ok, err := b.TryLock(ctx, "maintain:2")
	if err != nil || !ok {
		t.Fatalf("B, another key: %v %v", ok, err)
	}
	relB2()
	relA()
	relA() // twice is harmless
	relB, ok, err := b.TryLock(ctx, "maintain:1")
	if err != nil || !ok {
		t.Fatalf("B after A released: %v %v", ok, err)
	}
	relB()
}
