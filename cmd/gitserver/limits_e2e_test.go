package main

// Abuse resistance (issue 10): edge values, content types, stalled bodies,
// file modes, secrets on the command line.

import (
	"bytes"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestClaimWaitEdgeValues: a wait_seconds whose nanoseconds overflow waits
// the cap rather than answering at once; a negative one is a 400.
func TestClaimWaitEdgeValues(t *testing.T) {
	s := StartServer(t)
	s.CreateUser("ops", true)
	tok := s.Token("ops", "builds")

	code, m := s.JSON("POST", "/api/v1/builds/claim", Cred{Secret: tok}, map[string]any{"worker": "w", "wait_seconds": -1})
	if code != http.StatusBadRequest || !strings.Contains(errMessage(m), "wait_seconds") {
		t.Errorf("claim with wait_seconds -1: %d %v, want 400 naming wait_seconds", code, m)
	}

	// 9223372037 s × time.Second overflows int64: before the fix the claim
	// answered 204 at once. It must wait (the cap, 60 s); nothing is
	// queued, so it is still waiting when the client gives up.
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/builds/claim",
		strings.NewReader(`{"worker":"w","wait_seconds":9223372037}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+tok)
	start := time.Now()
	resp, err := (&http.Client{Timeout: 2 * time.Second}).Do(req)
	if err == nil {
		resp.Body.Close()
		t.Fatalf("claim with wait_seconds 9223372037 answered %d after %v; want it to wait", resp.StatusCode, time.Since(start))
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("claim with wait_seconds 9223372037: %v, want the client's timeout", err)
	}
}

// TestDefaultBranchRefRules: a default branch git would refuse (here a
// component ending in .lock) is a 400 naming the problem, not a 500.
func TestDefaultBranchRefRules(t *testing.T) {
	s := StartServer(t)
	admin := Cred{"admin", s.AdminPassword}
	for _, b := range []string{"a.lock/b", "x/.y", "a..b", "-x"} {
		code, m := s.JSON("POST", "/api/v1/repos", admin,
			map[string]any{"owner": "admin", "name": "r", "visibility": "restricted", "default_branch": b})
		if code != http.StatusBadRequest || !strings.Contains(errMessage(m), "default_branch") {
			t.Errorf("create repo with default_branch %q: %d %v, want 400 naming default_branch", b, code, m)
		}
	}
	code, m := s.JSON("POST", "/api/v1/repos", admin,
		map[string]any{"owner": "admin", "name": "r", "visibility": "restricted", "default_branch": "a.lock/b"})
	if msg := errMessage(m); code != http.StatusBadRequest || !strings.Contains(msg, `"a.lock" ends in ".lock"`) {
		t.Errorf("default_branch a.lock/b: %d %q, want a message naming the .lock component", code, msg)
	}
	if code, m := s.JSON("POST", "/api/v1/repos", admin,
		map[string]any{"owner": "admin", "name": "r", "visibility": "restricted", "default_branch": "release/a.b"}); code != http.StatusCreated {
		t.Errorf("create repo with default_branch release/a.b: %d %v", code, m)
	}
}

// errMessage is the message of an API error object.
func errMessage(m map[string]any) string {
	e, _ := m["error"].(map[string]any)
	msg, _ := e["message"].(string)
	return msg
}


// TestAPIRefusesNonJSONContentType: a cross-site form (text/plain, form,
// multipart, or no type) with the browser's cached Basic credentials must
// not act: 415 and nothing changes. application/json (with charset=utf-8)
// is served.
func TestAPIRefusesNonJSONContentType(t *testing.T) {
	s := StartServer(t)
	pw := s.CreateUser("victim", false)
	c := Cred{"victim", pw}
	body, _ := json.Marshal(map[string]any{"title": "attacker", "key": newPubKey(t)})
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "", "application/json; charset=latin1", "application/jsonx"} {
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/user/keys", bytes.NewReader(body))
		req.SetBasicAuth(c.User, c.Secret)
		req.Header.Set("Origin", "https://evil.example")
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		json.NewDecoder(resp.Body).Decode(&m)
		resp.Body.Close()
		e, _ := m["error"].(map[string]any)
		if resp.StatusCode != http.StatusUnsupportedMediaType || e["code"] != "unsupported_media_type" {
			t.Errorf("POST /user/keys with Content-Type %q: %d %v, want 415 unsupported_media_type", ct, resp.StatusCode, m)
		}
	}
	if code, b := s.Do("GET", "/api/v1/user/keys", c, nil); code != 200 || strings.Contains(string(b), "attacker") {
		t.Fatalf("keys after the refused requests: %d %s, want none added", code, b)
	}
	// What clients send is served.
	for i, ct := range []string{"application/json", "application/json; charset=utf-8", "Application/JSON;charset=UTF-8"} {
		body, _ := json.Marshal(map[string]any{"title": "k" + strconv.Itoa(i), "key": newPubKey(t)})
		req, _ := http.NewRequest("POST", s.URL+"/api/v1/user/keys", bytes.NewReader(body))
		req.SetBasicAuth(c.User, c.Secret)
		req.Header.Set("Content-Type", ct)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Errorf("POST /user/keys with Content-Type %q: %d, want 201", ct, resp.StatusCode)
		}
	}
}
