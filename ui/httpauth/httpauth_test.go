package httpauth

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/sqlite"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
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

func newThrottle(limit int, window time.Duration) (*Throttle, *fakeClock) {
	clk := &fakeClock{t: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
	th := NewThrottle(limit, window)
	th.Now = clk.Now
	return th, clk
}

func TestThrottleSlidingWindow(t *testing.T) {
	th, clk := newThrottle(3, time.Minute)
	const ip = "192.0.2.1"
	for i := 0; i < 3; i++ {
		if w := th.Blocked(ip); w != 0 {
			t.Fatalf("blocked after %d failures (%v)", i, w)
		}
		th.Fail(ip)
		clk.Advance(10 * time.Second)
	}
	// Failures at 0s, 10s, 20s; now 30s: blocked until the first leaves
	// the window at 60s.
	if w := th.Blocked(ip); w != 30*time.Second {
		t.Fatalf("Blocked = %v, want 30s", w)
	}
	if w := th.Blocked("192.0.2.2"); w != 0 {
		t.Fatalf("another address is blocked: %v", w)
	}
	clk.Advance(29 * time.Second)
	if w := th.Blocked(ip); w != time.Second {
		t.Fatalf("Blocked just before expiry = %v, want the 1s floor", w)
	}
	clk.Advance(time.Second)
	if w := th.Blocked(ip); w != 0 {
		t.Fatalf("still blocked once the oldest failure left the window: %v", w)
	}
	// One more failure blocks again (two are still in the window).
	th.Fail(ip)
	if w := th.Blocked(ip); w == 0 {
		t.Fatal("not blocked with 3 failures in the window")
	}
	clk.Advance(2 * time.Minute)
	if w := th.Blocked(ip); w != 0 {
		t.Fatalf("blocked after the window passed: %v", w)
	}
	th.mu.Lock()
	n := len(th.clients)
	th.mu.Unlock()
	if n != 0 {
		t.Fatalf("%d addresses still tracked after their failures expired", n)
	}
}

func TestThrottleKeepsOnlyLimitEntries(t *testing.T) {
	th, _ := newThrottle(5, time.Minute)
	for i := 0; i < 1000; i++ {
		th.Fail("x")
	}
	if n := failures(th, "x"); n != 5 {
		t.Fatalf("tracked %d failures, want at most the limit 5", n)
	}
}

// failures is the number of failures the throttle holds for ip's client.
func failures(th *Throttle, ip string) int {
	th.mu.Lock()
	defer th.mu.Unlock()
	if c := th.clients[ClientKey(ip)]; c != nil {
		return len(c.fails)
	}
	return 0
}

func openStore(t *testing.T) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func basic(user, pass string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
}

func req(auth, remote string) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	r.RemoteAddr = remote
	return r
}

func TestAuthenticate(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	alice, err := s.CreateUser(ctx, "alice", "alice-password", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "bob", "bob-password", false); err != nil {
		t.Fatal(err)
	}
	secret, tok, err := s.CreateToken(ctx, alice.ID, "t", []store.Scope{store.ScopeRepoRead})
	if err != nil {
		t.Fatal(err)
	}
	th, _ := newThrottle(1000, time.Minute)
	a := New(s, th)

	for _, tc := range []struct {
		name      string
		auth      string
		wantErr   error
		wantUser  string
		wantToken bool
	}{
		{"no header", "", store.ErrNoCredentials, "", false},
		{"password", basic("alice", "alice-password"), nil, "alice", false},
		{"password, name in other case", basic("ALICE", "alice-password"), nil, "alice", false},
		{"lower-case scheme", "basic " + base64.StdEncoding.EncodeToString([]byte("alice:alice-password")), nil, "alice", false},
		{"wrong password", basic("alice", "bob-password"), store.ErrBadCredentials, "", false},
		{"unknown user", basic("carol", "alice-password"), store.ErrBadCredentials, "", false},
		{"empty password", basic("alice", ""), store.ErrBadCredentials, "", false},
		{"empty user", basic("", "alice-password"), store.ErrBadCredentials, "", false},
		{"no colon", "Basic " + base64.StdEncoding.EncodeToString([]byte("alice")), store.ErrBadCredentials, "", false},
		{"bad base64", "Basic !!!", store.ErrBadCredentials, "", false},
		{"token as password", basic("alice", secret), nil, "alice", true},
		{"token with placeholder user", basic("x-access-token", secret), nil, "alice", true},
		{"token with oauth2 user", basic("oauth2", secret), nil, "alice", true},
		{"token of another user", basic("bob", secret), store.ErrBadCredentials, "", false},
		{"bearer", "Bearer " + secret, nil, "alice", true},
		{"bearer lower-case", "bearer " + secret, nil, "alice", true},
		{"bearer wrong", "Bearer " + secret + "x", store.ErrBadCredentials, "", false},
		{"bearer password", "Bearer alice-password", store.ErrBadCredentials, "", false},
		{"bearer empty", "Bearer ", store.ErrBadCredentials, "", false},
		{"unknown scheme", "Digest foo", store.ErrBadCredentials, "", false},
		{"garbage", "garbage", store.ErrBadCredentials, "", false},
	} {
		p, err := a.Authenticate(req(tc.auth, "192.0.2.1:1234"))
		if !errors.Is(err, tc.wantErr) {
			t.Errorf("%s: err = %v, want %v", tc.name, err, tc.wantErr)
			continue
		}
		if tc.wantErr != nil {
			if p.User != nil {
				t.Errorf("%s: failed authentication returned a user", tc.name)
			}
			continue
		}
		if p.User == nil || p.User.Name != tc.wantUser {
			t.Errorf("%s: user = %+v, want %s", tc.name, p.User, tc.wantUser)
		}
		if (p.Token != nil) != tc.wantToken {
			t.Errorf("%s: token = %+v, want token %v", tc.name, p.Token, tc.wantToken)
		}
		if p.Token != nil && (p.Token.ID != tok.ID || !p.Token.HasScope(store.ScopeRepoRead) || p.Token.HasScope(store.ScopeRepoWrite)) {
			t.Errorf("%s: token %+v", tc.name, p.Token)
		}
	}
}

