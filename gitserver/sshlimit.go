package gitserver

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"
)

// Defaults of the SSH connection limits (SSHServer's fields).
const (
	// DefaultSSHMaxConns bounds authenticated connections.
	DefaultSSHMaxConns = 512
	// DefaultSSHMaxUnauthenticated bounds connections still in their
	// handshake or authentication, from all clients together.
	DefaultSSHMaxUnauthenticated = 128
	// DefaultSSHMaxStartupsPerIP bounds one client's unauthenticated
	// connections (OpenSSH's PerSourceMaxStartups).
	DefaultSSHMaxStartupsPerIP = 10
	// DefaultSSHLoginGrace is how long a connection may take to
	// authenticate (OpenSSH's LoginGraceTime, 120 s there).
	DefaultSSHLoginGrace = 20 * time.Second
)

// sourceKey is the client a connection counts against: its IPv4 address,
// or the /64 of its IPv6 address (as httpauth.ClientKey).
func sourceKey(addr net.Addr) string {
	s := addr.String()
	if host, _, err := net.SplitHostPort(s); err == nil {
		s = host
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	p, _ := a.Prefix(64)
	return p.String()
}

// connLimiter admits SSH connections into two pools. Unauthenticated
// connections (from accept until authentication succeeds) are at most
// maxPre, at most perSource of them from one client, and each is closed
// when grace runs out. Authenticated connections are at most maxAuth; a
// flood of connections that never authenticate cannot take their places.
//
// A client over its perSource bound is refused. When the unauthenticated
// pool is full, a new connection takes the place of the oldest
// unauthenticated connection of the client holding the most: an idle
// flood is pushed out by new clients, and a real handshake (tens of
// milliseconds) is done long before the pool turns over.
type connLimiter struct {
	maxAuth, maxPre, perSource int
	grace                      time.Duration
	log                        *slog.Logger

	mu      sync.Mutex
	authed  int
	pre     map[string][]*trackedConn // by sourceKey, oldest first
	npre    int
	refused int       // refusals not yet logged
	logged  time.Time // last refusal warning
}

// trackedConn is a connection the limiter admitted.
type trackedConn struct {
	net.Conn
	l        *connLimiter
	key      string
	accepted time.Time
	timer    *time.Timer
	// Guarded by l.mu.
	authed, released bool
}

func newConnLimiter(maxAuth, maxPre, perSource int, grace time.Duration, log *slog.Logger) *connLimiter {
	return &connLimiter{maxAuth: maxAuth, maxPre: maxPre, perSource: perSource, grace: grace, log: log,
		pre: map[string][]*trackedConn{}}
}

// admit returns c tracked, or nil after closing it.
func (l *connLimiter) admit(c net.Conn) *trackedConn {
	key := sourceKey(c.RemoteAddr())
	l.mu.Lock()
	var reason string
	switch {
	case l.authed >= l.maxAuth:
		reason = "ssh connection limit reached; closing new connections"
	case len(l.pre[key]) >= l.perSource:
		reason = "too many unauthenticated ssh connections from one client; closing new ones"
	}
	if reason != "" {
		l.refusedLocked(reason, key)
		l.mu.Unlock()
		c.Close()
		return nil
	}
	var victim *trackedConn
	if l.npre >= l.maxPre {
		victim = l.victimLocked()
		l.removePreLocked(victim)
		victim.released = true
		victim.timer.Stop()
		l.refusedLocked("unauthenticated ssh connection limit reached; closing the oldest of the busiest client", victim.key)
	}
	tc := &trackedConn{Conn: c, l: l, key: key, accepted: time.Now()}
	l.pre[key] = append(l.pre[key], tc)
	l.npre++
	tc.timer = time.AfterFunc(l.grace, tc.expire)
	l.mu.Unlock()
	if victim != nil {
		victim.Conn.Close()
	}
	return tc
}

// refusedLocked logs a refusal, at most one warning per 10 s with the count
// of those not logged, so that a flood does not flood the log.
func (l *connLimiter) refusedLocked(msg, key string) {
	l.refused++
	if now := time.Now(); now.Sub(l.logged) >= 10*time.Second {
		l.log.Warn(msg, "client", key, "refused", l.refused, "unauthenticated", l.npre, "authenticated", l.authed,
			"max_unauthenticated", l.maxPre, "max_per_client", l.perSource, "max_authenticated", l.maxAuth)
		l.refused, l.logged = 0, now
	}
}

// victimLocked is the oldest connection of the client with the most
// unauthenticated connections (of equals, the one with the oldest).
func (l *connLimiter) victimLocked() *trackedConn {
	var v []*trackedConn
	for _, cs := range l.pre {
		if v == nil || len(cs) > len(v) || (len(cs) == len(v) && cs[0].accepted.Before(v[0].accepted)) {
			v = cs
		}
	}
	return v[0]
}

func (l *connLimiter) removePreLocked(tc *trackedConn) {
	cs := l.pre[tc.key]
	for i, c := range cs {
		if c == tc {
			cs = append(cs[:i:i], cs[i+1:]...)
			l.npre--
			break
		}
	}
	if len(cs) == 0 {
		delete(l.pre, tc.key)
	} else {
		l.pre[tc.key] = cs
	}
}

// authenticated moves tc to the authenticated pool; if that is full, or tc
// was closed meanwhile, it closes tc.
func (tc *trackedConn) authenticated() {
	l := tc.l
	l.mu.Lock()
	if tc.released || tc.authed {
		l.mu.Unlock()
		return
	}
	l.removePreLocked(tc)
	tc.timer.Stop()
	if l.authed >= l.maxAuth {
		tc.released = true
		l.refusedLocked("ssh connection limit reached; closing an authenticated connection", tc.key)
		l.mu.Unlock()
		tc.Conn.Close()
		return
	}
	tc.authed = true
	l.authed++
	l.mu.Unlock()
}

// expire closes tc if it has not authenticated within the grace time.
func (tc *trackedConn) expire() {
	l := tc.l
	l.mu.Lock()
	if tc.authed || tc.released {
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.log.Debug("ssh login grace time exceeded; closing connection", "remote", tc.RemoteAddr().String(), "grace", l.grace)
	tc.Close()
}

// Close closes the connection and frees its place.
func (tc *trackedConn) Close() error {
	err := tc.Conn.Close()
	l := tc.l
	l.mu.Lock()
	defer l.mu.Unlock()
	if tc.released {
		return err
	}
	tc.released = true
	tc.timer.Stop()
	if tc.authed {
		l.authed--
	} else {
		l.removePreLocked(tc)
	}
	return err
}

// open is the number of connections admitted and not closed.
func (l *connLimiter) open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.authed + l.npre
}

// counts are the open unauthenticated and authenticated connections.
func (l *connLimiter) counts() (pre, authed int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.npre, l.authed
}

// limitListener admits accepted connections through its limiter.
type limitListener struct {
	net.Listener
	l *connLimiter
}

func (ll *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := ll.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := ll.l.admit(c); tc != nil {
			return tc, nil
		}
	}
}
