package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"gitserver/store"
)

func isConflict(err error) bool { return errors.Is(err, store.ErrConflict) }

// testEnqueueStaleBaseIsConflict: EnqueueBuild refuses a count made against
// a base that is no longer the repository's (another build was queued while
// the caller counted), and queues nothing.
func testEnqueueStaleBaseIsConflict(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, newFakeClock())
	r := testRepo(t, s, "alice", "app")
	b1, _ := enqueue(t, s, r, commitID(1), "", 1)
	claim(t, s, "w", time.Hour)
	base, err := s.BuildBase(ctx, r.ID, "")
	if err != nil || base != commitID(1) {
		t.Fatalf("BuildBase after build 1 = %q, %v; want %s", base, err, commitID(1))
	}
	// Meanwhile another push queues commit 2 (its base is commit 1 too).
	enqueue(t, s, r, commitID(2), "", 1)
	if got, _ := s.BuildBase(ctx, r.ID, ""); got != commitID(1) {
		t.Fatalf("BuildBase with build 2 queued = %q; want the queued build's base %s", got, commitID(1))
	}
	// Build 2 is claimed: the base is now commit 2.
	claim(t, s, "w", time.Hour)
	_, created, err := s.EnqueueBuild(ctx, store.NewBuild{RepoID: r.ID, Branch: "master", Commit: commitID(3),
		PreviousCommit: base, CommitCount: 5})
	if !errors.Is(err, store.ErrConflict) || created {
		t.Fatalf("enqueue with a stale base: created=%v err=%v; want ErrConflict", created, err)
	}
	if ok, _ := s.HasBuildFor(ctx, r.ID, commitID(3)); ok {
		t.Fatal("a refused enqueue queued a build")
	}
	b3, created, err := s.EnqueueBuild(ctx, store.NewBuild{RepoID: r.ID, Branch: "master", Commit: commitID(3),
		PreviousCommit: commitID(2), CommitCount: 1})
	if err != nil || !created || b3.PreviousCommit != commitID(2) || b3.CommitCount != 1 {
		t.Fatalf("enqueue with the fresh base: %+v created=%v err=%v", b3, created, err)
	}
	// An existing commit is returned whatever the base.
	again, created, err := s.EnqueueBuild(ctx, store.NewBuild{RepoID: r.ID, Branch: "master", Commit: commitID(1),
		PreviousCommit: "stale", CommitCount: 1})
	if err != nil || created || again.ID != b1.ID {
		t.Fatalf("enqueue of an already built commit: id %d created=%v err=%v; want build %d", again.ID, created, err, b1.ID)
	}
}

// testTwoHandlesShareTheDatabase: what one handle writes the other reads, so
// the suite's two-handle tests do exercise one shared database.
func testTwoHandlesShareTheDatabase(t *testing.T, f Factory) {
	ctx := context.Background()
	a := f.open(t, nil)
	b := f.second(t, a, nil)
	u := mustUser(t, a, "alice", false)
	if got, err := b.AccountByName(ctx, "alice"); err != nil || got.ID != u.ID {
		t.Fatalf("second handle reads %+v, %v; want the first handle's user %d", got, err, u.ID)
	}
	r := testRepo(t, b, "alice", "app")
	if got, err := a.RepoByID(ctx, r.ID); err != nil || got.FullName() != "alice/app" {
		t.Fatalf("first handle reads %+v, %v", got, err)
	}
	if err := a.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.Ping(ctx); err != nil {
		t.Fatal(err)
	}
}

