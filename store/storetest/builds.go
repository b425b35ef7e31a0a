package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"gitserver/store"
)

func testEnqueueFirstBuildAndDedupe(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	r := testRepo(t, s, "alice", "app")
	ctx := context.Background()

	var prev string
	b, created, err := enqueueCounted(ctx, s, countedBuild{
		RepoID: r.ID, Branch: "master", Commit: commitID(1), PushedBy: "alice", Count: countFrom(3, &prev),
	})
	if err != nil || !created {
		t.Fatalf("enqueue: created=%v err=%v", created, err)
	}
	if prev != "" {
		t.Errorf("first build counted from %q, want from the root", prev)
	}
	if b.Status != store.BuildQueued || b.Attempt != 1 || b.CommitCount != 3 || b.PreviousCommit != "" ||
		b.Commit != commitID(1) || b.Repo != "alice/app" || b.Branch != "master" || b.PushedBy != "alice" {
		t.Errorf("unexpected build %+v", b)
	}
	if !b.QueuedAt.Equal(clock.Now()) {
		t.Errorf("queued_at %v, want the injected clock %v", b.QueuedAt, clock.Now())
	}

	// The same commit again: the existing build, nothing new.
	b2, created, err := enqueueCounted(ctx, s, countedBuild{RepoID: r.ID, Branch: "master", Commit: commitID(1), Count: countFrom(99, nil)})
	if err != nil || created || b2.ID != b.ID {
		t.Fatalf("re-enqueue same commit: created=%v id=%d (want %d) err=%v", created, b2.ID, b.ID, err)
	}
	if ok, err := s.HasBuildFor(ctx, r.ID, commitID(1)); err != nil || !ok {
		t.Errorf("HasBuildFor = %v, %v", ok, err)
	}
	if ok, err := s.HasBuildFor(ctx, r.ID, commitID(2)); err != nil || ok {
		t.Errorf("HasBuildFor unknown commit = %v, %v", ok, err)
	}
	all, err := s.Builds(ctx, r.ID, "", 100)
	if err != nil || len(all) != 1 {
		t.Fatalf("builds = %d, %v; want exactly 1", len(all), err)
	}
}

func testEnqueueOldHeadIsPreviousWhenNothingBuilt(t *testing.T, f Factory) {
	s := f.open(t, newFakeClock())
	r := testRepo(t, s, "alice", "app")
	var prev string
	b, _, err := enqueueCounted(context.Background(), s, countedBuild{
		RepoID: r.ID, Branch: "master", Commit: commitID(2), OldHead: commitID(1), Count: countFrom(1, &prev),
	})
	if err != nil {
		t.Fatal(err)
	}
	if prev != commitID(1) || b.PreviousCommit != commitID(1) {
		t.Errorf("prev counted %q, stored %q; want the old head %s", prev, b.PreviousCommit, commitID(1))
	}
}

func testEnqueueCountError(t *testing.T, f Factory) {
	s := f.open(t, newFakeClock())
	r := testRepo(t, s, "alice", "app")
	_, _, err := enqueueCounted(context.Background(), s, countedBuild{
		RepoID: r.ID, Branch: "master", Commit: commitID(1),
		Count: func(string) (int, error) { return 0, errors.New("boom") },
	})
	if err == nil {
		t.Fatal("enqueue with a failing count succeeded")
	}
	if all, _ := s.Builds(context.Background(), r.ID, "", 10); len(all) != 0 {
		t.Errorf("a failed enqueue left %d builds", len(all))
	}
}

