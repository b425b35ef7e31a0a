package mirror

import (
	"context"
	"os"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/postgres"
	"gitserver/store/postgres/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestSyncLockAcrossNodes: with Locks (two nodes on one PostgreSQL
// database), a sync waits while another node syncs the mirror, and a mirror
// left "syncing" is reset only once no node holds its lock (a live node's
// sync is not clobbered; a dead node's lock died with it).
func TestSyncLockAcrossNodes(t *testing.T) {
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
	u, err := nodeA.CreateUser(ctx, "alice", "password-alice", false)
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := nodeA.CreateMirror(ctx, store.NewRepo{OwnerID: u.ID, Name: "app", Visibility: store.Restricted}, store.NewMirror{
		URL: "git@git.example:team/app.git", PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq7 mirror",
		PrivateKey: []byte("key"), KnownHosts: "[git.example]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost\n",
		HostKeyFingerprints: []string{"SHA256:abc"}, WebhookSecret: "whsec",
	})
	if err != nil {
		t.Fatal(err)
	}
	// Node B is syncing it.
	release, ok, err := nodeB.TryLock(ctx, syncLockKey(r.ID))
	if err != nil || !ok {
		t.Fatalf("B's lock: %v %v", ok, err)
	}
	if _, err := nodeB.UpdateMirror(ctx, r.ID, store.MirrorUpdate{Status: store.MirrorSyncing}); err != nil {
		t.Fatal(err)
	}
	e := &Engine{Store: nodeA, Locks: nodeA}
	e.recoverSyncing(ctx)
	if m, err := nodeA.MirrorByRepo(ctx, r.ID); err != nil || m.Status != store.MirrorSyncing {
		t.Fatalf("A reset a mirror B is syncing: %+v %v", m.Status, err)
	}
	got := make(chan func(), 1)
	go func() {
		rel, err := e.syncLock(ctx, r.ID)
		if err != nil {
			t.Error(err)
			close(got)
			return
		}
		got <- rel
	}()
	select {
	case <-got:
		t.Fatal("A's sync did not wait for B's")
	case <-time.After(1500 * time.Millisecond):
	}
	release() // B stops (finishes, or dies) without resetting the status
	var relA func()
	select {
	case relA = <-got:
	case <-time.After(20 * time.Second):
		t.Fatal("A's sync never got the lock")
	}
	if relA == nil {
		return
	}
	relA()
	e.recoverSyncing(ctx)
	if m, err := nodeA.MirrorByRepo(ctx, r.ID); err != nil || m.Status != store.MirrorOK {
		t.Fatalf("a mirror left syncing with its lock free: %+v %v, want ok", m.Status, err)
	}
}
