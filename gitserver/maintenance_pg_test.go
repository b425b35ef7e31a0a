package gitserver

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/postgres"
	"gitserver/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestMaintenanceOneNodeAtATime: with Locks (two nodes on one PostgreSQL
// database), a repository whose maintenance another node holds is not
// maintained meanwhile; the job comes back and runs once the other node is
// done.
func TestMaintenanceOneNodeAtATime(t *testing.T) {
	t.Parallel()
	url := pgtest.Start(t)
	ctx := context.Background()
	open := func() *postgres.DB {
		s, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	nodeA, nodeB := open(), open()
	f := newMaintFixture(t)
	r := f.repoWithPushes(7, 2)
	dir := f.repos.Dir(r)

	// Node B is maintaining the repository.
	release, ok, err := nodeB.TryLock(ctx, "maintain:7")
	if err != nil || !ok {
		t.Fatalf("B's lock: %v %v", ok, err)
	}
	done := make(chan error, 4)
	m := &Maintainer{Git: f.git, Repos: f.repos, Locks: nodeA, Delay: 50 * time.Millisecond,
		OnDone: func(_ store.Repo, err error) { done <- err }}
	defer m.Close()
	if err := m.Run(ctx, r); !errors.Is(err, ErrMaintainedElsewhere) {
		t.Fatalf("Run while B holds the lock: %v, want ErrMaintainedElsewhere", err)
	}
	if !NeedsMaintenance(dir) {
		t.Fatal("maintained although another node held the lock")
	}
	m.Schedule(r)
	if err := <-done; !errors.Is(err, ErrMaintainedElsewhere) {
		t.Fatalf("scheduled job while B holds the lock: %v", err)
	}
	release() // B is done
	for {
		select {
		case err := <-done:
			if errors.Is(err, ErrMaintainedElsewhere) {
				continue // a retry that came before the release
			}
			if err != nil {
				t.Fatalf("maintenance after B released: %v", err)
			}
			if NeedsMaintenance(dir) {
				t.Fatal("still needs maintenance")
			}
			return
		case <-time.After(30 * time.Second):
			t.Fatal("the job did not come back after B released the lock")
		}
	}
}
