package storetest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"gitserver/store"
)

// Factory opens the implementation under test.
type Factory struct {
	// Open opens a Store on a fresh, empty database, closed at t's
	// cleanup. now is its clock (time.Now when nil).
	Open func(t *testing.T, now func() time.Time) store.Store
	// Second opens another Store on the database of first, closed at t's
	// cleanup: another process or node sharing the database, with its own
	// connections (and its own Changed channel). now is its clock.
	Second func(t *testing.T, first store.Store, now func() time.Time) store.Store
}

func (f Factory) open(t *testing.T, clock *fakeClock) store.Store {
	t.Helper()
	if clock == nil {
		return f.Open(t, nil)
	}
	return f.Open(t, clock.Now)
}

func (f Factory) second(t *testing.T, first store.Store, clock *fakeClock) store.Store {
	t.Helper()
	if clock == nil {
		return f.Second(t, first, nil)
	}
	return f.Second(t, first, clock.Now)
}

// twoHandles opens a store and a second handle on its database, both on
// one fake clock.
func (f Factory) twoHandles(t *testing.T) (*fakeClock, store.Store, store.Store) {
	t.Helper()
	clock := newFakeClock()
	a := f.open(t, clock)
	return clock, a, f.second(t, a, clock)
}

// Run runs the contract suite against f.
func Run(t *testing.T, f Factory) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		// Accounts, credentials, organisations, repositories, audit.
		{"Users", testUsers},
		{"OrgsAndMemberships", testOrgsAndMemberships},
		{"Repos", testRepos},
		{"UpdateRepo", testUpdateRepo},
		{"UserOrgs", testUserOrgs},
		{"Tokens", testTokens},
		{"TokenScopesOnlyForAdmins", testTokenScopesOnlyForAdmins},
		{"Keys", testKeys},
		{"AddKeyIsUniqueEverywhere", testAddKeyIsUniqueEverywhere},
		{"AuditAndClock", testAuditAndClock},
		{"AuditCommitsWithTheChange", testAuditCommitsWithTheChange},
		{"ConcurrentWrites", testConcurrentWrites},
		{"TokenListAndRevoke", testTokenListAndRevoke},
		{"DisableAccount", testDisableAccount},
		{"OrgKeepsAnOwner", testOrgKeepsAnOwner},
		{"Sessions", testSessions},
		{"ListAccounts", testListAccounts},
		{"SetAdmin", testSetAdmin},
		{"SetAdminKeepsAnAdmin", testSetAdminKeepsAnAdmin},
		{"Members", testMembers},
		{"CountBuilds", testCountBuilds},
		{"OIDCLinks", testOIDCLinks},
		{"OIDCStates", testOIDCStates},
		{"OIDCRefreshClaimedOnce", testOIDCRefreshClaimedOnce},
		{"ReservedAccountNames", testReservedAccountNames},
		// The build queue.
		{"EnqueueFirstBuildAndDedupe", testEnqueueFirstBuildAndDedupe},
		{"EnqueueOldHeadIsPreviousWhenNothingBuilt", testEnqueueOldHeadIsPreviousWhenNothingBuilt},
		{"EnqueueCountError", testEnqueueCountError},
		{"EnqueueStaleBaseIsConflict", testEnqueueStaleBaseIsConflict},
		{"SupersedeQueuedBuild", testSupersedeQueuedBuild},
		{"ClaimedBuildNotSuperseded", testClaimedBuildNotSuperseded},
		{"ClaimOrderAndEmpty", testClaimOrderAndEmpty},
		{"LeaseExpiryRequeuesThenFails", testLeaseExpiryRequeuesThenFails},
		{"LeaseExpiryDuringClaim", testLeaseExpiryDuringClaim},
		{"LeaseExpiryFoldsIntoNewerQueuedBuild", testLeaseExpiryFoldsIntoNewerQueuedBuild},
		{"HeartbeatExtendsLease", testHeartbeatExtendsLease},
		{"CompleteBuild", testCompleteBuild},
		{"ConcurrentClaimersNeverShareABuild", testConcurrentClaimersNeverShareABuild},
		{"ChangedClosesOnEnqueue", testChangedClosesOnEnqueue},
		{"ChangedClosesOnRequeue", testChangedClosesOnRequeue},
		{"BuildsStatusFilterAndNotFound", testBuildsStatusFilterAndNotFound},
		{"CloneToken", testCloneToken},
		// Versions.
		{"PublishNumbering", testPublishNumbering},
		{"PublishOnlySucceededBuilds", testPublishOnlySucceededBuilds},
		{"PublishSameBuildTwice", testPublishSameBuildTwice},
		// Mirrors.
		{"Mirrors", testMirrors},
		// SCM configurations, connections, OAuth states.
		{"SCMConfigs", testSCMConfigs},
		{"SCMConnections", testSCMConnections},
		{"OAuthStates", testOAuthStates},
		// Two Store values on one database (two processes or nodes).
		{"TwoHandlesShareTheDatabase", testTwoHandlesShareTheDatabase},
		{"TwoHandlesKeepAnOwnerAndAnAdmin", testTwoHandlesKeepAnOwner},
		{"TwoHandlesEnqueueOneBuildPerCommit", testTwoHandlesEnqueueOneBuildPerCommit},
		{"TwoHandlesEnqueueDistinctCommits", testTwoHandlesEnqueueDistinctCommits},
		{"TwoHandlesClaimEachBuildOnce", testTwoHandlesClaimEachBuildOnce},
		{"TwoHandlesLeaseExpiry", testTwoHandlesLeaseExpiry},
		{"TwoHandlesStaleLeaseTokens", testTwoHandlesStaleLeaseTokens},
		{"TwoHandlesPublish", testTwoHandlesPublish},
		{"TwoHandlesUniqueNames", testTwoHandlesUniqueNames},
		{"TwoHandlesRecordDeliveryOnce", testTwoHandlesRecordDeliveryOnce},
		{"TwoHandlesConsumeOAuthStateOnce", testTwoHandlesConsumeStateOnce},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, f) })
	}
}

