package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"gitserver/gitserver"
	"gitserver/gitserver/packcache"
	"gitserver/hooks"
	"gitserver/store"
	"gitserver/store/sqlite"
	"gitserver/ui"
	"gitserver/ui/httpauth"
)

// shutdownGrace bounds how long running git operations may finish after
// SIGTERM.
const shutdownGrace = 30 * time.Second

// backgroundGrace bounds how long a push's background work (the build
// backstop) may finish after the transports stopped, before the store
// closes.
const backgroundGrace = 10 * time.Second

func newLogger(c config) *slog.Logger {
	var lvl slog.Level
	lvl.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: lvl}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}

func serve(args []string) int {
	c, err := loadConfig(args, os.Stdout)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gitserver serve:", err)
		fmt.Fprintln(os.Stderr, "Run \"gitserver serve --help\" for the flags.")
		return 2
	}
	log := newLogger(c)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := runServer(ctx, c, log); err != nil {
		log.Error("gitserver stopped", "err", err)
		return 1
	}
	log.Info("gitserver stopped")
	return 0
}

// paths of the data directory.
type dataPaths struct{ root string }

func (d dataPaths) db() string            { return filepath.Join(d.root, "gitserver.db") }
func (d dataPaths) repos() string         { return filepath.Join(d.root, "repos") }
func (d dataPaths) hooks() string         { return filepath.Join(d.root, "hooks") }
func (d dataPaths) run() string           { return filepath.Join(d.root, "run") }
func (d dataPaths) cache() string         { return filepath.Join(d.root, "cache") }
func (d dataPaths) adminPassword() string { return filepath.Join(d.root, "initial-admin-password") }

// openStore creates the data directory if needed and opens the store.
func openStore(ctx context.Context, dataDir string) (store.Store, dataPaths, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, dataPaths{}, err
	}
	d := dataPaths{root: abs}
	if err := os.MkdirAll(d.root, 0o750); err != nil {
		return nil, d, fmt.Errorf("create data directory: %w", err)
	}
	s, err := sqlite.Open(ctx, d.db(), sqlite.Options{})
	if err != nil {
		return nil, d, err
	}
	return s, d, nil
}