func testSupersedeQueuedBuild(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	r := testRepo(t, s, "alice", "app")
	ctx := context.Background()

	// A build ran for commit 1: it is the previous build of everything after.
	first, _ := enqueue(t, s, r, commitID(1), "", 1)
	c := claim(t, s, "w", time.Minute)
	if _, err := s.CompleteBuild(ctx, c.ID, c.LeaseToken, store.BuildSucceeded, "", ""); err != nil {
		t.Fatal(err)
	}

	clock.Advance(time.Second)
	b2, _ := enqueue(t, s, r, commitID(2), commitID(1), 2)
	if b2.PreviousCommit != commitID(1) {
		t.Fatalf("b2.previous_commit = %q, want last built %s", b2.PreviousCommit, commitID(1))
	}
	clock.Advance(time.Second)
	var prev string
	b3, created, err := enqueueCounted(ctx, s, countedBuild{
		RepoID: r.ID, Branch: "master", Commit: commitID(3), OldHead: commitID(2), Count: countFrom(5, &prev),
	})
	if err != nil || !created {
		t.Fatalf("enqueue b3: %v %v", created, err)
	}
	// b3 takes over b2's previous commit, so its count covers b2's commits too.
	if prev != commitID(1) || b3.PreviousCommit != commitID(1) || b3.CommitCount != 5 {
		t.Errorf("b3: counted from %q, previous %q, count %d; want %s and 5", prev, b3.PreviousCommit, b3.CommitCount, commitID(1))
	}
	old := mustBuild(t, s, b2.ID)
	if old.Status != store.BuildSuperseded || old.FinishedAt.IsZero() {
		t.Errorf("b2 after a newer push: %s finished_at=%v, want superseded with a finish time", old.Status, old.FinishedAt)
	}
	queued, err := s.Builds(ctx, r.ID, store.BuildQueued, 10)
	if err != nil || len(queued) != 1 || queued[0].ID != b3.ID {
		t.Errorf("queued builds = %+v, %v; want only b3", queued, err)
	}
	if got := mustBuild(t, s, first.ID); got.Status != store.BuildSucceeded {
		t.Errorf("finished build changed to %s", got.Status)
	}
	// Newest first.
	all, _ := s.Builds(ctx, r.ID, "", 10)
	if len(all) != 3 || all[0].ID != b3.ID || all[2].ID != first.ID {
		t.Errorf("builds not newest first: %v", ids(all))
	}
}

func ids(bs []store.Build) []int64 {
	var out []int64
	for _, b := range bs {
		out = append(out, b.ID)
	}
	return out
}

func testClaimedBuildNotSuperseded(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	r := testRepo(t, s, "alice", "app")
	ctx := context.Background()

	b1, _ := enqueue(t, s, r, commitID(1), "", 1)
	c := claim(t, s, "w1", time.Minute)
	if c.ID != b1.ID || c.Status != store.BuildRunning || c.LeaseToken == "" || c.Worker != "w1" {
		t.Fatalf("claimed %+v", c)
	}
	b2, created := enqueue(t, s, r, commitID(2), commitID(1), 1)
	if !created {
		t.Fatal("newer push while running queued nothing")
	}
	if b2.PreviousCommit != commitID(1) {
		t.Errorf("b2.previous_commit = %q, want the running build's commit", b2.PreviousCommit)
	}
	got := mustBuild(t, s, b1.ID)
	if got.Status != store.BuildRunning || got.LeaseToken != c.LeaseToken {
		t.Errorf("running build disturbed by a newer push: %s", got.Status)
	}
	if _, err := s.CompleteBuild(ctx, b1.ID, c.LeaseToken, store.BuildSucceeded, "ok", "http://logs/1"); err != nil {
		t.Errorf("completing the running build after a newer push: %v", err)
	}
}

func testClaimOrderAndEmpty(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	ctx := context.Background()
	if _, err := s.ClaimBuild(ctx, "w", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim on empty queue: %v, want ErrNotFound", err)
	}
	var want []int64
	for i := 0; i < 4; i++ {
		r := testRepo(t, s, "alice", fmt.Sprintf("r%d", i))
		b, _ := enqueue(t, s, r, commitID(i), "", 1)
		want = append(want, b.ID)
		clock.Advance(time.Second)
	}
	for i, id := range want {
		c := claim(t, s, "w", time.Minute)
		if c.ID != id {
			t.Errorf("claim %d got build %d, want oldest queued %d", i, c.ID, id)
		}
		if !c.StartedAt.Equal(clock.Now()) || !c.LeaseExpiresAt.Equal(clock.Now().Add(time.Minute)) {
			t.Errorf("claim %d: started %v expires %v, now %v", i, c.StartedAt, c.LeaseExpiresAt, clock.Now())
		}
	}
	if _, err := s.ClaimBuild(ctx, "w", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim after draining: %v, want ErrNotFound", err)
	}
}