// testTwoHandlesEnqueueOneBuildPerCommit: the same commit enqueued at once
// by many goroutines through two handles gives exactly one build.
func testTwoHandlesEnqueueOneBuildPerCommit(t *testing.T, f Factory) {
	ctx := context.Background()
	_, a, b := f.twoHandles(t)
	r := testRepo(t, a, "alice", "app")
	handles := []store.Store{a, b}
	for round := 0; round < 5; round++ {
		commit := commitID(100 + round)
		const n = 16
		var wg sync.WaitGroup
		ids := make([]int64, n)
		createdBy := make([]bool, n)
		errs := make([]error, n)
		start := make(chan struct{})
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				<-start
				bd, created, err := enqueueCounted(ctx, handles[i%2], countedBuild{RepoID: r.ID, Branch: "master", Commit: commit,
					PushedBy: fmt.Sprint("pusher", i), Count: countFrom(1, nil)})
				ids[i], createdBy[i], errs[i] = bd.ID, created, err
			}(i)
		}
		close(start)
		wg.Wait()
		created := 0
		for i := 0; i < n; i++ {
			if errs[i] != nil {
				t.Fatalf("round %d: enqueue %d (handle %d): %v", round, i, i%2, errs[i])
			}
			if createdBy[i] {
				created++
			}
			if ids[i] != ids[0] {
				t.Errorf("round %d: enqueue %d returned build %d, enqueue 0 build %d", round, i, ids[i], ids[0])
			}
		}
		if created != 1 {
			t.Errorf("round %d: %d enqueues report a new build; want exactly 1", round, created)
		}
		all, err := b.Builds(ctx, r.ID, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		per := 0
		for _, bd := range all {
			if bd.Commit == commit {
				per++
			}
		}
		if per != 1 {
			t.Errorf("round %d: %d builds of one commit; want 1", round, per)
		}
	}
}

// testTwoHandlesEnqueueDistinctCommits: concurrent pushes of different heads
// of one repository through two handles leave at most one queued build,
// never two builds of one commit, and count the commits of every build
// that was not superseded against the build before it.
func testTwoHandlesEnqueueDistinctCommits(t *testing.T, f Factory) {
	ctx := context.Background()
	_, a, b := f.twoHandles(t)
	r := testRepo(t, a, "alice", "app")
	handles := []store.Store{a, b}
	const n = 12
	var wg sync.WaitGroup
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			_, _, err := enqueueCounted(ctx, handles[i%2], countedBuild{RepoID: r.ID, Branch: "master", Commit: commitID(i),
				Count: countFrom(1, nil)})
			if err != nil && !isConflict(err) {
				errs <- fmt.Errorf("enqueue %d: %w", i, err)
			}
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	all, err := a.Builds(ctx, r.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	queued := 0
	seen := map[string]bool{}
	for _, bd := range all {
		if seen[bd.Commit] {
			t.Errorf("two builds of %s", bd.Commit)
		}
		seen[bd.Commit] = true
		switch bd.Status {
		case store.BuildQueued:
			queued++
		case store.BuildSuperseded:
		default:
			t.Errorf("build %d is %s", bd.ID, bd.Status)
		}
	}
	if queued != 1 {
		t.Errorf("%d queued builds; want 1 (of %d builds)", queued, len(all))
	}
}

// testTwoHandlesClaimEachBuildOnce: 8 claimers split across two handles
// never share a build and claim every queued build exactly once.
func testTwoHandlesClaimEachBuildOnce(t *testing.T, f Factory) {
	ctx := context.Background()
	clock, a, b := f.twoHandles(t)
	const repos = 40
	want := map[int64]bool{}
	for i := 0; i < repos; i++ {
		s := []store.Store{a, b}[i%2]
		r := testRepo(t, s, "alice", fmt.Sprint("r", i))
		bd, _ := enqueue(t, s, r, commitID(i), "", 1)
		want[bd.ID] = true
		clock.Advance(time.Millisecond)
	}
	// Each handle claims once on its own first, so both surely claim.
	first := []store.Build{claim(t, b, "b0", time.Hour), claim(t, a, "a0", time.Hour)}
	var mu sync.Mutex
	claimed := map[int64]string{}
	tokens := map[string]bool{}
	perHandle := [2]int{1, 1}
	for i, bd := range first {
		claimed[bd.ID] = fmt.Sprint("first", i)
		tokens[bd.CloneToken] = true
	}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			s := []store.Store{a, b}[w%2]
			name := fmt.Sprint("worker", w)
			<-start
			for {
				bd, err := s.ClaimBuild(ctx, name, time.Hour)
				if errors.Is(err, store.ErrNotFound) {
					return
				}
				if err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
				mu.Lock()
				if prev, dup := claimed[bd.ID]; dup {
					t.Errorf("build %d claimed by %s and %s", bd.ID, prev, name)
				}
				claimed[bd.ID] = name
				if tokens[bd.CloneToken] {
					t.Errorf("clone token of build %d handed out twice", bd.ID)
				}
				tokens[bd.CloneToken] = true
				perHandle[w%2]++
				mu.Unlock()
				if bd.Status != store.BuildRunning || bd.Worker != name || bd.LeaseToken == "" {
					t.Errorf("claimed build %+v", bd)
				}
			}
		}(w)
	}
	close(start)
	wg.Wait()
	if len(claimed) != repos {
		t.Errorf("claimed %d builds; want all %d", len(claimed), repos)
	}
	for id := range want {
		if _, ok := claimed[id]; !ok {
			t.Errorf("build %d never claimed", id)
		}
	}
	t.Logf("claims per handle: %v", perHandle)
	for _, s := range []store.Store{a, b} {
		if _, err := s.ClaimBuild(ctx, "late", time.Hour); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("claim with nothing queued: %v", err)
		}
	}
}