func runServer(ctx context.Context, c config, log *slog.Logger) error {
	gitPath, gitVersion, err := gitserver.FindGit()
	if err != nil {
		return err
	}
	// Bind the listeners before touching the data directory: a start that
	// cannot listen (a port in use) leaves nothing behind, above all no
	// admin account whose password nobody will see again.
	httpLn, err := net.Listen("tcp", c.HTTPAddr)
	if err != nil {
		return fmt.Errorf("http listen: %w", err)
	}
	defer httpLn.Close()
	var sshLn net.Listener
	if c.SSHAddr != "" {
		if sshLn, err = net.Listen("tcp", c.SSHAddr); err != nil {
			return fmt.Errorf("ssh listen: %w", err)
		}
		defer sshLn.Close()
	}

	s, d, err := openStore(ctx, c.Data)
	if err != nil {
		return err
	}
	defer s.Close()
	for _, dir := range []string{d.repos(), d.hooks(), d.cache()} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(d.run(), 0o700); err != nil {
		return err
	}
	if err := firstRunAdmin(ctx, s, d, log); err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("locate own binary for hooks: %w", err)
	}
	if err := gitserver.InstallHooks(d.hooks(), self); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	git := &gitserver.Git{Path: gitPath, HooksDir: d.hooks(), Home: d.root}
	if c.PackCacheMB > 0 {
		packCache := &packcache.Cache{Dir: filepath.Join(d.cache(), "packs"), GitPath: gitPath,
			MaxBytes: c.PackCacheMB << 20, MaxAge: c.PackCacheMaxAge, MinOccurrences: 1}
		git.PackObjectsHook = packCache.HookCommand(self)
		reg.MustRegister(packcache.Collector(packCache.Dir))
	}
	repos := &gitserver.Repos{Root: d.repos(), Git: git}
	trigger := &hooks.Trigger{Store: s, Git: git.Output, RepoDir: repos.Dir, Log: log.With("component", "builds")}
	if c.BuildWebhook != "" {
		wh := hooks.NewWebhook(c.BuildWebhook, c.BuildWebhookSecret, log.With("component", "webhook"))
		trigger.OnQueued = wh.Notify
		defer wh.Close()
	}
	if err := repos.EnsureAll(ctx, s); err != nil {
		return fmt.Errorf("check repositories: %w", err)
	}
	if n, err := trigger.ReconcileAll(ctx); err != nil {
		log.Error("reconcile owed builds", "err", err)
	} else if n > 0 {
		log.Warn("queued builds owed from before the last stop", "count", n)
	}

	// Hook socket: how hook processes reach this daemon.
	hookSecret := store.RandomHex(32)
	sockPath := filepath.Join(d.run(), "hook.sock")
	if len(sockPath) > 100 {
		sockPath = filepath.Join(os.TempDir(), "gitserver-"+store.RandomHex(8)+".sock")
	}
	os.Remove(sockPath)
	hookLn, err := net.Listen("unix", sockPath)
	if err != nil {
		return fmt.Errorf("hook socket: %w", err)
	}
	defer os.Remove(sockPath)
	sock := &hooks.SocketServer{Secret: hookSecret, Trigger: trigger, Log: log.With("component", "hooks")}
	if os.Getenv("GITSERVER_FAULT") == "crash-before-enqueue" {
		// Fault injection for the crash-reconcile test: die after git has
		// updated the refs and before the build is queued.
		sock.BeforeEnqueue = func() { log.Warn("fault injection: exiting before enqueue"); os.Exit(3) }
	}

	auth := httpauth.New(s, httpauth.NewThrottle(20, 3*time.Minute))
	gs := &gitserver.Server{
		Store: s, Repos: repos, Git: git, Auth: auth, Trigger: trigger, Log: log.With("component", "git"),
		AnonymousRead: c.AnonymousRead, HookSocket: sockPath, HookSecret: hookSecret,
		MaxPushBytes: c.MaxPushMB << 20, Metrics: gitserver.NewMetrics(reg),
	}
	// A push's background work (the build backstop) ends before the webhook
	// notifier and the store close (deferred calls run last to first).
	defer func() {
		if !gs.Close(backgroundGrace) {
			log.Warn("background work of pushes still running after the grace period was cancelled", "grace", backgroundGrace)
		}
	}()
	if os.Getenv("GITSERVER_FAULT") == "slow-backstop" {
		// Fault injection for the shutdown test: the hook's enqueue fails
		// and the post-push backstop takes 2 s, so a stop right after the
		// push finds the backstop still running.
		// (Two triggers: the push tracking of the slow one never hears of
		// post-receive, so such a push is judged by git's exit alone.)
		failing := &hooks.Trigger{Store: s, RepoDir: repos.Dir, Log: trigger.Log, OnQueued: trigger.OnQueued,
			Git: func(context.Context, string, ...string) (string, error) {
				return "", errors.New("fault injection: hook enqueue fails")
			}}
		slow := &hooks.Trigger{Store: s, RepoDir: repos.Dir, Log: trigger.Log, OnQueued: trigger.OnQueued,
			Git: func(ctx context.Context, dir string, args ...string) (string, error) {
				select {
				case <-time.After(2 * time.Second):
				case <-ctx.Done():
					return "", ctx.Err()
				}
				return git.Output(ctx, dir, args...)
			}}
		sock.Trigger, gs.Trigger = failing, slow
	}
	maint := &gitserver.Maintainer{Git: git, Repos: repos, Log: log.With("component", "maintenance"), Delay: c.MaintenanceDelay}
	gs.Maintainer = maint
	defer maint.Close()
	if err := maint.Start(ctx, s); err != nil {
		log.Error("schedule repository maintenance", "err", err)
	}
	api := &ui.API{Store: s, Auth: auth, Repos: repos, Log: log.With("component", "api"),
		BaseURL: c.BaseURL, AnonymousRead: c.AnonymousRead} // SSHURL is set once SSH listens

	// No path cleaning (mux would answer unclean paths such as /git/../x
	// with a 301) and match on the escaped path, so that "..", "//" and
	// %2F in a git URL are a plain 404 rather than a redirect or an alias.
	r := mux.NewRouter().SkipClean(true).UseEncodedPath()
	r.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("ok\n"))
	})
	r.HandleFunc("/readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := s.Ping(r.Context()); err != nil {
			http.Error(w, "store unavailable", http.StatusServiceUnavailable)
			return
		}
		if _, err := os.Stat(gitPath); err != nil {
			http.Error(w, "git unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ready\n"))
	})
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	gs.RegisterHTTP(r)
	api.Register(r)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "not found", http.StatusNotFound)
	})

	httpSrv := &http.Server{
		Handler:           withRequestLog(r, log.With("component", "http"), newHTTPMetrics(reg)),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// Build claims waiting for work answer 204 as soon as the server stops
	// (after the listeners are closed), rather than hold the shutdown.
	stopping := make(chan struct{})
	httpSrv.BaseContext = func(net.Listener) context.Context {
		return ui.WithStopping(context.Background(), stopping)
	}
	httpSrv.RegisterOnShutdown(func() { close(stopping) })
	sockSrv := &http.Server{Handler: sock, ReadHeaderTimeout: 10 * time.Second}

	var sshSrv *gitserver.SSHServer
	if sshLn != nil {
		sshSrv, err = gitserver.NewSSHServer(gs, d.root, log.With("component", "ssh"))
		if err != nil {
			return err
		}
		for _, k := range sshSrv.HostKeys() {
			log.Info("ssh host key", "type", k.Type, "fingerprint", k.Fingerprint, "file", k.Path)
		}
		// The port actually bound (--ssh-addr may say :0).
		api.SSHURL = sshCloneBase(c.BaseURL, sshLn.Addr().String())
	}
	log.Info("gitserver started", "version", version, "git", gitVersion, "data", d.root,
		"http_addr", httpLn.Addr().String(), "ssh_addr", addrOf(sshLn), "base_url", c.BaseURL)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreClosed(httpSrv.Serve(httpLn)) })
	g.Go(func() error { return ignoreClosed(sockSrv.Serve(hookLn)) })
	if sshSrv != nil {
		g.Go(func() error { return sshSrv.Serve(sshLn) })
	}
	g.Go(func() error {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-t.C:
				if _, err := s.ExpireLeases(gctx); err != nil && gctx.Err() == nil {
					log.Error("expire build leases", "err", err)
				}
			}
		}
	})
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down: waiting for running git operations", "grace", shutdownGrace)
		sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		// Past the grace period, what still runs is cut off (its git
		// processes are killed with their request); that is the bounded
		// part of a clean stop, not a failure. HTTP and SSH drain side by
		// side, each with the whole grace period.
		var wg sync.WaitGroup
		wg.Go(func() {
			err := httpSrv.Shutdown(sctx)
			switch {
			case errors.Is(err, context.DeadlineExceeded):
				log.Warn("HTTP requests still running after the grace period were cut off")
				httpSrv.Close()
			case err != nil:
				log.Warn("stop HTTP server", "err", err)
			}
		})
		if sshSrv != nil {
			wg.Go(func() {
				if err := sshSrv.Shutdown(sctx); err != nil {
					log.Warn("SSH sessions still running after the grace period were cut off", "err", err)
				}
			})
		}
		wg.Wait()
		// The hook socket closes last: hooks of pushes still finishing need it.
		if err := sockSrv.Shutdown(sctx); err != nil {
			sockSrv.Close()
		}
		return nil
	})
	return g.Wait()
}

