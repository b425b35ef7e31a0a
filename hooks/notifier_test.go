package hooks_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gitserver/hooks"
	"gitserver/store"
)

// webhookReceiver is a real local HTTP receiver that verifies signatures
// the way a build system would, failing the first failFirst deliveries.
type webhookReceiver struct {
	secret    string
	failFirst int

	mu       sync.Mutex
	attempts int
	badSig   int
	events   []hooks.BuildEvent
	got      chan struct{}
}

func (rv *webhookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	rv.mu.Lock()
	defer rv.mu.Unlock()
	rv.attempts++
	// Verify independently of hooks.Sign: HMAC-SHA256 of the raw body.
	mac := hmac.New(sha256.New, []byte(rv.secret))
	mac.Write(body)
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	if !hmac.Equal([]byte(r.Header.Get(hooks.SignatureHeader)), []byte(want)) || r.Method != http.MethodPost ||
		r.Header.Get("Content-Type") != "application/json" {
		rv.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if rv.attempts <= rv.failFirst {
		http.Error(w, "try later", http.StatusServiceUnavailable)
		return
	}
	var ev hooks.BuildEvent
	if err := json.Unmarshal(body, &ev); err != nil {
		http.Error(w, "bad json", http.StatusBadRequest)
		return
	}
	rv.events = append(rv.events, ev)
	w.WriteHeader(http.StatusNoContent)
	select {
	case rv.got <- struct{}{}:
	default:
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func testBuild() store.Build {
	return store.Build{ID: 42, Repo: "alice/app", Branch: "master", Commit: strings.Repeat("c", 40),
		PreviousCommit: strings.Repeat("b", 40), CommitCount: 3, PushedBy: "alice",
		QueuedAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func TestWebhookSignedAndRetried(t *testing.T) {
	rv := &webhookReceiver{secret: "s3cret", failFirst: 2, got: make(chan struct{}, 1)}
	srv := httptest.NewServer(rv)
	defer srv.Close()

	wh := hooks.NewBuildNotifier(srv.URL, "s3cret", discardLog())
	wh.Notify(testBuild())
	select {
	case <-rv.got:
	case <-time.After(30 * time.Second):
		t.Fatal("webhook never delivered after failures")
	}
	wh.Close()

	rv.mu.Lock()
	defer rv.mu.Unlock()
	if rv.badSig != 0 {
		t.Errorf("%d deliveries with a bad signature", rv.badSig)
	}
	if rv.attempts != 3 || len(rv.events) != 1 {
		t.Fatalf("attempts %d, events %d; want 3 attempts (2 failures, then success) and 1 event", rv.attempts, len(rv.events))
	}
	ev := rv.events[0]
	if ev.Event != "build.queued" {
		t.Errorf("event %q", ev.Event)
	}
	b := ev.Build
	if b["id"] != float64(42) || b["repo"] != "alice/app" || b["commit"] != strings.Repeat("c", 40) ||
		b["previous_commit"] != strings.Repeat("b", 40) || b["commit_count"] != float64(3) || b["branch"] != "master" {
		t.Errorf("event build %v", b)
	}
}

func TestWebhookWrongSecretIsDetected(t *testing.T) {
	// The receiver's check is real: a delivery signed with another secret
	// fails it, and the sender keeps retrying (bounded by Retries).
	rv := &webhookReceiver{secret: "right", got: make(chan struct{}, 1)}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	wh := hooks.NewBuildNotifier(srv.URL, "wrong", discardLog())
	wh.Retries = 1
	wh.Notify(testBuild())
	deadline := time.Now().Add(30 * time.Second)
	for {
		rv.mu.Lock()
		n := rv.badSig
		rv.mu.Unlock()
		if n >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d rejected deliveries, want 2 (first try + 1 retry)", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wh.Close()
	rv.mu.Lock()
	defer rv.mu.Unlock()
	if len(rv.events) != 0 || rv.attempts != 2 {
		t.Errorf("events %d attempts %d; want 0 accepted and exactly 2 attempts", len(rv.events), rv.attempts)
	}
}

func TestWebhookSign(t *testing.T) {
	body := []byte(`{"event":"build.queued"}`)
	mac := hmac.New(sha256.New, []byte("k"))
	mac.Write(body)
	if got, want := hooks.Sign("k", body), "sha256="+hex.EncodeToString(mac.Sum(nil)); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if hooks.Sign("k", body) == hooks.Sign("k2", body) {
		t.Error("signature does not depend on the secret")
	}
}

func TestWebhookCloseStopsRetrying(t *testing.T) {
	// Close does not wait out the retries of a receiver that always fails.
	var mu sync.Mutex
	attempts := 0
	first := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		attempts++
		if attempts == 1 {
			close(first)
		}
		mu.Unlock()
		http.Error(w, "down", http.StatusInternalServerError)
	}))
	defer srv.Close()
	wh := hooks.NewBuildNotifier(srv.URL, "s", discardLog())
	wh.Notify(testBuild())
	select {
	case <-first:
	case <-time.After(30 * time.Second):
		t.Fatal("no delivery attempt")
	}
	closed := make(chan struct{})
	go func() { wh.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close hung while a delivery was retrying")
	}
}
