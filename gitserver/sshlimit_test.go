package gitserver

import (
	"bufio"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// Connections beyond MaxConns are closed before the SSH banner; once a
// connection ends its slot is free again.
func TestSSHConnectionLimit(t *testing.T) {
	srv, err := NewSSHServer(&Server{}, t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.MaxConns = 1
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.srv.Close() })

	banner := func(c net.Conn) (string, error) {
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		return bufio.NewReader(c).ReadString('\n')
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	first := dial()
	if b, err := banner(first); err != nil || !strings.HasPrefix(b, "SSH-2.0-") {
		t.Fatalf("first connection: banner %q, %v", b, err)
	}
	second := dial()
	if b, err := banner(second); err == nil {
		t.Fatalf("second connection over the limit got a banner %q", b)
	}
	second.Close()
	first.Close()
	// The slot is released when the server closes its side; retry briefly.
	deadline := time.Now().Add(10 * time.Second)
	for {
		third := dial()
		b, err := banner(third)
		third.Close()
		if err == nil && strings.HasPrefix(b, "SSH-2.0-") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot never released: %q, %v", b, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
