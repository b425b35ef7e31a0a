package gitserver

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gitserver/gitserver/httperr"
	"gitserver/store"
)

// NewRouter returns the server's router with its safety options: no path
// cleaning (mux would answer unclean paths such as /git/../x with a 301)
// and matching on the escaped path, so that "..", "//" and %2F in a git URL
// are a plain 404 rather than a redirect or an alias. Unknown paths get a
// plain-text 404.
func NewRouter() *mux.Router {
	r := mux.NewRouter().SkipClean(true).UseEncodedPath()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httperr.New(http.StatusNotFound, "not_found", "not found").WriteText(w)
	})
	return r
}

// Health serves the operational endpoints: /healthz (the process answers),
// /readyz (the store and git are usable) and /metrics (Prometheus).
type Health struct {
	Store   interface{ Ping(context.Context) error }
	GitPath string
	Metrics prometheus.Gatherer
}

// Register adds /healthz, /readyz and /metrics to r.
func (h Health) Register(r *mux.Router) {
	r.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	r.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		// A database that does not answer (a network partition) fails
		// the check rather than hold it.
		ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
		err := h.Store.Ping(ctx)
		cancel()
		if err != nil {
			httperr.New(http.StatusServiceUnavailable, "unavailable", "store unavailable").WriteText(w)
			return
		}
		if _, err := os.Stat(h.GitPath); err != nil {
			httperr.New(http.StatusServiceUnavailable, "unavailable", "git unavailable").WriteText(w)
			return
		}
		w.Write([]byte("ready\n"))
	})
	r.Handle("/metrics", promhttp.HandlerFor(h.Metrics, promhttp.HandlerOpts{}))
}

// HTTPMetrics are the Prometheus collectors of WithRequestLog.
type HTTPMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewHTTPMetrics registers the HTTP request metrics with reg.
func NewHTTPMetrics(reg prometheus.Registerer) *HTTPMetrics {
	m := &HTTPMetrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitserver_http_requests_total", Help: "HTTP requests by route, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gitserver_http_request_duration_seconds", Help: "HTTP request duration by route.",
			Buckets: prometheus.ExponentialBuckets(0.001, 3, 12),
		}, []string{"route", "method"}),
	}
	reg.MustRegister(m.requests, m.duration)
	return m
}

type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.bytes += int64(n)
	return n, err
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ReadFrom keeps the server's own ReadFrom reachable through the wrapper:
// io.Copy from an *os.File then becomes sendfile(2) (cached clones).
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := io.Copy(w.ResponseWriter, r)
	w.bytes += n
	return n, err
}

// WithRequestLog gives every request an id (X-Request-Id, and
// WithRequestID for the handlers), logs it, counts it in m by route
// template, and turns a handler's panic into a 500 that names the id.
func WithRequestLog(next *mux.Router, log *slog.Logger, m *HTTPMetrics) http.Handler {
	// The router matches each request once; a middleware on it reports
	// the matched route's template (unmatched requests stay "other").
	next.Use(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if rt, ok := r.Context().Value(routeKey{}).(*string); ok {
				if cur := mux.CurrentRoute(r); cur != nil {
					if tpl, err := cur.GetPathTemplate(); err == nil {
						*rt = tpl
					}
				}
			}
			h.ServeHTTP(w, r)
		})
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := store.RandomHex(8)
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		route := "other"
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic serving request", "path", r.URL.Path, "panic", p, "request_id", id)
				if sw.status == 0 {
					httperr.New(http.StatusInternalServerError, "internal", "internal error, reference "+id).WriteText(sw)
				}
			}
			if sw.status == 0 {
				sw.status = http.StatusOK
			}
			code := strconv.Itoa(sw.status)
			m.requests.WithLabelValues(route, r.Method, code).Inc()
			m.duration.WithLabelValues(route, r.Method).Observe(time.Since(start).Seconds())
			log.Info("request", "method", r.Method, "path", r.URL.Path, "status", sw.status, "bytes", sw.bytes,
				"duration_ms", time.Since(start).Milliseconds(), "remote", r.RemoteAddr, "request_id", id)
		}()
		ctx := context.WithValue(WithRequestID(r.Context(), id), routeKey{}, &route)
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// routeKey carries WithRequestLog's *string for the matched route template.
type routeKey struct{}

// ExpireLeasesLoop puts builds whose lease ran out back in the queue (or
// fails them), every interval until ctx ends.
func ExpireLeasesLoop(ctx context.Context, s interface {
	ExpireLeases(context.Context) (int, error)
}, interval time.Duration, log *slog.Logger) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if _, err := s.ExpireLeases(ctx); err != nil && ctx.Err() == nil {
				log.Error("expire build leases", "err", err)
			}
		}
	}
}
