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
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"gitserver/hooks"
	"gitserver/store"
	"gitserver/ui/wire"
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
	bodies   [][]byte
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
	rv.bodies = append(rv.bodies, body)
	w.WriteHeader(http.StatusNoContent)
	select {
	case rv.got <- struct{}{}:
	default:
	}
}

func discardLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testBuild is a build as the store returns it from EnqueueBuild.
func testBuild() store.Build {
	return store.Build{ID: 42, RepoID: 7, Repo: "alice/app", Branch: "master", Commit: strings.Repeat("c", 40),
		PreviousCommit: strings.Repeat("b", 40), CommitCount: 3, Status: store.BuildQueued, Attempt: 1, PushedBy: "alice",
		QueuedAt: time.Date(2030, 1, 2, 3, 4, 5, 0, time.FixedZone("CET", 3600))}
}

func TestWebhookSignedAndRetried(t *testing.T) {
	rv := &webhookReceiver{secret: "s3cret", failFirst: 2, got: make(chan struct{}, 1)}
	srv := httptest.NewServer(rv)
	defer srv.Close()

	wh := hooks.NewBuildNotifier(srv.URL, "s3cret", "https://git.example.com/", discardLog())
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
	// The build is the API's build object (GET /api/v1/builds/{id},
	// docs/api.md §7), every field of it, and nothing more.
	var raw struct {
		Event string         `json:"event"`
		Build map[string]any `json:"build"`
	}
	if err := json.Unmarshal(rv.bodies[0], &raw); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"id": float64(42), "repo": "alice/app", "clone_url": "https://git.example.com/git/alice/app.git",
		"branch": "master", "commit": strings.Repeat("c", 40), "previous_commit": strings.Repeat("b", 40),
		"commit_count": float64(3), "status": "queued", "attempt": float64(1), "pushed_by": "alice",
		"queued_at": "2030-01-02T02:04:05Z", "started_at": nil, "finished_at": nil,
		"worker": "", "message": "", "log_url": "",
	}
	if !reflect.DeepEqual(raw.Build, want) {
		t.Errorf("event build\n got %v\nwant %v", raw.Build, want)
	}
	api, _ := json.Marshal(wire.NewBuild(testBuild(), wire.HTTPCloneURL("https://git.example.com/", "alice/app")))
	if got, _ := json.Marshal(ev.Build); string(got) != string(api) {
		t.Errorf("event build %s\nis not the API's build object %s", got, api)
	}
	if ev.Build.QueuedAt.IsZero() || !ev.Build.StartedAt.IsZero() {
		t.Errorf("decoded timestamps: queued %v started %v", ev.Build.QueuedAt, ev.Build.StartedAt)
	}
}

func TestWebhookWrongSecretIsDetected(t *testing.T) {
	// The receiver's check is real: a delivery signed with another secret
	// fails it, and the sender keeps retrying (bounded by Retries).
	rv := &webhookReceiver{secret: "right", got: make(chan struct{}, 1)}
	srv := httptest.NewServer(rv)
	defer srv.Close()
	wh := hooks.NewBuildNotifier(srv.URL, "wrong", "https://git.example.com", discardLog())
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
	wh := hooks.NewBuildNotifier(srv.URL, "s", "https://git.example.com", discardLog())
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
