package httpauth

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gitserver/store"
)

// gatedStore is the real store whose password checks (bcrypt) are counted
// and held at a gate until the test opens it.
type gatedStore struct {
	store.Store
	checks atomic.Int32
	gate   chan struct{}
}

func (g *gatedStore) CheckPassword(ctx context.Context, name, password string) (store.Account, error) {
	g.checks.Add(1)
	<-g.gate
	return g.Store.CheckPassword(ctx, name, password)
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestAuthenticateConcurrentGuesses: 100 concurrent wrong passwords and
// then the right one, all from one address, against the real store and
// bcrypt. Every check is held at a gate until all requests have arrived,
// so no failure is recorded before the last request is decided: at most
// the limit may reach bcrypt, the rest (the right password included) get
// 429, and the address stays throttled.
func TestAuthenticateConcurrentGuesses(t *testing.T) {
	ctx := context.Background()
	real := openStore(t)
	if _, err := real.CreateUser(ctx, "alice", "alice-password", false); err != nil {
		t.Fatal(err)
	}
	const limit, guesses = 20, 100
	gs := &gatedStore{Store: real, gate: make(chan struct{})}
	var openGate sync.Once
	open := func() { openGate.Do(func() { close(gs.gate) }) }
	t.Cleanup(open)
	a := New(gs, NewThrottle(limit, time.Minute))

	errs := make(chan error, guesses+1)
	var returned atomic.Int32
	var wg sync.WaitGroup
	for i := 0; i < guesses; i++ {
		wg.Go(func() {
			_, err := a.Authenticate(req(basic("alice", fmt.Sprintf("guess-%d", i)), fmt.Sprintf("198.51.100.7:%d", 10000+i)))
			returned.Add(1)
			errs <- err
		})
	}
	// Every guess is either refused or waiting in bcrypt.
	waitFor(t, "the guesses to be decided", func() bool { return int(returned.Load()+gs.checks.Load()) == guesses })
	before := gs.checks.Load()
	var right error
	rightDone := make(chan struct{})
	go func() {
		_, right = a.Authenticate(req(basic("alice", "alice-password"), "198.51.100.7:20000"))
		close(rightDone)
	}()
	waitFor(t, "the right password to be decided", func() bool {
		select {
		case <-rightDone:
			return true
		default:
			return gs.checks.Load() > before
		}
	})
	open()
	wg.Wait()
	<-rightDone
	close(errs)

	if n := gs.checks.Load(); n > limit {
		t.Errorf("%d passwords checked with bcrypt from one address, want at most the limit %d", n, limit)
	}
	var te *store.ThrottledError
	if !errors.As(right, &te) {
		t.Errorf("right password while the window is full: %v, want 429", right)
	}
	bad, throttled := 0, 0
	for err := range errs {
		switch {
		case errors.Is(err, store.ErrBadCredentials):
			bad++
		case errors.As(err, &te):
			throttled++
		default:
			t.Errorf("guess: %v", err)
		}
	}
	if bad > limit || bad+throttled != guesses {
		t.Errorf("%d guesses answered 401 and %d 429, want at most %d 401", bad, throttled, limit)
	}
	if _, err := a.Authenticate(req(basic("alice", "alice-password"), "198.51.100.7:20001")); !errors.As(err, &te) {
		t.Errorf("right password after %d failures: %v, want 429", bad, err)
	}
}

// TestAuthenticateSuccessKeepsNoSlot: correct sign-ins, however many, use
// up no failure budget, and one in flight does not block others for long.
func TestAuthenticateSuccessKeepsNoSlot(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	if _, err := s.CreateUser(ctx, "alice", "alice-password", false); err != nil {
		t.Fatal(err)
	}
	th, _ := newThrottle(3, time.Minute)
	a := New(s, th)
	for i := 0; i < 10; i++ {
		if _, err := a.Authenticate(req(basic("alice", "alice-password"), "192.0.2.1:1")); err != nil {
			t.Fatalf("sign-in %d: %v", i, err)
		}
	}
	if _, err := a.Authenticate(req(basic("alice", "wrong"), "192.0.2.1:1")); !errors.Is(err, store.ErrBadCredentials) {
		t.Fatalf("wrong password: %v", err)
	}
	if n := failures(th, "192.0.2.1"); n != 1 {
		t.Fatalf("%d failures recorded, want 1", n)
	}
	th.mu.Lock()
	pending := th.clients[ClientKey("192.0.2.1")].pending
	th.mu.Unlock()
	if pending != 0 {
		t.Fatalf("%d attempts still pending after all returned", pending)
	}
}

// TestThrottleIPv6Prefix: IPv6 clients are throttled per /64 (one host
// usually holds a whole /64), IPv4 per address; an IPv4-mapped address is
// its IPv4 address.
func TestThrottleIPv6Prefix(t *testing.T) {
	th, _ := newThrottle(4, time.Minute)
	th.Fail("2001:db8:1:2::1")
	th.Fail("2001:db8:1:2:ffff:ffff:ffff:fffe")
	th.Fail("2001:db8:1:2:1234::9")
	th.Fail("fe80::1%eth0") // another /64, zone dropped
	if w := th.Blocked("2001:db8:1:2::77"); w != 0 {
		t.Fatalf("blocked after 3 failures in the /64: %v", w)
	}
	th.Fail("2001:db8:1:2:abcd::1")
	for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::77", "2001:DB8:1:2:ffff::"} {
		if w := th.Blocked(ip); w == 0 {
			t.Errorf("%s not blocked after 4 failures from its /64", ip)
		}
	}
	for _, ip := range []string{"2001:db8:1:3::1", "2001:db8:1::1", "fe80::1"} {
		if w := th.Blocked(ip); w != 0 {
			t.Errorf("%s blocked by another /64's failures: %v", ip, w)
		}
	}
	// IPv4: per address; mapped or not, the same client.
	for i := 0; i < 2; i++ {
		th.Fail("192.0.2.1")
		th.Fail("::ffff:192.0.2.1")
	}
	if w := th.Blocked("192.0.2.1"); w == 0 {
		t.Error("192.0.2.1 not blocked after 4 failures, 2 of them IPv4-mapped")
	}
	if w := th.Blocked("::ffff:192.0.2.1"); w == 0 {
		t.Error("::ffff:192.0.2.1 not blocked")
	}
	if w := th.Blocked("192.0.2.2"); w != 0 {
		t.Errorf("neighbouring IPv4 address blocked: %v", w)
	}
	for ip, want := range map[string]string{
		"192.0.2.1":                "192.0.2.1",
		"::ffff:192.0.2.1":         "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":     "2001:db8:1:2::/64",
		"fe80::1%eth0":             "fe80::/64",
		"not-an-address":           "not-an-address",
		"2001:db8:1:2::1:2:3:4:56": "2001:db8:1:2::1:2:3:4:56", // invalid: kept as is
	} {
		if got := ClientKey(ip); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", ip, got, want)
		}
	}
}