// fakeClock is an injectable, manually advanced clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{t: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// mustUser creates a user.
func mustUser(tb testing.TB, s store.Store, name string, admin bool) store.Account {
	tb.Helper()
	a, err := s.CreateUser(context.Background(), name, "password-"+name, admin)
	if err != nil {
		tb.Fatalf("create user %s: %v", name, err)
	}
	return a
}

// testRepo creates a user (once per name) and a repository owned by it.
func testRepo(t testing.TB, s store.Store, owner, name string) store.Repo {
	t.Helper()
	ctx := context.Background()
	acct, err := s.AccountByName(ctx, owner)
	if err != nil {
		acct, err = s.CreateUser(ctx, owner, "password-"+owner, false)
		if err != nil {
			t.Fatalf("create user: %v", err)
		}
	}
	r, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: acct.ID, Name: name, Visibility: store.Restricted})
	if err != nil {
		t.Fatalf("create repo: %v", err)
	}
	return r
}

// commitID makes a distinct, valid-looking 40-hex commit id.
func commitID(n int) string { return fmt.Sprintf("%040x", n+0xc0ffee) }

// countFrom returns a Count func that records the prev it was asked about.
func countFrom(n int, gotPrev *string) func(string) (int, error) {
	return func(prev string) (int, error) {
		if gotPrev != nil {
			*gotPrev = prev
		}
		return n, nil
	}
}

// countedBuild is what a caller of the queue knows: the push, and how to
// count commits (git rev-list in the server).
type countedBuild struct {
	RepoID   int64
	Branch   string
	Commit   string
	PushedBy string
	OldHead  string
	Count    func(prev string) (int, error)
}

// enqueueCounted enqueues as the server's trigger does: read the base,
// count outside the store, enqueue guarded by the base, and count again
// once on ErrConflict.
func enqueueCounted(ctx context.Context, s store.Store, cb countedBuild) (store.Build, bool, error) {
	for attempt := 1; ; attempt++ {
		prev, err := s.BuildBase(ctx, cb.RepoID, cb.OldHead)
		if err != nil {
			return store.Build{}, false, err
		}
		count := 1
		if cb.Count != nil {
			if count, err = cb.Count(prev); err != nil {
				return store.Build{}, false, err
			}
		}
		b, created, err := s.EnqueueBuild(ctx, store.NewBuild{RepoID: cb.RepoID, Branch: cb.Branch, Commit: cb.Commit,
			PushedBy: cb.PushedBy, PreviousCommit: prev, CommitCount: count})
		if err != nil && attempt < 2 && isConflict(err) {
			continue
		}
		return b, created, err
	}
}

func enqueue(t testing.TB, s store.Store, r store.Repo, commit, oldHead string, count int) (store.Build, bool) {
	t.Helper()
	b, created, err := enqueueCounted(context.Background(), s, countedBuild{
		RepoID: r.ID, Branch: r.DefaultBranch, Commit: commit, PushedBy: "alice", OldHead: oldHead,
		Count: countFrom(count, nil),
	})
	if err != nil {
		t.Fatalf("enqueue %s: %v", commit, err)
	}
	return b, created
}

func claim(t testing.TB, s store.Store, worker string, lease time.Duration) store.Build {
	t.Helper()
	b, err := s.ClaimBuild(context.Background(), worker, lease)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return b
}

func mustBuild(t testing.TB, s store.Store, id int64) store.Build {
	t.Helper()
	b, err := s.BuildByID(context.Background(), id)
	if err != nil {
		t.Fatalf("build %d: %v", id, err)
	}
	return b
}
