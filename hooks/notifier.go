package hooks

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"gitserver/store"
	"gitserver/ui/wire"
)

// SignatureHeader carries the hex HMAC-SHA256 of a webhook body.
const SignatureHeader = "X-Gitserver-Signature-256"

// Sign returns "sha256=<hex HMAC-SHA256 of body>".
func Sign(secret string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

// BuildNotifier tells a build system that a build was queued, for systems that
// prefer being told to polling. Deliveries are retried with exponential
// backoff; they never block a push.
type BuildNotifier struct {
	URL    string
	Secret string
	// BaseURL is the server's --base-url, for the build's clone_url.
	BaseURL string
	Log     *slog.Logger
	Client  *http.Client
	Retries int

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	sem    chan struct{}
}

// NewBuildNotifier returns a BuildNotifier posting to url, signing with
// secret, for the server at baseURL (--base-url, for clone URLs).
func NewBuildNotifier(url, secret, baseURL string, log *slog.Logger) *BuildNotifier {
	ctx, cancel := context.WithCancel(context.Background())
	return &BuildNotifier{URL: url, Secret: secret, BaseURL: baseURL, Log: log, Client: &http.Client{Timeout: 10 * time.Second},
		Retries: 6, ctx: ctx, cancel: cancel, sem: make(chan struct{}, 16)}
}

// BuildEvent is the body of a delivery: Build is the build object of the API
// (GET /api/v1/builds/{id}), the same struct.
type BuildEvent struct {
	Event string     `json:"event"`
	Build wire.Build `json:"build"`
}

// Notify delivers a build.queued event in the background.
func (w *BuildNotifier) Notify(b store.Build) {
	body, _ := json.Marshal(BuildEvent{Event: "build.queued", Build: wire.NewBuild(b, wire.HTTPCloneURL(w.BaseURL, b.Repo))})
	w.wg.Add(1)
	go func() {
		defer w.wg.Done()
		select {
		case w.sem <- struct{}{}:
			defer func() { <-w.sem }()
		case <-w.ctx.Done():
			return
		}
		backoff := 500 * time.Millisecond
		for attempt := 1; ; attempt++ {
			err := w.deliver(body)
			if err == nil {
				return
			}
			if attempt > w.Retries {
				w.Log.Error("build webhook failed; giving up", "build", b.ID, "attempts", attempt, "err", err)
				return
			}
			w.Log.Warn("build webhook failed; retrying", "build", b.ID, "attempt", attempt, "in", backoff, "err", err)
			select {
			case <-time.After(backoff):
			case <-w.ctx.Done():
				return
			}
			backoff = min(backoff*2, time.Minute)
		}
	}()
}

func (w *BuildNotifier) deliver(body []byte) error {
	req, err := http.NewRequestWithContext(w.ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "gitserver-webhook")
	req.Header.Set(SignatureHeader, Sign(w.Secret, body))
	resp, err := w.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("answered %s", resp.Status)
	}
	return nil
}

// Close stops retrying and waits for deliveries in flight.
func (w *BuildNotifier) Close() {
	w.cancel()
	w.wg.Wait()
}