// TestPasswordChangeTakesEffectAtOnce: the verified-password cache must not
// let an old password in after a change, nor keep a new one out.
func TestPasswordChangeTakesEffectAtOnce(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.CreateUser(ctx, "alice", "old-password", false); err != nil {
		t.Fatal(err)
	}
	th, _ := newThrottle(1000, time.Minute)
	a := New(s, th)
	for i := 0; i < 2; i++ { // second round is served from the cache
		if _, err := a.Authenticate(req(basic("alice", "old-password"), "192.0.2.1:1")); err != nil {
			t.Fatalf("round %d: %v", i, err)
		}
	}
	if err := s.SetPassword(ctx, "alice", "new-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(req(basic("alice", "old-password"), "192.0.2.1:1")); !errors.Is(err, store.ErrBadCredentials) {
		t.Fatalf("old password after change: %v", err)
	}
	if _, err := a.Authenticate(req(basic("alice", "new-password"), "192.0.2.1:1")); err != nil {
		t.Fatalf("new password after change: %v", err)
	}
	// Changing back to the old password makes it valid again, and the new
	// one invalid, even though both were cached.
	if err := s.SetPassword(ctx, "alice", "old-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(req(basic("alice", "new-password"), "192.0.2.1:1")); !errors.Is(err, store.ErrBadCredentials) {
		t.Fatalf("replaced password still accepted: %v", err)
	}
	if _, err := a.Authenticate(req(basic("alice", "old-password"), "192.0.2.1:1")); err != nil {
		t.Fatalf("restored password refused: %v", err)
	}
}