// testTwoHandlesLeaseExpiry: a lease taken through one handle expires (fake
// clock) and the build is claimed again through the other; the first
// worker's token is then stale on both handles.
func testTwoHandlesLeaseExpiry(t *testing.T, f Factory) {
	ctx := context.Background()
	clock, a, b := f.twoHandles(t)
	r := testRepo(t, a, "alice", "app")
	bd, _ := enqueue(t, a, r, commitID(1), "", 1)
	c1 := claim(t, a, "w1", time.Minute)
	if _, err := b.ClaimBuild(ctx, "w2", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim of a leased build through the other handle: %v", err)
	}
	if _, err := b.Heartbeat(ctx, bd.ID, c1.LeaseToken); err != nil {
		t.Fatalf("heartbeat through the other handle: %v", err)
	}
	clock.Advance(59 * time.Second)
	if _, err := b.ClaimBuild(ctx, "w2", time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim before the heartbeat-extended lease ran out: %v", err)
	}
	clock.Advance(2 * time.Minute)
	if g, err := a.CheckCloneToken(ctx, c1.CloneToken); !errors.Is(err, store.ErrBadCredentials) {
		t.Errorf("expired clone token: %+v, %v", g, err)
	}
	c2 := claim(t, b, "w2", time.Minute)
	if c2.ID != bd.ID || c2.Attempt != 2 || c2.LeaseToken == c1.LeaseToken {
		t.Fatalf("re-claim after expiry: %+v", c2)
	}
	for _, s := range []store.Store{a, b} {
		if _, err := s.Heartbeat(ctx, bd.ID, c1.LeaseToken); !errors.Is(err, store.ErrConflict) {
			t.Errorf("heartbeat with the expired token: %v, want ErrConflict", err)
		}
		if _, err := s.CompleteBuild(ctx, bd.ID, c1.LeaseToken, store.BuildSucceeded, "", ""); !errors.Is(err, store.ErrConflict) {
			t.Errorf("complete with the expired token: %v, want ErrConflict", err)
		}
	}
	if g, err := a.CheckCloneToken(ctx, c2.CloneToken); err != nil || g.BuildID != bd.ID {
		t.Errorf("second claim's clone token through the first handle: %+v, %v", g, err)
	}
	done, err := a.CompleteBuild(ctx, bd.ID, c2.LeaseToken, store.BuildSucceeded, "ok", "")
	if err != nil || done.Status != store.BuildSucceeded || done.Worker != "w2" {
		t.Fatalf("complete with the live token through the first handle: %+v, %v", done, err)
	}
	if _, err := b.Heartbeat(ctx, bd.ID, c2.LeaseToken); !errors.Is(err, store.ErrConflict) {
		t.Errorf("heartbeat of a finished build: %v, want ErrConflict", err)
	}
	if _, err := b.Heartbeat(ctx, bd.ID+100, c2.LeaseToken); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("heartbeat of an unknown build: %v, want ErrNotFound", err)
	}
}