func testLeaseExpiryRequeuesThenFails(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	r := testRepo(t, s, "alice", "app")
	ctx := context.Background()
	b, _ := enqueue(t, s, r, commitID(1), "", 1)

	var tokens []string
	for attempt := 1; attempt <= store.MaxAttempts; attempt++ {
		c := claim(t, s, fmt.Sprintf("w%d", attempt), 10*time.Second)
		if c.ID != b.ID || c.Attempt != attempt {
			t.Fatalf("claim %d: build %d attempt %d", attempt, c.ID, c.Attempt)
		}
		for _, old := range tokens {
			if old == c.LeaseToken {
				t.Fatalf("lease token reused across attempts")
			}
		}
		tokens = append(tokens, c.LeaseToken)
		// Not expired yet at exactly the deadline minus a bit.
		clock.Advance(9 * time.Second)
		if n, err := s.ExpireLeases(ctx); err != nil || n != 0 {
			t.Fatalf("expire before the deadline: %d, %v", n, err)
		}
		clock.Advance(2 * time.Second)
		n, err := s.ExpireLeases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		got := mustBuild(t, s, b.ID)
		if attempt < store.MaxAttempts {
			if n != 1 || got.Status != store.BuildQueued || got.Attempt != attempt+1 || got.LeaseToken != "" || got.Worker != "" {
				t.Fatalf("after expiry %d: n=%d %+v", attempt, n, got)
			}
		} else if got.Status != store.BuildFailed || got.FinishedAt.IsZero() || got.Message == "" {
			t.Fatalf("after %d expiries: %+v, want failed with a message", attempt, got)
		}
		// The expired lease's token is stale now.
		if _, err := s.Heartbeat(ctx, b.ID, c.LeaseToken); !errors.Is(err, store.ErrConflict) {
			t.Errorf("heartbeat with expired lease: %v, want ErrConflict", err)
		}
		if _, err := s.CompleteBuild(ctx, b.ID, c.LeaseToken, store.BuildSucceeded, "", ""); !errors.Is(err, store.ErrConflict) {
			t.Errorf("complete with expired lease: %v, want ErrConflict", err)
		}
	}
	if _, err := s.ClaimBuild(ctx, "w", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed build was claimable again: %v", err)
	}
}

func testLeaseExpiryDuringClaim(t *testing.T, f Factory) {
	// ClaimBuild expires leases itself: no ticker is needed.
	clock := newFakeClock()
	s := f.open(t, clock)
	r := testRepo(t, s, "alice", "app")
	b, _ := enqueue(t, s, r, commitID(1), "", 1)
	claim(t, s, "w1", time.Second)
	clock.Advance(2 * time.Second)
	c := claim(t, s, "w2", time.Second)
	if c.ID != b.ID || c.Attempt != 2 || c.Worker != "w2" {
		t.Fatalf("re-claim after expiry: %+v", c)
	}
}

func testLeaseExpiryFoldsIntoNewerQueuedBuild(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	r := testRepo(t, s, "alice", "app")
	ctx := context.Background()

	b1, _ := enqueue(t, s, r, commitID(1), "", 2) // root..c1: 2 commits
	claim(t, s, "w", 10*time.Second)
	var prev string
	b2, _, err := enqueueCounted(ctx, s, countedBuild{RepoID: r.ID, Branch: "master", Commit: commitID(2),
		OldHead: commitID(1), Count: countFrom(3, &prev)}) // c1..c2: 3 commits
	if err != nil {
		t.Fatal(err)
	}
	if prev != commitID(1) {
		t.Fatalf("b2 counted from %q, want the running build's commit", prev)
	}
	clock.Advance(11 * time.Second)
	if _, err := s.ExpireLeases(ctx); err != nil {
		t.Fatal(err)
	}
	old := mustBuild(t, s, b1.ID)
	if old.Status != store.BuildSuperseded {
		t.Errorf("expired build with a newer one queued: %s, want superseded", old.Status)
	}
	nb := mustBuild(t, s, b2.ID)
	if nb.Status != store.BuildQueued || nb.PreviousCommit != "" || nb.CommitCount != 5 {
		t.Errorf("newer build after the fold: status %s previous %q count %d; want queued, \"\", 5", nb.Status, nb.PreviousCommit, nb.CommitCount)
	}
	queued, _ := s.Builds(ctx, r.ID, store.BuildQueued, 10)
	if len(queued) != 1 {
		t.Errorf("%d queued builds, want 1", len(queued))
	}
}

