package storetest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitserver/store"
)

func newMirror(url string) store.NewMirror {
	return store.NewMirror{
		URL: url, PublicKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGq7 mirror",
		PrivateKey:          []byte("-----BEGIN OPENSSH PRIVATE KEY-----\nsecret\n-----END OPENSSH PRIVATE KEY-----\n"),
		KnownHosts:          "[git.example]:22 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHost\n",
		HostKeyFingerprints: []string{"SHA256:abc"},
		WebhookSecret:       "whsec-" + store.RandomHex(8),
	}
}

func testMirrors(t *testing.T, f Factory) {
	ctx := context.Background()
	clock := newFakeClock()
	s := f.open(t, clock)
	alice := mustUser(t, s, "alice", false)
	nm := newMirror("git@git.example:team/app.git")
	r, m, err := s.CreateMirror(ctx, store.NewRepo{OwnerID: alice.ID, Name: "app", Visibility: store.Restricted}, nm,
		store.AuditEntry{Actor: "alice", Action: "repo.create", Target: "alice/app", Detail: "mirror"})
	if err != nil {
		t.Fatal(err)
	}
	if r.FullName() != "alice/app" || m.RepoID != r.ID || m.URL != nm.URL || string(m.PrivateKey) != string(nm.PrivateKey) ||
		m.WebhookSecret != nm.WebhookSecret || m.Interval != store.DefaultMirrorInterval || m.Status != store.MirrorOK ||
		len(m.HookID) < 16 || len(m.HostKeyFingerprints) != 1 || !m.NextSyncAt.Equal(clock.Now()) || !m.LastSyncAt.IsZero() {
		t.Fatalf("unexpected mirror %+v of %+v", m, r)
	}
	if ev, _ := s.AuditEvents(ctx, 1); len(ev) != 1 || ev[0].Action != "repo.create" {
		t.Fatalf("audit: %+v", ev)
	}
	for _, get := range []func() (store.Mirror, error){
		func() (store.Mirror, error) { return s.MirrorByRepo(ctx, r.ID) },
		func() (store.Mirror, error) { return s.MirrorByHookID(ctx, m.HookID) },
	} {
		got, err := get()
		if err != nil || got.HookID != m.HookID || string(got.PrivateKey) != string(nm.PrivateKey) || got.WebhookSecret != nm.WebhookSecret {
			t.Fatalf("lookup: %+v %v", got, err)
		}
	}
	plain := testRepo(t, s, "alice", "plain")
	if _, err := s.MirrorByRepo(ctx, plain.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("mirror of a hosted repo: %v", err)
	}
	if _, err := s.MirrorByHookID(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hook: %v", err)
	}
	// A taken name, a bad mirror: nothing is created, not even the repo.
	if _, _, err := s.CreateMirror(ctx, store.NewRepo{OwnerID: alice.ID, Name: "APP", Visibility: store.Public}, newMirror("x")); !errors.Is(err, store.ErrExists) {
		t.Fatalf("taken name: %v", err)
	}
	bad := newMirror("git@h:x.git")
	bad.Interval = time.Second
	if _, _, err := s.CreateMirror(ctx, store.NewRepo{OwnerID: alice.ID, Name: "other", Visibility: store.Public}, bad); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad interval: %v", err)
	}
	if _, err := s.RepoByName(ctx, "alice", "other"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("a refused mirror left its repository: %v", err)
	}

	// Due, guarded state changes.
	due, err := s.DueMirrors(ctx, clock.Now(), 10)
	if err != nil || len(due) != 1 || due[0].RepoID != r.ID {
		t.Fatalf("due: %+v %v", due, err)
	}
	if _, err := s.UpdateMirror(ctx, r.ID, store.MirrorUpdate{From: store.MirrorOK, Status: store.MirrorSyncing}); err != nil {
		t.Fatal(err)
	}
	if due, _ := s.DueMirrors(ctx, clock.Now(), 10); len(due) != 0 {
		t.Fatalf("a syncing mirror is due: %+v", due)
	}
	if _, err := s.UpdateMirror(ctx, r.ID, store.MirrorUpdate{From: store.MirrorOK, Status: store.MirrorSyncing}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("guard: %v", err)
	}
	if _, err := s.UpdateMirror(ctx, plain.ID, store.MirrorUpdate{Status: store.MirrorOK}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("no mirror: %v", err)
	}
	if _, err := s.UpdateMirror(ctx, r.ID, store.MirrorUpdate{Status: "weird"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad status: %v", err)
	}
	clock.Advance(time.Second)
	next := clock.Now().Add(10 * time.Minute)
	m2, err := s.UpdateMirror(ctx, r.ID, store.MirrorUpdate{From: store.MirrorSyncing, Status: store.MirrorError, Synced: true,
		ErrorCode: "host_key_changed", ErrorMessage: "the host key changed", Rewrite: "master: a..b", NextSyncAt: next})
	if err != nil || m2.Status != store.MirrorError || m2.LastErrorCode != "host_key_changed" || m2.LastRewrite != "master: a..b" ||
		!m2.LastSyncAt.Equal(clock.Now()) || !m2.NextSyncAt.Equal(next) {
		t.Fatalf("finish: %+v %v", m2, err)
	}
	m3, err := s.UpdateMirror(ctx, r.ID, store.MirrorUpdate{Status: store.MirrorOK, Synced: true})
	if err != nil || m3.LastErrorCode != "" || m3.LastErrorMessage != "" || m3.LastRewrite != "master: a..b" {
		t.Fatalf("success keeps the last rewrite, clears the error: %+v %v", m3, err)
	}
	if due, _ := s.DueMirrors(ctx, clock.Now(), 10); len(due) != 0 {
		t.Fatalf("not due yet: %+v", due)
	}
	// The upstream's default branch changed: the repository follows, audited.
	if _, err := s.UpdateMirror(ctx, r.ID, store.MirrorUpdate{Status: store.MirrorOK, DefaultBranch: "bad..name"}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("bad default branch: %v", err)
	}
	if _, err := s.UpdateMirror(ctx, r.ID, store.MirrorUpdate{Status: store.MirrorOK, DefaultBranch: "trunk"}); err != nil {
		t.Fatal(err)
	}
	if r2, err := s.RepoByID(ctx, r.ID); err != nil || r2.DefaultBranch != "trunk" {
		t.Fatalf("default branch after the update: %+v %v", r2, err)
	}
	if ev, err := s.AuditEvents(ctx, 1); err != nil || len(ev) != 1 || ev[0].Action != "repo.default_branch" || ev[0].Actor != "mirror" {
		t.Fatalf("audit of the default branch change: %+v %v", ev, err)
	}
	if _, err := s.UpdateMirror(ctx, plain.ID, store.MirrorUpdate{Status: store.MirrorOK, DefaultBranch: "trunk"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("default branch of a repository that is no mirror: %v", err)
	}
	if due, _ := s.DueMirrors(ctx, next, 10); len(due) != 1 {
		t.Fatalf("due later: %+v", due)
	}

	// Deliveries.
	if fresh, err := s.RecordDelivery(ctx, m.HookID, "d1"); err != nil || !fresh {
		t.Fatalf("first delivery: %v %v", fresh, err)
	}
	if fresh, err := s.RecordDelivery(ctx, m.HookID, "d1"); err != nil || fresh {
		t.Fatalf("replay: %v %v", fresh, err)
	}
	if _, err := s.RecordDelivery(ctx, "nope", "d1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("unknown hook: %v", err)
	}
	if got, _ := s.MirrorByRepo(ctx, r.ID); !got.LastDeliveryAt.Equal(clock.Now()) {
		t.Fatalf("last delivery %v", got.LastDeliveryAt)
	}
	clock.Advance(store.MirrorDeliveryRetention + time.Hour)
	if fresh, err := s.RecordDelivery(ctx, m.HookID, "d1"); err != nil || !fresh {
		t.Fatalf("an id older than the retention is forgotten: %v %v", fresh, err)
	}
	if all, err := s.Mirrors(ctx); err != nil || len(all) != 1 {
		t.Fatalf("mirrors: %+v %v", all, err)
	}
	// Deleting the repository deletes its mirror.
	if err := s.DeleteRepo(ctx, r.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.MirrorByHookID(ctx, m.HookID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("mirror outlived its repo: %v", err)
	}
}

// testTwoHandlesRecordDeliveryOnce: one delivery id recorded through two
// Store values at once is new exactly once.
func testTwoHandlesRecordDeliveryOnce(t *testing.T, f Factory) {
	ctx := context.Background()
	a := f.open(t, nil)
	b := f.second(t, a, nil)
	alice := mustUser(t, a, "alice", false)
	_, m, err := a.CreateMirror(ctx, store.NewRepo{OwnerID: alice.ID, Name: "app", Visibility: store.Restricted}, newMirror("git@h:x/y.git"))
	if err != nil {
		t.Fatal(err)
	}
	for round := range 5 {
		id := "delivery-" + string(rune('a'+round))
		var fresh atomic.Int32
		var wg sync.WaitGroup
		for i := range 16 {
			s := a
			if i%2 == 1 {
				s = b
			}
			wg.Go(func() {
				ok, err := s.RecordDelivery(ctx, m.HookID, id)
				if err != nil {
					t.Error(err)
				}
				if ok {
					fresh.Add(1)
				}
			})
		}
		wg.Wait()
		if n := fresh.Load(); n != 1 {
			t.Fatalf("%s new %d times", id, n)
		}
	}
}
