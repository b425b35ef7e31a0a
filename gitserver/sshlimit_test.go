package gitserver

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"gitserver/store"
)

// oneKeyStore knows one SSH key (all knownKey asks); every other method is
// unimplemented.
type oneKeyStore struct {
	store.Store
	fp string
}

func (s oneKeyStore) KeyByFingerprint(_ context.Context, fp string) (store.Key, error) {
	if fp == s.fp {
		return store.Key{ID: 1, UserID: 1}, nil
	}
	return store.Key{}, store.ErrNotFound
}

func (s oneKeyStore) AccountByID(_ context.Context, id int64) (store.Account, error) {
	if id == 1 {
		return store.Account{ID: 1, Name: "u", Kind: store.KindUser}, nil
	}
	return store.Account{}, store.ErrNotFound
}

// limitServer starts an SSH server that knows one client key, with its
// limits set by configure, on 127.0.0.1.
func limitServer(t *testing.T, configure func(*SSHServer)) (*SSHServer, string, gossh.Signer) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := NewSSHServer(&Server{Store: oneKeyStore{fp: gossh.FingerprintSHA256(signer.PublicKey())}}, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	configure(srv)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.srv.Close() })
	return srv, ln.Addr().String(), signer
}

// dialFrom opens a raw TCP connection from the loopback address from
// (127.0.0.0/8 is all local on Linux).
func dialFrom(t *testing.T, from, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// banner reads the server's version line, or fails when the server closed
// the connection before sending one.
func banner(c net.Conn) (string, error) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	return bufio.NewReader(c).ReadString('\n')
}

// closedWithin reports whether the server closes c (EOF or reset) within d,
// sending nothing more than the banner.
func closedWithin(c net.Conn, d time.Duration) error {
	c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return errors.New("still open")
	}
	return nil
}

