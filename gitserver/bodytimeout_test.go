package gitserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestBodyTimeoutStalled: a body that stops arriving fails the handler's
// read with ErrBodyStalled after the timeout, and the connection is closed.
func TestBodyTimeoutStalled(t *testing.T) {
	readErr := make(chan error, 1)
	srv := httptest.NewServer(WithBodyTimeout(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.NewResponseController(w).EnableFullDuplex()
		_, err := io.Copy(io.Discard, r.Body)
		readErr <- err
		w.WriteHeader(http.StatusRequestTimeout)
	}), 300*time.Millisecond))
	defer srv.Close()
	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n")
	select {
	case err := <-readErr:
		if !errors.Is(err, ErrBodyStalled) {
			t.Fatalf("read of a stalled body: %v, want ErrBodyStalled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("read of a stalled body still blocked after 5s")
	}
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	answer, err := io.ReadAll(conn)
	if err != nil {
		t.Fatalf("connection not closed: %v (answer %q)", err, answer)
	}
	if !strings.HasPrefix(string(answer), "HTTP/1.1 408") {
		t.Errorf("answer %q, want the handler's 408", answer)
	}
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Errorf("stalled after %v, before the timeout", d)
	}
}

// TestBodyTimeoutLiftedAtEOF: once the body has been read in full, the
// handler may take longer than the timeout to answer (a clone's pack, a
// build claim's wait): its request is not cancelled.
func TestBodyTimeoutLiftedAtEOF(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv := httptest.NewServer(WithBodyTimeout(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		// Reading again at the end (as a JSON decoder looking for
		// trailing data does) must not arm the deadline again.
		if n, err := r.Body.Read(make([]byte, 1)); n != 0 || err != io.EOF {
			http.Error(w, fmt.Sprintf("read after EOF: %d, %v", n, err), 500)
			return
		}
		select {
		case <-time.After(3 * timeout):
		case <-r.Context().Done():
			http.Error(w, "cancelled: "+context.Cause(r.Context()).Error(), 500)
			return
		}
		w.Write(b)
	}), timeout))
	defer srv.Close()
	// A body that arrives slowly but steadily is not cut either.
	pr, pw := io.Pipe()
	go func() {
		for i := range 5 {
			fmt.Fprintf(pw, "%d", i)
			time.Sleep(timeout / 2)
		}
		pw.Close()
	}()
	resp, err := http.Post(srv.URL, "text/plain", pr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(got) != "01234" {
		t.Fatalf("answer %d %q, want 200 01234", resp.StatusCode, got)
	}
}