func addrOf(ln net.Listener) string {
	if ln == nil {
		return ""
	}
	return ln.Addr().String()
}

func ignoreClosed(err error) error {
	if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

// sshCloneBase derives ssh://git@HOST:PORT from the base URL's host and the
// SSH listen port.
func sshCloneBase(baseURL, sshAddr string) string {
	host := "localhost"
	if u, err := url.Parse(baseURL); err == nil && u.Hostname() != "" {
		host = u.Hostname()
	}
	_, port, err := net.SplitHostPort(sshAddr)
	if err != nil || port == "" || port == "0" {
		port = "22"
	}
	return "ssh://git@" + net.JoinHostPort(host, port)
}

// firstRunAdmin creates the admin account on the very first start, prints
// its password once and writes it to <data>/initial-admin-password (0600).
func firstRunAdmin(ctx context.Context, s store.Store, d dataPaths, log *slog.Logger) error {
	n, err := s.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	password := generatePassword()
	if _, err := s.CreateUser(ctx, "admin", password, true,
		store.AuditEntry{Actor: "system", Action: "user.create", Target: "admin", Detail: "first start"}); err != nil {
		return fmt.Errorf("create first admin: %w", err)
	}
	if err := os.WriteFile(d.adminPassword(), []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write initial admin password: %w", err)
	}
	fmt.Printf("\nCreated the admin account.\n  user:     admin\n  password: %s\n(also written to %s; change it with `gitserver admin user passwd admin`)\n\n",
		password, d.adminPassword())
	log.Info("created first admin account", "user", "admin", "password_file", d.adminPassword())
	return nil
}

func generatePassword() string {
	return store.RandomHex(12)
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) *httpMetrics {
	m := &httpMetrics{
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

// withRequestLog gives every request an id, logs it and counts it.
func withRequestLog(next *mux.Router, log *slog.Logger, m *httpMetrics) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := store.RandomHex(8)
		w.Header().Set("X-Request-Id", id)
		sw := &statusWriter{ResponseWriter: w}
		route := "other"
		var match mux.RouteMatch
		if next.Match(r, &match) && match.Route != nil {
			if tpl, err := match.Route.GetPathTemplate(); err == nil {
				route = tpl
			}
		}
		defer func() {
			if p := recover(); p != nil {
				log.Error("panic serving request", "path", r.URL.Path, "panic", p, "request_id", id)
				if sw.status == 0 {
					http.Error(sw, "internal error, reference "+id, http.StatusInternalServerError)
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
		next.ServeHTTP(sw, r.WithContext(gitserver.WithRequestID(r.Context(), id)))
	})
}