func testHeartbeatExtendsLease(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	r := testRepo(t, s, "alice", "app")
	ctx := context.Background()
	b, _ := enqueue(t, s, r, commitID(1), "", 1)
	c := claim(t, s, "w", 10*time.Second)

	for i := 0; i < 5; i++ {
		clock.Advance(8 * time.Second) // 40s in all, four times the lease
		hb, err := s.Heartbeat(ctx, b.ID, c.LeaseToken)
		if err != nil {
			t.Fatalf("heartbeat %d: %v", i, err)
		}
		if want := clock.Now().Add(10 * time.Second); !hb.LeaseExpiresAt.Equal(want) {
			t.Fatalf("heartbeat %d: lease until %v, want %v", i, hb.LeaseExpiresAt, want)
		}
	}
	if n, err := s.ExpireLeases(ctx); err != nil || n != 0 {
		t.Fatalf("a heartbeating build expired: %d %v", n, err)
	}
	if _, err := s.Heartbeat(ctx, b.ID, "not-the-token"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("heartbeat with a wrong token: %v, want ErrConflict", err)
	}
	if _, err := s.Heartbeat(ctx, b.ID, ""); !errors.Is(err, store.ErrConflict) {
		t.Errorf("heartbeat with no token: %v, want ErrConflict", err)
	}
	if _, err := s.Heartbeat(ctx, 999999, c.LeaseToken); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("heartbeat of a missing build: %v, want ErrNotFound", err)
	}
	got := mustBuild(t, s, b.ID)
	if got.Status != store.BuildRunning || got.Attempt != 1 {
		t.Errorf("after heartbeats: %s attempt %d", got.Status, got.Attempt)
	}
}

func testCompleteBuild(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	ctx := context.Background()
	for _, status := range []store.BuildStatus{store.BuildSucceeded, store.BuildFailed} {
		t.Run(string(status), func(t *testing.T) {
			r := testRepo(t, s, "alice", "app-"+string(status))
			b, _ := enqueue(t, s, r, commitID(1), "", 1)
			c := claim(t, s, "w", time.Minute)
			if _, err := s.CompleteBuild(ctx, b.ID, c.LeaseToken, "running", "", ""); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("complete with status running: %v, want ErrInvalid", err)
			}
			if _, err := s.CompleteBuild(ctx, b.ID, "stale", status, "", ""); !errors.Is(err, store.ErrConflict) {
				t.Errorf("complete with a wrong token: %v, want ErrConflict", err)
			}
			clock.Advance(5 * time.Second)
			done, err := s.CompleteBuild(ctx, b.ID, c.LeaseToken, status, "msg "+string(status), "https://ci/logs/1")
			if err != nil {
				t.Fatal(err)
			}
			if done.Status != status || done.Message != "msg "+string(status) || done.LogURL != "https://ci/logs/1" ||
				!done.FinishedAt.Equal(clock.Now()) || done.LeaseToken != "" {
				t.Errorf("completed build %+v", done)
			}
			// Completing twice: the lease is gone.
			if _, err := s.CompleteBuild(ctx, b.ID, c.LeaseToken, status, "", ""); !errors.Is(err, store.ErrConflict) {
				t.Errorf("second complete: %v, want ErrConflict", err)
			}
			if _, err := s.Heartbeat(ctx, b.ID, c.LeaseToken); !errors.Is(err, store.ErrConflict) {
				t.Errorf("heartbeat after complete: %v, want ErrConflict", err)
			}
			// Expiry never touches a finished build.
			clock.Advance(time.Hour)
			s.ExpireLeases(ctx)
			if got := mustBuild(t, s, b.ID); got.Status != status {
				t.Errorf("finished build became %s", got.Status)
			}
		})
	}
	if _, err := s.CompleteBuild(ctx, 424242, "x", store.BuildSucceeded, "", ""); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("complete of a missing build: %v, want ErrNotFound", err)
	}
}

