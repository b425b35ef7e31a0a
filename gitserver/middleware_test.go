package gitserver

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

func TestRouterSafety(t *testing.T) {
	r := NewRouter()
	(&Server{}).RegisterHTTP(r)
	for _, path := range []string{"/git/../x", "/git//a/b.git/info/refs", "/nothing", "/x/../healthz"} {
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", path, nil))
		if w.Code != http.StatusNotFound || w.Header().Get("Location") != "" || w.Body.String() != "not found\n" {
			t.Errorf("GET %s = %d %q (Location %q), want a plain 404", path, w.Code, w.Body.String(), w.Header().Get("Location"))
		}
	}
}

func TestWithRequestLog(t *testing.T) {
	var logs bytes.Buffer
	reg := prometheus.NewRegistry()
	m := NewHTTPMetrics(reg)
	r := NewRouter()
	var gotID string
	r.HandleFunc("/ok/{x}", func(w http.ResponseWriter, r *http.Request) {
		gotID = requestID(r)
		w.WriteHeader(http.StatusTeapot)
	})
	r.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	h := WithRequestLog(r, slog.New(slog.NewTextHandler(&logs, nil)), m)

	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/ok/1", nil))
	if w.Code != http.StatusTeapot || gotID == "" || w.Header().Get("X-Request-Id") != gotID {
		t.Errorf("request id: handler saw %q, header %q", gotID, w.Header().Get("X-Request-Id"))
	}
	mw := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(mw, httptest.NewRequest("GET", "/metrics", nil))
	if want := `gitserver_http_requests_total{code="418",method="GET",route="/ok/{x}"} 1`; !strings.Contains(mw.Body.String(), want) {
		t.Errorf("metrics lack %s:\n%s", want, mw.Body.String())
	}

	w = httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/panic", nil))
	id := w.Header().Get("X-Request-Id")
	if w.Code != http.StatusInternalServerError || !strings.Contains(w.Body.String(), "reference "+id) || strings.Contains(w.Body.String(), "boom") {
		t.Errorf("panic: %d %q", w.Code, w.Body.String())
	}
	if !strings.Contains(logs.String(), "panic serving request") || !strings.Contains(logs.String(), "boom") {
		t.Errorf("panic not logged:\n%s", logs.String())
	}
}

type pinger struct{ err error }

func (p pinger) Ping(context.Context) error { return p.err }

func TestHealth(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		h      Health
		path   string
		status int
		body   string
	}{
		{"healthz", Health{Store: pinger{errors.New("down")}}, "/healthz", 200, "ok\n"},
		{"ready", Health{Store: pinger{}, GitPath: self}, "/readyz", 200, "ready\n"},
		{"store down", Health{Store: pinger{errors.New("down")}, GitPath: self}, "/readyz", 503, "store unavailable\n"},
		{"git gone", Health{Store: pinger{}, GitPath: "/nonexistent/git"}, "/readyz", 503, "git unavailable\n"},
	} {
		r := NewRouter()
		tc.h.Metrics = prometheus.NewRegistry()
		tc.h.Register(r)
		w := httptest.NewRecorder()
		r.ServeHTTP(w, httptest.NewRequest("GET", tc.path, nil))
		if w.Code != tc.status || w.Body.String() != tc.body {
			t.Errorf("%s: GET %s = %d %q, want %d %q", tc.name, tc.path, w.Code, w.Body.String(), tc.status, tc.body)
		}
	}
	r := NewRouter()
	reg := prometheus.NewRegistry()
	NewHTTPMetrics(reg).requests.WithLabelValues("/x", "GET", "200").Inc()
	Health{Store: pinger{}, Metrics: reg}.Register(r)
	w := httptest.NewRecorder()
	r.ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 || !strings.Contains(w.Body.String(), "gitserver_http_requests_total") {
		t.Errorf("/metrics = %d\n%s", w.Code, w.Body.String())
	}
}

type expirer struct{ calls atomic.Int32 }

func (e *expirer) ExpireLeases(context.Context) (int, error) {
	e.calls.Add(1)
	return 0, errors.New("db locked")
}

func TestExpireLeasesLoop(t *testing.T) {
	var logs bytes.Buffer
	e := &expirer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		ExpireLeasesLoop(ctx, e, time.Millisecond, slog.New(slog.NewTextHandler(&logs, nil)))
		close(done)
	}()
	deadline := time.Now().Add(5 * time.Second)
	for e.calls.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ExpireLeasesLoop did not return after cancel")
	}
	if e.calls.Load() < 3 {
		t.Fatalf("ExpireLeases called %d times", e.calls.Load())
	}
	if !strings.Contains(logs.String(), "expire build leases") {
		t.Errorf("failure not logged:\n%s", logs.String())
	}
}
