package gitserver

import (
	"bufio"
	"context"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"
)

// Shutdown reports SSH connections as cut off only when some were open at
// the deadline: an expired context alone (the HTTP side used up the grace
// period) is no cut-off.
func TestSSHShutdownReportsOnlyRealCutOffs(t *testing.T) {
	keyDir := t.TempDir()
	start := func() (*SSHServer, string) {
		srv, err := NewSSHServer(&Server{}, keyDir, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.srv.Close() })
		return srv, ln.Addr().String()
	}
	expired, cancel := context.WithCancel(context.Background())
	cancel()

	// No connection: nothing was cut off, even past the deadline.
	idle, _ := start()
	time.Sleep(50 * time.Millisecond) // Serve is accepting
	if err := idle.Shutdown(expired); err != nil {
		t.Errorf("shutdown without connections past the deadline = %v, want nil", err)
	}
	// Ends in time: nil.
	quick, _ := start()
	time.Sleep(50 * time.Millisecond)
	ctx, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	if err := quick.Shutdown(ctx); err != nil {
		t.Errorf("shutdown in time = %v, want nil", err)
	}
	// An open connection at the deadline is cut off and reported.
	busy, addr := start()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if b, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.HasPrefix(b, "SSH-2.0-") {
		t.Fatalf("banner %q, %v", b, err)
	}
	err = busy.Shutdown(expired)
	if err == nil || !strings.Contains(err.Error(), "1 SSH connection(s) cut off") {
		t.Errorf("shutdown with an open connection past the deadline = %v, want a cut-off", err)
	}
}
