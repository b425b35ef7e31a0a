package main

// Abuse resistance, end to end (issue 10): concurrent password guessing
// over HTTP, and a flood of idle pre-banner sockets over SSH.

import (
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