// TestThrottleFullTableKeepsOffenders: failing once from more addresses
// than the table holds must not unblock a blocked client, nor forget one
// that is close to the limit.
func TestThrottleFullTableKeepsOffenders(t *testing.T) {
	th, _ := newThrottle(20, time.Hour)
	for i := 0; i < 20; i++ {
		th.Fail("203.0.113.5")
		if i < 19 {
			th.Fail("198.51.100.9")
		}
	}
	if th.Blocked("203.0.113.5") == 0 {
		t.Fatal("offender not blocked")
	}
	const flood = 100000 + 10000 // more than the table's default bound
	for i := 0; i < flood; i++ {
		th.Fail(fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
	}
	if th.Blocked("203.0.113.5") == 0 {
		t.Error("failing once from many addresses unblocked the offender")
	}
	if n := failures(th, "198.51.100.9"); n != 19 {
		t.Errorf("the client one failure short of the limit holds %d failures after the flood, want 19", n)
	}
	th.mu.Lock()
	n := len(th.clients)
	th.mu.Unlock()
	if n > 100000 {
		t.Errorf("%d clients tracked, want at most 100000", n)
	}
}

// TestThrottleEvictionOrder: with a small table, the least offending go
// first (fewest failures, then the oldest last failure); blocked clients
// go only once every client is blocked, the oldest first.
func TestThrottleEvictionOrder(t *testing.T) {
	th, clk := newThrottle(3, time.Hour)
	th.MaxTracked = 10
	ip := func(i int) string { return fmt.Sprintf("192.0.2.%d", i) }
	for i := 0; i < 3; i++ {
		th.Fail(ip(1)) // blocked
	}
	clk.Advance(time.Second)
	th.Fail(ip(2))
	th.Fail(ip(2)) // two failures
	for i := 3; i <= 10; i++ {
		clk.Advance(time.Second)
		th.Fail(ip(i)) // one failure each, 3 the oldest
	}
	clk.Advance(time.Second)
	th.Fail(ip(11)) // full: evicts one, the oldest single failure
	if failures(th, ip(3)) != 0 || failures(th, ip(4)) != 1 || failures(th, ip(2)) != 2 || th.Blocked(ip(1)) == 0 {
		t.Fatalf("after one eviction: 3:%d 4:%d 2:%d 1 blocked %v", failures(th, ip(3)), failures(th, ip(4)), failures(th, ip(2)), th.Blocked(ip(1)))
	}
	// A table of blocked clients only: the oldest blocked one goes.
	th2, clk2 := newThrottle(1, time.Hour)
	th2.MaxTracked = 4
	for i := 1; i <= 5; i++ {
		clk2.Advance(time.Second)
		th2.Fail(ip(i))
	}
	if th2.Blocked(ip(1)) != 0 || th2.Blocked(ip(2)) == 0 || th2.Blocked(ip(5)) == 0 {
		t.Fatalf("all blocked: 1 %v, 2 %v, 5 %v", th2.Blocked(ip(1)), th2.Blocked(ip(2)), th2.Blocked(ip(5)))
	}
	// Expired clients go before anyone is evicted.
	clk2.Advance(2 * time.Hour)
	th2.Fail(ip(6))
	th2.mu.Lock()
	n := len(th2.clients)
	th2.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d clients tracked after the others expired, want 1", n)
	}
}
