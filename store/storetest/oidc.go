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

// Single sign-on (issue 16): accounts linked to a provider's identity,
// pending sign-ins, and the refresh claim.

func testOIDCLinks(t *testing.T, f Factory) {
	ctx := context.Background()
	clock := newFakeClock()
	s := f.open(t, clock)
	mustUser(t, s, "root", true)
	local := mustUser(t, s, "bob", false)
	const iss = "https://idp.example.test"
	audit := store.AuditEntry{Actor: "oidc", Action: "user.create", Target: "alice", Detail: "oidc"}

	alice, err := s.CreateOIDCUser(ctx, store.NewOIDCUser{Name: "alice", Issuer: iss, Subject: "sub-1", RefreshToken: "rt-1"}, audit)
	if err != nil || alice.Name != "alice" || alice.IsAdmin || alice.Kind != store.KindUser {
		t.Fatalf("CreateOIDCUser = %+v, %v", alice, err)
	}
	if ev, err := s.AuditEvents(ctx, 1); err != nil || len(ev) != 1 || ev[0].Action != "user.create" || ev[0].Target != "alice" {
		t.Fatalf("audit = %+v, %v", ev, err)
	}
	// No password until one is set.
	if _, err := s.CheckPassword(ctx, "alice", ""); !errors.Is(err, store.ErrBadCredentials) {
		t.Fatalf("empty password of an OIDC account: %v", err)
	}
	if _, h, err := s.UserWithPasswordHash(ctx, alice.ID); err != nil || h != "" {
		t.Fatalf("an OIDC account has a password hash %q (%v)", h, err)
	}
	if err := s.SetPassword(ctx, "alice", "a-regenerated-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CheckPassword(ctx, "alice", "a-regenerated-password"); err != nil {
		t.Fatalf("regenerated password: %v", err)
	}

	a, l, err := s.OIDCUser(ctx, iss, "sub-1")
	if err != nil || a.ID != alice.ID || l.UserID != alice.ID || l.Issuer != iss || l.Subject != "sub-1" || l.RefreshToken != "rt-1" {
		t.Fatalf("OIDCUser = %+v, %+v, %v", a, l, err)
	}
	if !l.RefreshedAt.Equal(clock.Now().Truncate(time.Microsecond)) && !l.RefreshedAt.Equal(clock.Now()) {
		t.Errorf("RefreshedAt = %v, want %v", l.RefreshedAt, clock.Now())
	}
	for _, k := range [][2]string{{iss, "sub-2"}, {iss + "/", "sub-1"}, {"https://other.example.test", "sub-1"}} {
		if _, _, err := s.OIDCUser(ctx, k[0], k[1]); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("OIDCUser(%q, %q) = %v, want ErrNotFound", k[0], k[1], err)
		}
	}
	if l2, err := s.OIDCLinkOf(ctx, alice.ID); err != nil || l2.Subject != "sub-1" {
		t.Fatalf("OIDCLinkOf = %+v, %v", l2, err)
	}
	if _, err := s.OIDCLinkOf(ctx, local.ID); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OIDCLinkOf(local) = %v, want ErrNotFound", err)
	}

	// Refusals, each leaving nothing behind.
	before, _ := s.CountUsers(ctx)
	for _, tc := range []struct {
		nu   store.NewOIDCUser
		want error
	}{
		{store.NewOIDCUser{Name: "bob", Issuer: iss, Subject: "sub-9"}, store.ErrExists},   // a local name
		{store.NewOIDCUser{Name: "BOB", Issuer: iss, Subject: "sub-9"}, store.ErrExists},   // case-insensitively
		{store.NewOIDCUser{Name: "carol", Issuer: iss, Subject: "sub-1"}, store.ErrExists}, // the identity is linked
		{store.NewOIDCUser{Name: "-bad", Issuer: iss, Subject: "sub-9"}, store.ErrInvalid}, // a bad name
		{store.NewOIDCUser{Name: "carol", Issuer: "", Subject: "sub-9"}, store.ErrInvalid}, // no issuer
		{store.NewOIDCUser{Name: "carol", Issuer: iss, Subject: ""}, store.ErrInvalid},     // no subject
		{store.NewOIDCUser{Name: "x.git", Issuer: iss, Subject: "sub-9"}, store.ErrInvalid},
		{store.NewOIDCUser{Name: "OIDC", Issuer: iss, Subject: "sub-9"}, store.ErrInvalid}, // reserved // a bad name
	} {
		if _, err := s.CreateOIDCUser(ctx, tc.nu, store.AuditEntry{Actor: "oidc", Action: "user.create", Target: tc.nu.Name}); !errors.Is(err, tc.want) {
			t.Errorf("CreateOIDCUser(%+v) = %v, want %v", tc.nu, err, tc.want)
		}
	}
	if after, _ := s.CountUsers(ctx); after != before {
		t.Fatalf("refused creations left %d users, want %d", after, before)
	}
	if _, err := s.UserByName(ctx, "carol"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("carol exists after a refused creation: %v", err)
	}
	if ev, _ := s.AuditEvents(ctx, 1); len(ev) != 1 || ev[0].Target != "alice" {
		t.Fatalf("a refused creation was audited: %+v", ev)
	}

	// Linking an existing local account (the admin allowed it).
	if _, err := s.LinkOIDCUser(ctx, store.NewOIDCUser{Name: "nobody", Issuer: iss, Subject: "sub-3"}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("link unknown user: %v", err)
	}
	if _, err := s.LinkOIDCUser(ctx, store.NewOIDCUser{Name: "alice", Issuer: iss, Subject: "sub-3"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("link a linked user: %v", err)
	}
	if _, err := s.LinkOIDCUser(ctx, store.NewOIDCUser{Name: "bob", Issuer: iss, Subject: "sub-1"}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("link a linked identity: %v", err)
	}
	b, err := s.LinkOIDCUser(ctx, store.NewOIDCUser{Name: "bob", Issuer: iss, Subject: "sub-2"},
		store.AuditEntry{Actor: "oidc", Action: "user.link", Target: "bob"})
	if err != nil || b.ID != local.ID {
		t.Fatalf("LinkOIDCUser = %+v, %v", b, err)
	}
	if a, _, err := s.OIDCUser(ctx, iss, "sub-2"); err != nil || a.ID != local.ID {
		t.Fatalf("linked bob: %+v, %v", a, err)
	}

	// Sign-ins: the refresh token is replaced (kept when none is given),
	// the admin flag follows the claim.
	yes, no := true, false
	clock.Advance(time.Minute)
	a, err = s.OIDCSignedIn(ctx, alice.ID, "rt-2", &yes, store.AuditEntry{Actor: "oidc", Action: "user.admin", Target: "alice", Detail: "admin=true"})
	if err != nil || !a.IsAdmin {
		t.Fatalf("OIDCSignedIn(admin) = %+v, %v", a, err)
	}
	if _, l, _ := s.OIDCUser(ctx, iss, "sub-1"); l.RefreshToken != "rt-2" || l.Generation != 1 {
		t.Fatalf("after sign-in: %+v", l)
	}
	if a, err = s.OIDCSignedIn(ctx, alice.ID, "", nil); err != nil || !a.IsAdmin {
		t.Fatalf("OIDCSignedIn(nil) = %+v, %v", a, err)
	}
	if _, l, _ := s.OIDCUser(ctx, iss, "sub-1"); l.RefreshToken != "rt-2" {
		t.Fatalf("an empty refresh token replaced the stored one: %+v", l)
	}
	if a, err = s.OIDCSignedIn(ctx, alice.ID, "", &no); err != nil || a.IsAdmin {
		t.Fatalf("OIDCSignedIn(demote) = %+v, %v", a, err)
	}
	if _, err := s.OIDCSignedIn(ctx, local.ID+1000, "", nil); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("OIDCSignedIn(unknown) = %v", err)
	}
	// The last enabled admin keeps the role.
	if _, err := s.OIDCSignedIn(ctx, alice.ID, "", &yes); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetDisabled(ctx, "root", true); err != nil {
		t.Fatal(err)
	}
	n, _ := s.AuditEvents(ctx, 1000)
	if _, err := s.OIDCSignedIn(ctx, alice.ID, "rt-3", &no, store.AuditEntry{Actor: "oidc", Action: "user.admin", Target: "alice"}); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("demoting the last admin: %v, want ErrConflict", err)
	}
	if a, _, _ := s.OIDCUser(ctx, iss, "sub-1"); !a.IsAdmin {
		t.Fatal("the last admin was demoted")
	}
	if _, l, _ := s.OIDCUser(ctx, iss, "sub-1"); l.RefreshToken != "rt-2" {
		t.Fatalf("a refused sign-in changed the refresh token: %+v", l)
	}
	if m, _ := s.AuditEvents(ctx, 1000); len(m) != len(n) {
		t.Fatal("a refused sign-in was audited")
	}
}