// TestDisableTakesEffectAtOnce: a cached password, and a token, of an account
// an admin disables are refused on the next request; re-enabled, they work.
func TestDisableTakesEffectAtOnce(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	u, err := s.CreateUser(ctx, "alice", "the-password", false)
	if err != nil {
		t.Fatal(err)
	}
	secret, _, err := s.CreateToken(ctx, u.ID, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	th, _ := newThrottle(1000, time.Minute)
	a := New(s, th)
	creds := map[string]string{"password": basic("alice", "the-password"), "token": "Bearer " + secret}
	check := func(when string, want error) {
		t.Helper()
		for what, h := range creds {
			for i := 0; i < 2; i++ { // the second round may be served from the cache
				if _, err := a.Authenticate(req(h, "192.0.2.1:1")); !errors.Is(err, want) && (want != nil || err != nil) {
					t.Fatalf("%s, %s, round %d: %v, want %v", when, what, i, err, want)
				}
			}
		}
	}
	check("enabled", nil)
	if _, err := s.SetDisabled(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	check("disabled", store.ErrBadCredentials)
	if _, err := s.SetDisabled(ctx, "alice", false); err != nil {
		t.Fatal(err)
	}
	check("re-enabled", nil)
}

func TestAuthenticateThrottles(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.CreateUser(ctx, "alice", "alice-password", false); err != nil {
		t.Fatal(err)
	}
	th, clk := newThrottle(3, time.Minute)
	a := New(s, th)
	bad := basic("alice", "wrong-password")
	for i := 0; i < 3; i++ {
		if _, err := a.Authenticate(req(bad, "192.0.2.1:5000")); !errors.Is(err, store.ErrBadCredentials) {
			t.Fatalf("attempt %d: %v", i, err)
		}
	}
	// Throttled, even with the right password, from that address.
	_, err := a.Authenticate(req(basic("alice", "alice-password"), "192.0.2.1:5001"))
	var te *store.ThrottledError
	if !errors.As(err, &te) || te.RetryAfter <= 0 || te.RetryAfter > time.Minute {
		t.Fatalf("throttled address: err = %v", err)
	}
	// Another address is not locked out.
	if _, err := a.Authenticate(req(basic("alice", "alice-password"), "192.0.2.2:5000")); err != nil {
		t.Fatalf("other address: %v", err)
	}
	// IPv6 addresses are keyed without the port too.
	for i := 0; i < 3; i++ {
		a.Authenticate(req(bad, "[2001:db8::1]:"+strconv.Itoa(1000+i)))
	}
	if _, err := a.Authenticate(req(basic("alice", "alice-password"), "[2001:db8::1]:9")); !errors.As(err, &te) {
		t.Fatalf("ipv6 address not throttled across ports: %v", err)
	}
	// Requests without credentials neither count nor are throttled.
	if _, err := a.Authenticate(req("", "192.0.2.1:5002")); !errors.Is(err, store.ErrNoCredentials) {
		t.Fatalf("no credentials while throttled: %v", err)
	}
	clk.Advance(time.Minute)
	if _, err := a.Authenticate(req(basic("alice", "alice-password"), "192.0.2.1:5003")); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestClientIP(t *testing.T) {
	for remote, want := range map[string]string{
		"127.0.0.1:80":   "127.0.0.1",
		"[::1]:443":      "::1",
		"not-an-address": "not-an-address",
	} {
		r := req("", remote)
		if got := ClientIP(r); got != want {
			t.Errorf("ClientIP(%q) = %q, want %q", remote, got, want)
		}
	}
}

// TestAuthenticateCloneToken: a build's clone token authenticates as a
// Bearer token or as the Basic password with any user name, as that build;
// a wrong or dead one is a bad credential that counts towards the throttle.
func TestAuthenticateCloneToken(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	alice, err := s.CreateUser(ctx, "alice", "alice-password", false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: alice.ID, Name: "app", Visibility: store.Restricted})
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := s.EnqueueBuild(ctx, store.NewBuild{RepoID: r.ID, Branch: "master", Commit: strings.Repeat("a", 40)})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.ClaimBuild(ctx, "w", time.Minute)
	if err != nil || c.ID != b.ID {
		t.Fatalf("claim: %+v %v", c, err)
	}
	th, _ := newThrottle(1000, time.Minute)
	a := New(s, th)
	for _, auth := range []string{
		"Bearer " + c.CloneToken,
		"bearer " + c.CloneToken,
		basic("x-access-token", c.CloneToken),
		basic("anything-at-all", c.CloneToken),
		basic("alice", c.CloneToken),
		basic("", c.CloneToken),
	} {
		p, err := a.Authenticate(req(auth, "192.0.2.1:1"))
		if err != nil || p.Build == nil || p.Build.BuildID != b.ID || p.Build.RepoID != r.ID || p.User != nil || p.Token != nil {
			t.Errorf("%q: principal %+v, %v; want build %d", auth, p, err, b.ID)
		}
	}
	if _, err := s.CompleteBuild(ctx, c.ID, c.LeaseToken, store.BuildSucceeded, "", ""); err != nil {
		t.Fatal(err)
	}
	for i, auth := range []string{
		"Bearer " + c.CloneToken, // build completed
		basic("x", c.CloneToken),
		"Bearer " + c.CloneToken + "x",
		"Bearer " + store.CloneTokenPrefix,
	} {
		if _, err := a.Authenticate(req(auth, "192.0.2.2:1")); !errors.Is(err, store.ErrBadCredentials) {
			t.Errorf("%q: %v, want store.ErrBadCredentials", auth, err)
		}
		if got := failures(th, "192.0.2.2"); got != i+1 {
			t.Errorf("%q: %d recorded failures, want %d", auth, got, i+1)
		}
	}
}

// TestSignIn: the web sign-in checks a password under the same throttle as
// Authenticate (failures of either count for both), refuses tokens and
// disabled accounts with the one credential error.
func TestSignIn(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	alice, err := s.CreateUser(ctx, "alice", "alice-password", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, "bob", "bob-password", false); err != nil {
		t.Fatal(err)
	}
	tokSecret, _, err := s.CreateToken(ctx, alice.ID, "t", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetDisabled(ctx, "bob", true); err != nil {
		t.Fatal(err)
	}
	th, _ := newThrottle(4, time.Minute)
	a := New(s, th)
	if acct, err := a.SignIn(ctx, "192.0.2.1", "alice", "alice-password"); err != nil || acct.Name != "alice" {
		t.Fatalf("SignIn = %+v, %v", acct, err)
	}
	for _, c := range [][2]string{{"alice", "wrong-password"}, {"alice", tokSecret}, {"bob", "bob-password"}, {"", ""}} {
		if _, err := a.SignIn(ctx, "192.0.2.9", c[0], c[1]); !errors.Is(err, store.ErrBadCredentials) {
			t.Errorf("SignIn(%q) = %v, want ErrBadCredentials", c[0], err)
		}
	}
	var te *store.ThrottledError
	if _, err := a.SignIn(ctx, "192.0.2.9", "alice", "alice-password"); !errors.As(err, &te) {
		t.Fatalf("throttled SignIn = %v", err)
	}
	if _, err := a.Authenticate(req(basic("alice", "alice-password"), "192.0.2.9:1")); !errors.As(err, &te) {
		t.Fatalf("the sign-in failures did not throttle Basic: %v", err)
	}
}