func testConcurrentClaimersNeverShareABuild(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	ctx := context.Background()
	const repos, pushes, workers = 6, 5, 8

	// Many builds: each repo gets a queue of pushes while workers claim.
	var rs []store.Repo
	for i := 0; i < repos; i++ {
		rs = append(rs, testRepo(t, s, "alice", fmt.Sprintf("c%d", i)))
	}
	var mu sync.Mutex
	claimed := map[int64]string{}
	var dup []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			name := fmt.Sprintf("w%d", w)
			for {
				b, err := s.ClaimBuild(ctx, name, time.Hour)
				if errors.Is(err, store.ErrNotFound) {
					select {
					case <-stop:
						return
					case <-s.Changed():
					case <-time.After(10 * time.Millisecond):
					}
					continue
				}
				if err != nil {
					t.Errorf("%s claim: %v", name, err)
					return
				}
				mu.Lock()
				if other, ok := claimed[b.ID]; ok {
					dup = append(dup, fmt.Sprintf("build %d claimed by %s and %s", b.ID, other, name))
				}
				claimed[b.ID] = name
				mu.Unlock()
				if _, err := s.CompleteBuild(ctx, b.ID, b.LeaseToken, store.BuildSucceeded, "", ""); err != nil {
					t.Errorf("%s complete %d: %v", name, b.ID, err)
				}
			}
		}(w)
	}
	for p := 0; p < pushes; p++ {
		for i, r := range rs {
			if _, _, err := enqueueCounted(ctx, s, countedBuild{RepoID: r.ID, Branch: "master",
				Commit: commitID(1000*i + p), Count: countFrom(1, nil)}); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Wait (bounded) until nothing is queued, then stop the workers.
	deadline := time.Now().Add(60 * time.Second)
	for {
		left := 0
		for _, r := range rs {
			q, _ := s.Builds(ctx, r.ID, store.BuildQueued, 10)
			left += len(q)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d builds still queued after 60s", left)
		}
		time.Sleep(10 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if len(dup) > 0 {
		t.Fatalf("builds claimed twice:\n%s", strings.Join(dup, "\n"))
	}
	// Every build is either claimed once (and succeeded) or superseded.
	total := 0
	for _, r := range rs {
		all, _ := s.Builds(ctx, r.ID, "", 100)
		total += len(all)
		for _, b := range all {
			_, wasClaimed := claimed[b.ID]
			switch {
			case b.Status == store.BuildSucceeded && wasClaimed:
			case b.Status == store.BuildSuperseded && !wasClaimed:
			default:
				t.Errorf("build %d: status %s claimed=%v", b.ID, b.Status, wasClaimed)
			}
		}
	}
	if total != repos*pushes {
		t.Errorf("%d builds, want %d", total, repos*pushes)
	}
	if len(claimed) == 0 {
		t.Errorf("no build was claimed")
	}
}

func testChangedClosesOnEnqueue(t *testing.T, f Factory) {
	s := f.open(t, newFakeClock())
	r := testRepo(t, s, "alice", "app")
	ch := s.Changed()
	select {
	case <-ch:
		t.Fatal("Changed closed before anything happened")
	default:
	}
	enqueue(t, s, r, commitID(1), "", 1)
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("Changed did not close on enqueue")
	}
	// A fresh channel after the wake-up; a dedupe enqueue does not close it.
	ch2 := s.Changed()
	if ch2 == ch {
		t.Fatal("Changed returned the already closed channel")
	}
	enqueue(t, s, r, commitID(1), "", 1)
	select {
	case <-ch2:
		t.Error("Changed closed on an enqueue that created nothing")
	default:
	}
}

func testChangedClosesOnRequeue(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	r := testRepo(t, s, "alice", "app")
	enqueue(t, s, r, commitID(1), "", 1)
	claim(t, s, "w", time.Second)
	ch := s.Changed()
	clock.Advance(2 * time.Second)
	if n, err := s.ExpireLeases(context.Background()); err != nil || n != 1 {
		t.Fatalf("expire: %d %v", n, err)
	}
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("Changed did not close when an expired build went back to the queue")
	}
}

func testBuildsStatusFilterAndNotFound(t *testing.T, f Factory) {
	s := f.open(t, newFakeClock())
	r := testRepo(t, s, "alice", "app")
	ctx := context.Background()
	enqueue(t, s, r, commitID(1), "", 1)
	c := claim(t, s, "w", time.Minute)
	s.CompleteBuild(ctx, c.ID, c.LeaseToken, store.BuildFailed, "", "")
	enqueue(t, s, r, commitID(2), "", 1)
	for st, want := range map[store.BuildStatus]int{store.BuildFailed: 1, store.BuildQueued: 1, store.BuildRunning: 0, "": 2} {
		got, err := s.Builds(ctx, r.ID, st, 10)
		if err != nil || len(got) != want {
			t.Errorf("Builds(status=%q) = %d, %v; want %d", st, len(got), err, want)
		}
		for _, b := range got {
			if st != "" && b.Status != st {
				t.Errorf("status filter %q returned a %s build", st, b.Status)
			}
		}
	}
	if _, err := s.BuildByID(ctx, 777); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("BuildByID(missing): %v", err)
	}
	if got, err := s.Builds(ctx, r.ID+1000, "", 10); err != nil || got == nil || len(got) != 0 {
		t.Errorf("Builds(no such repo) = %v, %v; want an empty list", got, err)
	}
	for _, st := range []store.BuildStatus{"queued", "running", "succeeded", "failed", "superseded"} {
		if !st.Valid() {
			t.Errorf("BuildStatus(%q).Valid() = false", st)
		}
	}
	for _, st := range []store.BuildStatus{"", "QUEUED", "done", "queued "} {
		if st.Valid() {
			t.Errorf("BuildStatus(%q).Valid() = true", st)
		}
	}
}