func testOIDCStates(t *testing.T, f Factory) {
	ctx := context.Background()
	clock := newFakeClock()
	s := f.open(t, clock)
	st := store.OIDCState{State: "s1", Nonce: "n1", Verifier: "v1", ReturnTo: "/back", ExpiresAt: clock.Now().Add(10 * time.Minute)}
	if err := s.CreateOIDCState(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateOIDCState(ctx, st); !errors.Is(err, store.ErrExists) {
		t.Fatalf("same state twice: %v", err)
	}
	for _, bad := range []store.OIDCState{{Nonce: "n", Verifier: "v"}, {State: "x", Verifier: "v"}, {State: "x", Nonce: "n"}} {
		if err := s.CreateOIDCState(ctx, bad); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateOIDCState(%+v) = %v, want ErrInvalid", bad, err)
		}
	}
	if _, err := s.ConsumeOIDCState(ctx, "forged"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("forged: %v", err)
	}
	got, err := s.ConsumeOIDCState(ctx, "s1")
	if err != nil || got.State != "s1" || got.Nonce != "n1" || got.Verifier != "v1" || got.ReturnTo != "/back" {
		t.Fatalf("consume: %+v %v", got, err)
	}
	if _, err := s.ConsumeOIDCState(ctx, "s1"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("replayed: %v", err)
	}
	// Expired: refused, and gone.
	st.State, st.ExpiresAt = "s2", clock.Now().Add(time.Minute)
	if err := s.CreateOIDCState(ctx, st); err != nil {
		t.Fatal(err)
	}
	clock.Advance(2 * time.Minute)
	if _, err := s.ConsumeOIDCState(ctx, "s2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("expired: %v", err)
	}
	clock.Advance(-2 * time.Minute)
	if _, err := s.ConsumeOIDCState(ctx, "s2"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("an expired state was kept: %v", err)
	}

	// Of 16 consumers on two Store values, one gets the state.
	s2 := f.second(t, s, clock)
	for round := 0; round < 3; round++ {
		state := store.RandomHex(16)
		if err := s.CreateOIDCState(ctx, store.OIDCState{State: state, Nonce: "n", Verifier: "v", ExpiresAt: clock.Now().Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 16; i++ {
			h := s
			if i%2 == 1 {
				h = s2
			}
			wg.Go(func() {
				if _, err := h.ConsumeOIDCState(ctx, state); err == nil {
					wins.Add(1)
				} else if !errors.Is(err, store.ErrNotFound) {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("round %d: %d consumers got the state, want 1", round, wins.Load())
		}
	}
}

// testOIDCRefreshClaimedOnce: a refresh is due after the interval, claimed
// by one of many concurrent callers on two Store values, and its token
// replaced only over the claimed generation.
func testOIDCRefreshClaimedOnce(t *testing.T, f Factory) {
	ctx := context.Background()
	clock, s1, s2 := f.twoHandles(t)
	a, err := s1.CreateOIDCUser(ctx, store.NewOIDCUser{Name: "alice", Issuer: "https://idp.example.test", Subject: "s", RefreshToken: "rt-1"})
	if err != nil {
		t.Fatal(err)
	}
	local := mustUser(t, s1, "bob", false)
	if _, _, err := s1.ClaimOIDCRefresh(ctx, local.ID, time.Minute); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("claim of a local account: %v", err)
	}
	if _, ok, err := s1.ClaimOIDCRefresh(ctx, a.ID, 10*time.Minute); err != nil || ok {
		t.Fatalf("claim before the interval: %v, %v", ok, err)
	}
	clock.Advance(10 * time.Minute)
	var wins atomic.Int32
	var won store.OIDCLink
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		h := s1
		if i%2 == 1 {
			h = s2
		}
		wg.Go(func() {
			l, ok, err := h.ClaimOIDCRefresh(ctx, a.ID, 10*time.Minute)
			if err != nil {
				t.Error(err)
			}
			if ok {
				wins.Add(1)
				mu.Lock()
				won = l
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 || won.RefreshToken != "rt-1" {
		t.Fatalf("%d claims won (%+v), want 1 with rt-1", wins.Load(), won)
	}
	// A sign-in in between wins over the refresh's write.
	if _, err := s2.OIDCSignedIn(ctx, a.ID, "rt-signin", nil); err != nil {
		t.Fatal(err)
	}
	if ok, err := s1.SetOIDCRefreshToken(ctx, a.ID, won.Generation, "rt-2"); err != nil || ok {
		t.Fatalf("stale refresh write: %v, %v", ok, err)
	}
	l, err := s1.OIDCLinkOf(ctx, a.ID)
	if err != nil || l.RefreshToken != "rt-signin" {
		t.Fatalf("after a stale write: %+v, %v", l, err)
	}
	if ok, err := s1.SetOIDCRefreshToken(ctx, a.ID, l.Generation, "rt-3"); err != nil || !ok {
		t.Fatalf("refresh write: %v, %v", ok, err)
	}
	if l, _ := s2.OIDCLinkOf(ctx, a.ID); l.RefreshToken != "rt-3" {
		t.Fatalf("refresh token = %q, want rt-3", l.RefreshToken)
	}
	// The sign-in moved RefreshedAt: no claim until the interval passes again.
	if _, ok, _ := s1.ClaimOIDCRefresh(ctx, a.ID, 10*time.Minute); ok {
		t.Fatal("claimed right after a sign-in")
	}

	// What a sweep claims: linked, enabled, due; oldest first.
	due := func() []int64 {
		t.Helper()
		ids, err := s2.OIDCRefreshesDue(ctx, 10*time.Minute, 10)
		if err != nil || ids == nil {
			t.Fatalf("OIDCRefreshesDue = %v, %v", ids, err)
		}
		return ids
	}
	if ids := due(); len(ids) != 0 {
		t.Fatalf("due right after a sign-in: %v", ids)
	}
	clock.Advance(time.Minute)
	b, err := s1.CreateOIDCUser(ctx, store.NewOIDCUser{Name: "carol", Issuer: "https://idp.example.test", Subject: "c"})
	if err != nil {
		t.Fatal(err)
	}
	mustUser(t, s1, "root", true)
	clock.Advance(10 * time.Minute)
	if ids := due(); len(ids) != 2 || ids[0] != a.ID || ids[1] != b.ID {
		t.Fatalf("due = %v, want [%d %d] (local accounts never)", ids, a.ID, b.ID)
	}
	if ids, _ := s1.OIDCRefreshesDue(ctx, 10*time.Minute, 1); len(ids) != 1 || ids[0] != a.ID {
		t.Fatalf("limit 1: %v", ids)
	}
	if _, err := s1.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s1.ClaimOIDCRefresh(ctx, b.ID, 10*time.Minute); err != nil || !ok {
		t.Fatalf("claim carol: %v, %v", ok, err)
	}
	if ids := due(); len(ids) != 0 {
		t.Fatalf("due after a disable and a claim: %v", ids)
	}
}

// testReservedAccountNames: no new user or organisation takes a name that
// is a route's first path segment.
func testReservedAccountNames(t *testing.T, f Factory) {
	ctx := context.Background()
	s := f.open(t, nil)
	alice := mustUser(t, s, "alice", false)
	for _, name := range []string{"oidc", "OIDC", "login", "api", "git", "hooks", "metrics"} {
		if _, err := s.CreateUser(ctx, name, "a-long-password", false); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateUser(%q) = %v, want ErrInvalid", name, err)
		}
		if _, err := s.CreateOrg(ctx, name, alice.ID); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("CreateOrg(%q) = %v, want ErrInvalid", name, err)
		}
	}
	for _, name := range []string{"admin", "user", "oidc-team", "apis"} {
		if _, err := s.CreateUser(ctx, name, "a-long-password", false); err != nil {
			t.Errorf("CreateUser(%q) = %v", name, err)
		}
	}
}
