package httpauth

import (
	"cmp"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Throttle counts failed sign-ins per client in a sliding window. A client
// is an IPv4 address, or the /64 of an IPv6 address (one host usually holds
// a whole /64; IPv4-mapped IPv6 addresses are IPv4): ClientKey.
//
// An attempt takes its slot before its credential is checked (Begin), so
// however many requests arrive at once, at most Limit credentials are
// checked per client within Window; a failed attempt keeps its slot for
// Window, a successful one gives it back. Once a client's slots are taken
// it is refused, even with a correct credential, until the oldest failure
// leaves the window. Other clients are unaffected, so a throttled attacker
// cannot lock out a user elsewhere.
//
// The table of clients is bounded (MaxTracked). When it is full, expired
// entries go first, then the entries with the fewest failures (the oldest
// last failure first); a blocked client is evicted only when every entry is
// blocked, so failing from many addresses cannot unblock an offender.
type Throttle struct {
	Limit  int
	Window time.Duration
	Now    func() time.Time
	// MaxTracked bounds the clients tracked (DefaultMaxTracked when 0).
	MaxTracked int

	mu      sync.Mutex
	clients map[string]*client
}

// client is one key's state: failures within the window, oldest first (at
// most Limit), and attempts whose credential is being checked.
type client struct {
	fails   []time.Time
	pending int
}

func (c *client) used() int { return len(c.fails) + c.pending }

// DefaultMaxTracked is the default bound of the throttle's table.
const DefaultMaxTracked = 100000

// NewThrottle returns a throttle: limit failures per window.
func NewThrottle(limit int, window time.Duration) *Throttle {
	return &Throttle{Limit: limit, Window: window, Now: time.Now, clients: map[string]*client{}}
}

// ClientKey is the throttle's key of a client address: the address itself
// for IPv4 (also when written IPv4-mapped, ::ffff:a.b.c.d), the /64 prefix
// for IPv6 (zone dropped), the text unchanged if it is no address.
func ClientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

func (t *Throttle) maxTracked() int {
	if t.MaxTracked > 0 {
		return t.MaxTracked
	}
	return DefaultMaxTracked
}

// prune drops key's failures that left the window and returns its entry,
// or nil (and no entry) when nothing is left.
func (t *Throttle) prune(key string, now time.Time) *client {
	c := t.clients[key]
	if c == nil {
		return nil
	}
	i := 0
	for i < len(c.fails) && now.Sub(c.fails[i]) >= t.Window {
		i++
	}
	c.fails = c.fails[i:]
	if c.used() == 0 {
		delete(t.clients, key)
		return nil
	}
	return c
}

// wait is how long c must wait before another attempt, or 0.
func (t *Throttle) wait(c *client, now time.Time) time.Duration {
	if c == nil || c.used() < t.Limit {
		return 0
	}
	wait := time.Second // only attempts in flight: they end soon
	if len(c.fails) >= t.Limit {
		wait = t.Window - now.Sub(c.fails[len(c.fails)-t.Limit])
	}
	return max(wait, time.Second)
}

// Blocked returns how long ip must wait, or 0.
func (t *Throttle) Blocked(ip string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Now()
	return t.wait(t.prune(ClientKey(ip), now), now)
}

// Begin reserves an attempt for ip before its credential is checked. If
// ip's client has no slot left it returns how long to wait and a nil done;
// otherwise done must be called once the check is over, with whether the
// credential was wrong (a failure keeps the slot for Window; anything else
// gives it back).
func (t *Throttle) Begin(ip string) (done func(failed bool), wait time.Duration) {
	key := ClientKey(ip)
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Now()
	c := t.prune(key, now)
	if w := t.wait(c, now); w > 0 {
		return nil, w
	}
	if c == nil {
		c = t.add(key, now)
	}
	c.pending++
	var once sync.Once
	return func(failed bool) { once.Do(func() { t.finish(key, c, failed) }) }, 0
}

func (t *Throttle) finish(key string, c *client, failed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.Now()
	if t.clients[key] != c {
		// Evicted while its check ran: record the failure afresh.
		if failed {
			t.record(key, now)
		}
		return
	}
	c.pending--
	if failed {
		t.record(key, now)
		return
	}
	t.prune(key, now)
}

// Fail records a failed sign-in from ip (one whose check took no slot).
func (t *Throttle) Fail(ip string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(ClientKey(ip), t.Now())
}

func (t *Throttle) record(key string, now time.Time) {
	c := t.prune(key, now)
	if c == nil {
		c = t.add(key, now)
	}
	c.fails = append(c.fails, now)
	if len(c.fails) > t.Limit {
		c.fails = c.fails[len(c.fails)-t.Limit:]
	}
}

// add creates key's entry, making room first if the table is full.
func (t *Throttle) add(key string, now time.Time) *client {
	if t.clients == nil {
		t.clients = map[string]*client{}
	}
	if len(t.clients) >= t.maxTracked() {
		t.evict(now)
	}
	c := &client{}
	t.clients[key] = c
	return c
}

// evict makes room for a tenth of the table (so that a full table costs
// one sort per many new clients): expired entries first, then the least
// offending, never a blocked client while any is not blocked (then the
// blocked ones whose last failure is oldest).
func (t *Throttle) evict(now time.Time) {
	for k := range t.clients {
		t.prune(k, now)
	}
	limit := t.maxTracked()
	target := limit - max(limit/10, 1)
	if len(t.clients) <= target {
		return
	}
	type cand struct {
		key     string
		blocked bool
		used    int
		last    time.Time
	}
	cands := make([]cand, 0, len(t.clients))
	for k, c := range t.clients {
		var last time.Time
		if len(c.fails) > 0 {
			last = c.fails[len(c.fails)-1]
		}
		cands = append(cands, cand{k, c.used() >= t.Limit, c.used(), last})
	}
	slices.SortFunc(cands, func(a, b cand) int {
		if a.blocked != b.blocked {
			if a.blocked {
				return 1
			}
			return -1
		}
		return cmp.Or(cmp.Compare(a.used, b.used), a.last.Compare(b.last))
	})
	n := len(t.clients) - target
	allBlocked := cands[0].blocked
	for i, c := range cands {
		if i >= n || (c.blocked && !allBlocked) {
			break
		}
		delete(t.clients, c.key)
	}
}