// testTwoHandlesStaleLeaseTokens: many concurrent completions of one build
// through two handles: exactly one wins, the others get ErrConflict.
func testTwoHandlesStaleLeaseTokens(t *testing.T, f Factory) {
	ctx := context.Background()
	_, a, b := f.twoHandles(t)
	r := testRepo(t, a, "alice", "app")
	bd, _ := enqueue(t, a, r, commitID(1), "", 1)
	c := claim(t, b, "w", time.Hour)
	const n = 10
	var wg sync.WaitGroup
	results := make([]error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			s := []store.Store{a, b}[i%2]
			if i%3 == 2 {
				_, results[i] = s.Heartbeat(ctx, bd.ID, c.LeaseToken)
				return
			}
			_, results[i] = s.CompleteBuild(ctx, bd.ID, c.LeaseToken, store.BuildFailed, fmt.Sprint("by ", i), "")
		}(i)
	}
	close(start)
	wg.Wait()
	completed := 0
	for i, err := range results {
		switch {
		case err == nil && i%3 != 2:
			completed++
		case err == nil, errors.Is(err, store.ErrConflict):
		default:
			t.Errorf("call %d: %v", i, err)
		}
	}
	if completed != 1 {
		t.Errorf("%d completions succeeded; want exactly 1", completed)
	}
	if got := mustBuild(t, a, bd.ID); got.Status != store.BuildFailed || got.LeaseToken != "" {
		t.Errorf("after the race: %+v", got)
	}
}

// testTwoHandlesPublish: concurrent publishes through two handles give
// distinct version numbers, and one build is published once.
func testTwoHandlesPublish(t *testing.T, f Factory) {
	ctx := context.Background()
	_, a, b := f.twoHandles(t)
	r := testRepo(t, a, "alice", "app")
	var builds []store.Build
	for i := 0; i < 6; i++ {
		builds = append(builds, finishedBuild(t, a, r, commitID(i), store.BuildSucceeded))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	versions := map[string]int64{}
	start := make(chan struct{})
	for i, bd := range builds {
		wg.Add(1)
		go func(i int, bd store.Build) {
			defer wg.Done()
			<-start
			s := []store.Store{a, b}[i%2]
			for {
				v, err := s.Publish(ctx, r.ID, bd.ID, store.BumpPatch, "", "alice")
				if isConflict(err) {
					continue // a concurrent publish took the number: ask again
				}
				if err != nil {
					t.Errorf("publish build %d: %v", bd.ID, err)
					return
				}
				mu.Lock()
				if other, dup := versions[v.String()]; dup {
					t.Errorf("version %s for builds %d and %d", v, other, bd.ID)
				}
				versions[v.String()] = bd.ID
				mu.Unlock()
				return
			}
		}(i, bd)
	}
	close(start)
	wg.Wait()
	if len(versions) != len(builds) {
		t.Errorf("%d versions for %d builds", len(versions), len(builds))
	}

	// One more build, published by both handles at once: once.
	last := finishedBuild(t, a, r, commitID(100), store.BuildSucceeded)
	errs := make([]error, 8)
	start = make(chan struct{})
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			_, errs[i] = []store.Store{a, b}[i%2].Publish(ctx, r.ID, last.ID, store.BumpMinor, "", "alice")
		}(i)
	}
	close(start)
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case !isConflict(err):
			t.Errorf("publish %d: %v", i, err)
		}
	}
	if ok != 1 {
		t.Errorf("one build published %d times; want 1", ok)
	}
}

// testTwoHandlesUniqueNames: one name, created at once through two handles,
// exists once; the others get ErrExists.
func testTwoHandlesUniqueNames(t *testing.T, f Factory) {
	ctx := context.Background()
	a := f.open(t, nil)
	b := f.second(t, a, nil)
	owner := mustUser(t, a, "owner", false)
	const n = 6
	var wg sync.WaitGroup
	userErrs := make([]error, n)
	repoErrs := make([]error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			s := []store.Store{a, b}[i%2]
			if i%2 == 0 {
				_, userErrs[i] = s.CreateOrg(ctx, "Shared", owner.ID)
			} else {
				_, userErrs[i] = s.CreateUser(ctx, "shared", "password-shared", false)
			}
			_, repoErrs[i] = s.CreateRepo(ctx, store.NewRepo{OwnerID: owner.ID, Name: "App", Visibility: store.Public})
		}(i)
	}
	close(start)
	wg.Wait()
	for what, errs := range map[string][]error{"account": userErrs, "repository": repoErrs} {
		ok := 0
		for i, err := range errs {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, store.ErrExists):
				t.Errorf("%s %d: %v, want ErrExists", what, i, err)
			}
		}
		if ok != 1 {
			t.Errorf("%d %ss created under one name; want 1", ok, what)
		}
	}
}
