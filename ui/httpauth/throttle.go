package httpauth

import (
	"sync"
	"time"
)

// Throttle counts failed sign-ins per client address in a sliding window.
// Once an address has Limit failures within Window it is refused until the
// oldest of them leaves the window. Other addresses are unaffected, so a
// throttled attacker cannot lock out a user elsewhere.
type Throttle struct {
	Limit  int
	Window time.Duration
	Now    func() time.Time

	mu   sync.Mutex
	fail map[string][]time.Time
}

// NewThrottle returns a throttle: limit failures per window.
func NewThrottle(limit int, window time.Duration) *Throttle {
	return &Throttle{Limit: limit, Window: window, Now: time.Now, fail: map[string][]time.Time{}}
}

// maxTracked bounds memory: beyond it, the oldest-looking entries are dropped.
const maxTracked = 100000

func (t *Throttle) prune(ip string, now time.Time) []time.Time {
	ts := t.fail[ip]
	i := 0
	for i < len(ts) && now.Sub(ts[i]) >= t.Window {
		i++
	}
	ts = ts[i:]
	if len(ts) == 0 {
		delete(t.fail, ip)
		return nil
	}
	t.fail[ip] = ts
	return ts
}

// Blocked returns how long ip must wait, or 0.
func (t *Throttle) Blocked(ip string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Now()
	ts := t.prune(ip, now)
	if len(ts) < t.Limit {
		return 0
	}
	wait := t.Window - now.Sub(ts[len(ts)-t.Limit])
	if wait < time.Second {
		wait = time.Second
	}
	return wait
}

// Fail records a failed sign-in from ip.
func (t *Throttle) Fail(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Now()
	if len(t.fail) >= maxTracked {
		for k := range t.fail {
			t.prune(k, now)
		}
		if len(t.fail) >= maxTracked {
			clear(t.fail)
		}
	}
	ts := append(t.prune(ip, now), now)
	if len(ts) > t.Limit {
		ts = ts[len(ts)-t.Limit:]
	}
	t.fail[ip] = ts
}