// authenticate opens an SSH connection with the known key from from.
func authenticate(t *testing.T, from, addr string, signer gossh.Signer) (gossh.Conn, error) {
	t.Helper()
	c := dialFrom(t, from, addr)
	sc, _, reqs, err := gossh.NewClientConn(c, addr, &gossh.ClientConfig{
		User: "git", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.InsecureIgnoreHostKey(), Timeout: 10 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	go gossh.DiscardRequests(reqs)
	t.Cleanup(func() { sc.Close() })
	return sc, nil
}

// alive reports whether an SSH connection still answers a global request.
func alive(c gossh.Conn) bool {
	_, _, err := c.SendRequest("keepalive@openssh.com", true, nil)
	return err == nil
}

// A connection that does not authenticate within LoginGrace is closed; an
// authenticated one outlives it.
func TestSSHLoginGrace(t *testing.T) {
	srv, addr, signer := limitServer(t, func(s *SSHServer) { s.LoginGrace = 500 * time.Millisecond })
	idle := dialFrom(t, "127.0.0.1", addr)
	if b, err := banner(idle); err != nil || !strings.HasPrefix(b, "SSH-2.0-") {
		t.Fatalf("banner %q, %v", b, err)
	}
	silent := dialFrom(t, "127.0.0.1", addr) // never reads nor writes
	sc, err := authenticate(t, "127.0.0.1", addr, signer)
	if err != nil {
		t.Fatalf("authenticate: %v", err)
	}
	start := time.Now()
	if err := closedWithin(idle, 5*time.Second); err != nil {
		t.Fatalf("idle connection after the 500ms login grace: %v", err)
	}
	if err := closedWithin(silent, 5*time.Second); err != nil {
		t.Fatalf("silent connection after the 500ms login grace: %v", err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("closed after %v, before the grace time", d)
	}
	time.Sleep(500 * time.Millisecond)
	if !alive(sc) {
		t.Fatal("authenticated connection closed by the login grace time")
	}
	if pre, authed := srv.limiter.counts(); pre != 0 || authed != 1 {
		t.Fatalf("limiter counts %d unauthenticated, %d authenticated; want 0, 1", pre, authed)
	}
}

// One client's unauthenticated connections beyond MaxStartupsPerIP are
// closed before the banner; other clients are not affected.
func TestSSHMaxStartupsPerIP(t *testing.T) {
	_, addr, signer := limitServer(t, func(s *SSHServer) { s.MaxStartupsPerIP = 2 })
	for i := 0; i < 2; i++ {
		if b, err := banner(dialFrom(t, "127.0.0.2", addr)); err != nil {
			t.Fatalf("connection %d: banner %q, %v", i, b, err)
		}
	}
	if b, err := banner(dialFrom(t, "127.0.0.2", addr)); err == nil {
		t.Fatalf("third unauthenticated connection from one client got a banner %q", b)
	}
	if b, err := banner(dialFrom(t, "127.0.0.3", addr)); err != nil {
		t.Fatalf("another client: banner %q, %v", b, err)
	}
	if _, err := authenticate(t, "127.0.0.1", addr, signer); err != nil {
		t.Fatalf("a user with a key from a third address: %v", err)
	}
}

// A flood of unauthenticated connections from several clients fills only
// the unauthenticated pool: a user still authenticates (the flood's oldest
// connection of the busiest client makes room), authenticated connections
// keep their own pool, and a full authenticated pool closes new
// connections before the banner until a slot is free again.
func TestSSHUnauthenticatedFloodDoesNotStarveUsers(t *testing.T) {
	srv, addr, signer := limitServer(t, func(s *SSHServer) {
		s.MaxConns, s.MaxUnauthenticated, s.MaxStartupsPerIP = 2, 4, 3
	})
	first, err := authenticate(t, "127.0.0.1", addr, signer)
	if err != nil {
		t.Fatalf("first user: %v", err)
	}
	var flood []net.Conn
	for _, from := range []string{"127.0.0.2", "127.0.0.2", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"} {
		flood = append(flood, dialFrom(t, from, addr))
	}
	time.Sleep(200 * time.Millisecond) // all accepted
	if pre, authed := srv.limiter.counts(); pre != 4 || authed != 1 {
		t.Fatalf("during the flood: %d unauthenticated, %d authenticated; want 4, 1", pre, authed)
	}
	// 127.0.0.2 held the most: its two oldest were closed to make room.
	for i, c := range flood[:2] {
		if err := closedWithin(c, 5*time.Second); err != nil {
			t.Errorf("flood connection %d of the busiest client: %v", i, err)
		}
	}
	second, err := authenticate(t, "127.0.0.1", addr, signer)
	if err != nil {
		t.Fatalf("user during the flood: %v", err)
	}
	// Its connection took a flood connection's place, then left the pool.
	if pre, authed := srv.limiter.counts(); pre != 3 || authed != 2 {
		t.Fatalf("after the second user: %d unauthenticated, %d authenticated; want 3, 2", pre, authed)
	}
	if b, err := banner(dialFrom(t, "127.0.0.6", addr)); err == nil {
		t.Fatalf("connection beyond MaxConns authenticated got a banner %q", b)
	}
	if !alive(first) || !alive(second) {
		t.Fatal("an authenticated connection was closed")
	}
	first.Close()
	// The slot is released when the server closes its side; retry briefly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := authenticate(t, "127.0.0.1", addr, signer); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("authenticated slot never released: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestSourceKey(t *testing.T) {
	for addr, want := range map[string]string{
		"192.0.2.1:22":               "192.0.2.1",
		"[::ffff:192.0.2.1]:22":      "192.0.2.1",
		"[2001:db8:1:2:3:4:5:6]:22":  "2001:db8:1:2::/64",
		"[2001:db8:1:2:ffff::1%x]:2": "2001:db8:1:2::/64",
		"[2001:db8:1:3::1]:22":       "2001:db8:1:3::/64",
	} {
		a, err := net.ResolveTCPAddr("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if got := sourceKey(a); got != want {
			t.Errorf("sourceKey(%s) = %q, want %q", addr, got, want)
		}
	}
}