// testCloneToken: each claim hands out a clone token for its build's
// repository that lives exactly as long as the lease.
func testCloneToken(t *testing.T, f Factory) {
	clock := newFakeClock()
	s := f.open(t, clock)
	ctx := context.Background()
	r := testRepo(t, s, "alice", "app")
	other := testRepo(t, s, "alice", "other")
	bad := func(what, secret string) {
		t.Helper()
		if g, err := s.CheckCloneToken(ctx, secret); !errors.Is(err, store.ErrBadCredentials) {
			t.Errorf("%s: CheckCloneToken = %+v, %v; want ErrBadCredentials", what, g, err)
		}
	}
	good := func(what, secret string, b store.Build) {
		t.Helper()
		g, err := s.CheckCloneToken(ctx, secret)
		if err != nil || g.BuildID != b.ID || g.RepoID != b.RepoID {
			t.Errorf("%s: CheckCloneToken = %+v, %v; want build %d of repo %d", what, g, err, b.ID, b.RepoID)
		}
	}

	b, _ := enqueue(t, s, r, commitID(1), "", 1)
	enqueue(t, s, other, commitID(2), "", 1)
	c := claim(t, s, "w", 10*time.Second)
	if c.ID != b.ID || !strings.HasPrefix(c.CloneToken, store.CloneTokenPrefix) || len(c.CloneToken) < 40 {
		t.Fatalf("claimed %+v", c)
	}
	if mustBuild(t, s, b.ID).CloneToken != "" {
		t.Fatal("a stored build shows its clone token")
	}
	good("fresh", c.CloneToken, c)
	bad("wrong", c.CloneToken+"x")
	bad("account token prefix", store.TokenPrefix+strings.TrimPrefix(c.CloneToken, store.CloneTokenPrefix))
	bad("overlong", store.CloneTokenPrefix+strings.Repeat("a", 300))
	bad("empty", "")

	// Two claims never share a token.
	c2 := claim(t, s, "w2", time.Minute)
	if c2.CloneToken == c.CloneToken || c2.RepoID != other.ID {
		t.Fatalf("second claim %+v", c2)
	}
	good("second", c2.CloneToken, c2)

	// A heartbeat keeps it alive with the lease.
	for i := 0; i < 3; i++ {
		clock.Advance(8 * time.Second)
		if _, err := s.Heartbeat(ctx, c.ID, c.LeaseToken); err != nil {
			t.Fatal(err)
		}
	}
	good("heartbeaten past its first lease", c.CloneToken, c)

	// Lease runs out: dead at once, even before expiry re-queues the build.
	clock.Advance(11 * time.Second)
	bad("lease expired", c.CloneToken)
	// The re-claim (attempt 2) gets a new token; the old one stays dead.
	c3 := claim(t, s, "w3", 10*time.Second)
	if c3.ID != c.ID || c3.Attempt != 2 || c3.CloneToken == c.CloneToken {
		t.Fatalf("re-claim %+v", c3)
	}
	bad("previous attempt's", c.CloneToken)
	good("re-claimed", c3.CloneToken, c3)

	// Completion ends it.
	if _, err := s.CompleteBuild(ctx, c3.ID, c3.LeaseToken, store.BuildSucceeded, "", ""); err != nil {
		t.Fatal(err)
	}
	bad("completed", c3.CloneToken)
	good("other build unaffected", c2.CloneToken, c2)
	if _, err := s.CompleteBuild(ctx, c2.ID, c2.LeaseToken, store.BuildFailed, "", ""); err != nil {
		t.Fatal(err)
	}
	bad("failed", c2.CloneToken)
}
