package main

// Abuse resistance, end to end (issue 10): concurrent password guessing
// over HTTP, and a flood of idle pre-banner sockets over SSH.

import (
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestHTTPThrottleConcurrentGuesses: 100 wrong passwords sent at once from
// one address are not all checked: at most the limit (20) get 401, the rest
// 429, and then the right password from that address gets 429 too.
func TestHTTPThrottleConcurrentGuesses(t *testing.T) {
	t.Parallel()
	s := StartServer(t)
	s.CreateRepo(Cred{"admin", s.AdminPassword}, "admin", "t", "restricted")
	url := s.URL + "/git/admin/t.git/info/refs?service=git-upload-pack"
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{MaxIdleConnsPerHost: 100}}
	get := func(password string) (int, error) {
		req, _ := http.NewRequest("GET", url, nil)
		req.SetBasicAuth("admin", password)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	const guesses = 100
	start := make(chan struct{})
	statuses := make(chan int, guesses)
	var wg sync.WaitGroup
	for i := 0; i < guesses; i++ {
		wg.Go(func() {
			<-start
			st, err := get("wrong-password-" + strings.Repeat("x", i%7))
			if err != nil {
				t.Errorf("guess %d: %v", i, err)
			}
			statuses <- st
		})
	}
	close(start)
	wg.Wait()
	close(statuses)
	counts := map[int]int{}
	for st := range statuses {
		counts[st]++
	}
	if counts[401] > 20 || counts[401]+counts[429] != guesses {
		t.Errorf("100 concurrent wrong passwords: %v (status: count), want at most 20 401 and the rest 429", counts)
	}
	if st, err := get(s.AdminPassword); err != nil || st != 429 {
		t.Errorf("right password from the throttled address: %d, %v; want 429", st, err)
	}
}

// TestSSHPreBannerFlood: 600 raw TCP sockets that never send a byte, 10
// from each of 60 addresses (127.0.0.2-61; more than the 512 connections
// that used to lock every user out for the 10-minute idle timeout), do not
// keep a user with a key from cloning over SSH with the real OpenSSH client
// from 127.0.0.1 meanwhile, and every one of them is closed within the
// login grace time (5 s here, plus slack).
func TestSSHPreBannerFlood(t *testing.T) {
	t.Parallel()
	const grace = 5 * time.Second
	s := StartServer(t, WithArgs("--ssh-login-grace", grace.String()))
	pw := s.CreateUser("alice", false)
	alice := Cred{"alice", pw}
	key := newSSHKey(t, "alice")
	addUserKey(t, s, alice, "laptop", key.Text)
	s.CreateRepo(alice, "alice", "proj", "restricted")
	url := sshURL(t, s, "alice", "proj")
	g := sshGit(t, sshOptions(key.Priv))
	work := g.Init(url)
	head := g.Commit(work, "README", "one\n", "first")
	gitMust(t, g, work, "push", "-q", "origin", "master")

	var flood []net.Conn
	t.Cleanup(func() {
		for _, c := range flood {
			c.Close()
		}
	})
	for a := 2; a < 62; a++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(a))}, Timeout: 10 * time.Second}
		for i := 0; i < 10; i++ {
			c, err := d.Dial("tcp", s.SSHAddr)
			if err != nil {
				t.Fatalf("flood connection %d from 127.0.0.%d: %v", i, a, err)
			}
			flood = append(flood, c)
		}
	}
	floodDone := time.Now()

	// During the flood: a clone with the real ssh client.
	clone := cloneT(t, g, url)
	if got := strings.TrimSpace(gitMust(t, g, clone, "rev-parse", "HEAD")); got != head {
		t.Fatalf("cloned HEAD %s, want %s", got, head)
	}
	if d := time.Since(floodDone); d >= grace {
		t.Logf("the clone took %v, longer than the login grace time; the flood may have been closed by then", d)
	}

	// Every flood socket is closed by the server (EOF or reset) within the
	// grace time plus slack; none is left open.
	var open sync.WaitGroup
	var mu sync.Mutex
	stillOpen := 0
	for _, c := range flood {
		open.Go(func() {
			c.SetReadDeadline(floodDone.Add(grace + 5*time.Second))
			_, err := io.Copy(io.Discard, c)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				mu.Lock()
				stillOpen++
				mu.Unlock()
			}
		})
	}
	open.Wait()
	if stillOpen > 0 {
		t.Fatalf("%d of %d idle pre-banner sockets still open %v after the flood (login grace %v)", stillOpen, len(flood), grace+5*time.Second, grace)
	}
	// And SSH still works afterwards.
	gitMust(t, g, clone, "fetch", "-q", "origin")
}
