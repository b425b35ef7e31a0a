package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"gitserver/gitserver"
	"gitserver/gitserver/mirror"
	"gitserver/gitserver/packcache"
	"gitserver/gitserver/seal"
	"gitserver/gitserver/service"
	"gitserver/hooks"
	"gitserver/store"
	"gitserver/ui"
	"gitserver/ui/httpauth"
	"gitserver/ui/web"
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
	for _, w := range c.Warnings {
		log.Warn(w)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := NewMain(c, log).Run(ctx); err != nil {
		log.Error("gitserver stopped", "err", err)
		return 1
	}
	log.Info("gitserver stopped")
	return 0
}

// Main is one gitserver server: what `gitserver serve` runs until a
// signal, and what tests start in-process. Set its fields before Run.
type Main struct {
	Config config
	Log    *slog.Logger
	// Self is the gitserver binary that git's hooks run (default: this
	// process's executable; a test binary must name a real gitserver).
	Self string
	// Out receives the first start's admin password (default os.Stdout).
	Out io.Writer

	// Ready is closed once the listeners are bound and the servers are
	// about to serve; HTTPAddr and SSHAddr (nil when SSH is disabled) are
	// the bound addresses from then on.
	Ready    chan struct{}
	HTTPAddr net.Addr
	SSHAddr  net.Addr

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
	err    error
}

// NewMain returns a Main for c that logs to log.
func NewMain(c config, log *slog.Logger) *Main {
	return &Main{Config: c, Log: log, Ready: make(chan struct{})}
}

// Run serves until ctx ends or Close is called, then stops as on SIGTERM:
// running git operations get the grace period. It returns early, with an
// error, if the server cannot start.
func (m *Main) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m.mu.Lock()
	if m.done != nil {
		m.mu.Unlock()
		return errors.New("gitserver: Main.Run called twice")
	}
	m.cancel, m.done = cancel, make(chan struct{})
	if m.Ready == nil {
		m.Ready = make(chan struct{})
	}
	m.mu.Unlock()
	err := m.run(ctx)
	m.err = err
	close(m.done)
	return err
}

// Close stops a running Run and waits for it to return, returning its
// error.
func (m *Main) Close() error {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	<-done
	return m.err
}

// dataPaths are the paths of a node's data directory; reposDir, when set
// (--repos-dir, an absolute path), is the repository root instead of
// <root>/repos.
type dataPaths struct{ root, reposDir string }

func (d dataPaths) db() string { return filepath.Join(d.root, "gitserver.db") }
func (d dataPaths) repos() string {
	if d.reposDir != "" {
		return d.reposDir
	}
	return filepath.Join(d.root, "repos")
}
func (d dataPaths) hooks() string         { return filepath.Join(d.root, "hooks") }
func (d dataPaths) run() string           { return filepath.Join(d.root, "run") }
func (d dataPaths) cache() string         { return filepath.Join(d.root, "cache") }
func (d dataPaths) adminPassword() string { return filepath.Join(d.root, "initial-admin-password") }

// dataDir returns the paths of the data directory, creating it if needed.
func dataDir(dir string) (dataPaths, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return dataPaths{}, err
	}
	d := dataPaths{root: abs}
	if err := os.MkdirAll(d.root, 0o750); err != nil {
		return d, fmt.Errorf("create data directory: %w", err)
	}
	return d, nil
}

func (m *Main) run(ctx context.Context) error {
	c, log := m.Config, m.Log
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

	d, err := dataDir(c.Data)
	if err != nil {
		return err
	}
	// The secret key before the store, which seals with it. The shared
	// lock keeps a key rotation away while this server holds the keys.
	lock, err := lockSecrets(d, false)
	if err != nil {
		return err
	}
	defer lock.Close()
	keyPath := secretKeyPath(c.SecretKeyFile, d)
	keyring, err := seal.LoadOrCreate(keyPath)
	if err != nil {
		return err
	}
	log.Info("secret key", "id", keyring.KeyID(), "file", keyPath)
	if keyring.Previous() > 0 {
		log.Warn("a secret key rotation did not finish; run `gitserver admin secrets rotate` again (with the server stopped)",
			"previous_keys_file", seal.PreviousPath(keyPath))
	}
	sc := storeConfig{DatabaseURL: c.DatabaseURL, MaxConns: c.DatabaseMaxConns}
	s, err := openDatabase(ctx, sc, d, keyring)
	if err != nil {
		return err
	}
	defer s.Close()
	log.Info("store", "database", sc.describe(d))
	if c.ReposDir != "" {
		if d.reposDir, err = filepath.Abs(c.ReposDir); err != nil {
			return err
		}
	}
	for _, dir := range []string{d.repos(), d.hooks(), d.cache()} {
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(d.run(), 0o700); err != nil {
		return err
	}
	out := m.Out
	if out == nil {
		out = os.Stdout
	}
	if err := firstRunAdmin(ctx, s, d, out, log); err != nil {
		return err
	}
	self := m.Self
	if self == "" {
		if self, err = os.Executable(); err != nil {
			return fmt.Errorf("locate own binary for hooks: %w", err)
		}
	}
	if err := gitserver.InstallHooks(d.hooks(), self); err != nil {
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerStoreMetrics(reg, s)

	git := &gitserver.Git{Path: gitPath, HooksDir: d.hooks(), Home: d.root}
	var responses *packcache.Responses
	if c.PackCacheMB > 0 && c.ResponseCache {
		// Whole clone responses over HTTP, served without git (issue 15);
		// the same size cap and age as the pack-objects cache, in its own
		// directory.
		responses = &packcache.Responses{Cache: packcache.Cache{Dir: filepath.Join(d.cache(), "responses"),
			MaxBytes: c.PackCacheMB << 20, MaxAge: c.PackCacheMaxAge, MinOccurrences: 1}}
		reg.MustRegister(packcache.ResponsesCollector(responses.Dir))
	}
	if c.PackCacheMB > 0 {
		packCache := &packcache.Cache{Dir: filepath.Join(d.cache(), "packs"), GitPath: gitPath,
			MaxBytes: c.PackCacheMB << 20, MaxAge: c.PackCacheMaxAge, MinOccurrences: 1}
		if hook, ok := packCache.DirectHook(self); ok {
			// git execs it without sh (issue 15); options in the env.
			git.PackObjectsHook, git.PackObjectsHookEnv = hook, packCache.HookEnv()
		} else {
			git.PackObjectsHook = packCache.HookCommand(self)
		}
		reg.MustRegister(packcache.Collector(packCache.Dir))
	}
	repos := &gitserver.Repos{Root: d.repos(), Git: git}
	// A store shared by several nodes (PostgreSQL) lends its locks: a
	// repository's maintenance and a mirror's sync run on one node at a
	// time. The nodes share the repositories too: a lock file is another
	// node's until it is old (see gitserver.Repos.SharedLockAge).
	locks, _ := s.(store.Locker)
	if locks != nil {
		repos.SharedLockAge = time.Minute
	}
	trigger := &hooks.Trigger{Store: s, Git: git.Output, RepoDir: repos.Dir, Log: log.With("component", "builds")}
	if c.BuildWebhook != "" {
		wh := hooks.NewBuildNotifier(c.BuildWebhook, c.BuildWebhookSecret, c.BaseURL, log.With("component", "webhook"))
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
	auth := httpauth.New(s, httpauth.NewThrottle(20, 3*time.Minute))
	gs := &gitserver.Server{
		Store: s, Repos: repos, Git: git, Auth: auth, Trigger: trigger, Log: log.With("component", "git"),
		AnonymousRead: c.AnonymousRead, HookSocket: sockPath, HookSecret: hookSecret,
		MaxPushBytes: c.MaxPushMB << 20, Metrics: gitserver.NewMetrics(reg), Responses: responses,
	}
	// A push's background work (the build backstop) ends before the webhook
	// notifier and the store close (deferred calls run last to first).
	defer func() {
		if !gs.Close(backgroundGrace) {
			log.Warn("background work of pushes still running after the grace period was cancelled", "grace", backgroundGrace)
		}
	}()
	if injectFaults != nil {
		injectFaults(faultSite{Log: log, Store: s, Git: git, Repos: repos, Trigger: trigger, Socket: sock, Server: gs})
	}
	maint := &gitserver.Maintainer{Git: git, Repos: repos, Log: log.With("component", "maintenance"), Delay: c.MaintenanceDelay, Locks: locks}
	gs.Maintainer = maint
	defer maint.Close()
	if err := maint.Start(ctx, s); err != nil {
		log.Error("schedule repository maintenance", "err", err)
	}
	// Mirrors: syncs run in the background until the store closes (the
	// deferred Close runs before the store's).
	mirrors := &mirror.Engine{Store: s, Git: git, Repos: repos, Builds: trigger, Log: log.With("component", "mirror"),
		Metrics: mirror.NewMetrics(reg), Maintainer: maint, TempDir: d.run(), MaxSyncs: c.MirrorMaxSyncs, MaxFetchBytes: c.MaxPushMB << 20, Self: self, Locks: locks}
	// Provider-hosted mirrors follow renames and transfers by stable id.
	providers := scmFactory(scmHTTPClient) // one factory for the mirrors, the API and the pages
	hosted := &service.Service{Store: s, SCM: providers, HTTPClient: scmHTTPClient, BaseURL: c.BaseURL, Log: log.With("component", "mirror")}
	mirrors.Resolve = hosted.ResolveHosted
	mirrors.PollHead = hosted.PolledHead // Bitbucket Server's api mode
	defer func() {
		if !mirrors.Close(backgroundGrace) {
			log.Warn("mirror syncs still running after the grace period were cancelled", "grace", backgroundGrace)
		}
	}()
	api := &ui.API{Store: s, Auth: auth, Repos: repos, Log: log.With("component", "api"),
		BaseURL: c.BaseURL, AnonymousRead: c.AnonymousRead, Mirrors: mirrors, // SSHURL is set once SSH listens
		SCM: providers, SCMHostKeys: scmHostKeys{}, SCMHTTPClient: scmHTTPClient}

	pageGit := webGit{git: git, repos: repos}
	pages := &web.Pages{Store: s, Auth: auth, Git: pageGit, Repos: repos, BaseURL: c.BaseURL,
		AnonymousRead: c.AnonymousRead, Log: log.With("component", "web")} // SSHURL is set once SSH listens
	// Web IDE: commits go through the push policy and the post-receive trigger.
	pages.EditGit = pageGit
	pages.Committer = &gitserver.WebCommitter{Git: git, Repos: repos, Trigger: trigger, Maintainer: maint,
		TempDir: d.run(), Log: log.With("component", "web-ide")}
	// Admin: the panel's SCM forms use the API's providers; its status
	// shows versions and the data directory's disk.
	pages.SCM, pages.SCMHostKeys, pages.SCMHTTPClient = api.SCM, api.SCMHostKeys, api.SCMHTTPClient
	pages.Status = adminStatus(version, gitVersion, d.root)
	api.Session = pages.SessionPrincipal // the OAuth callback of a connection started on a page
	if pages.SSO, err = c.OIDC.sso(c.BaseURL); err != nil {
		return err
	}
	if pages.SSO != nil {
		log.Info("single sign-on", "issuer", c.OIDC.Issuer, "client_id", c.OIDC.ClientID, "provider", pages.SSO.ProviderName)
	}
	// Repository settings and creation: the mirror and provider operations, as the API's.
	pages.Mirrors = mirrors
	r := newRouter(gitserver.Health{Store: s, GitPath: gitPath, Metrics: reg}, gs, api, mirrors, pages)
	trustedProxies, _ := gitserver.ParseTrustedProxies(c.TrustedProxies) // validated by loadConfig
	if len(trustedProxies) > 0 {
		log.Info("trusting X-Forwarded-For from reverse proxies", "trusted_proxies", trustedProxies)
	}

	httpSrv := &http.Server{
		Handler: gitserver.WithTrustedProxies(gitserver.WithBodyTimeout(
			gitserver.WithRequestLog(r, log.With("component", "http"), gitserver.NewHTTPMetrics(reg)), c.HTTPBodyTimeout), trustedProxies),
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
		sshSrv.LoginGrace, sshSrv.MaxStartupsPerIP, sshSrv.MaxUnauthenticated = c.SSHLoginGrace, c.SSHMaxStartupsPerIP, c.SSHMaxUnauthenticated
		for _, k := range sshSrv.HostKeys() {
			log.Info("ssh host key", "type", k.Type, "fingerprint", k.Fingerprint, "file", k.Path)
		}
		// The port actually bound (--ssh-addr may say :0).
		api.SSHURL = sshCloneBase(c.BaseURL, sshLn.Addr().String())
		pages.SSHURL = api.SSHURL
	}
	log.Info("gitserver started", "version", version, "git", gitVersion, "data", d.root,
		"http_addr", httpLn.Addr().String(), "ssh_addr", addrOf(sshLn), "base_url", c.BaseURL)

	m.HTTPAddr = httpLn.Addr()
	if sshLn != nil {
		m.SSHAddr = sshLn.Addr()
	}
	close(m.Ready)
	mirrors.Start(ctx)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return ignoreClosed(httpSrv.Serve(httpLn)) })
	g.Go(func() error { return ignoreClosed(sockSrv.Serve(hookLn)) })
	if sshSrv != nil {
		g.Go(func() error { return sshSrv.Serve(sshLn) })
	}
	g.Go(func() error {
		gitserver.ExpireLeasesLoop(gctx, s, 5*time.Second, log)
		return nil
	})
	if pages.SSO != nil {
		g.Go(func() error {
			sweepGrants(gctx, pages, log)
			return nil
		})
	}
	if repos.SharedLockAge > 0 {
		// A node killed mid-push leaves its ref locks to the others.
		g.Go(func() error {
			t := time.NewTicker(30 * time.Second)
			defer t.Stop()
			for {
				select {
				case <-gctx.Done():
					return nil
				case <-t.C:
					if err := repos.SweepStaleLocks(gctx, s); err != nil && gctx.Err() == nil {
						log.Warn("sweep stale repository locks", "err", err)
					}
				}
			}
		})
	}
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

// newRouter routes the HTTP address: the operational endpoints, the git
// transport under /git/, the API under /api/v1, the mirrors' inbound
// webhooks under /hooks/scm/ and, last, the web pages (whose
// /{owner}/{name} never matches a reserved first segment).
func newRouter(h gitserver.Health, gs *gitserver.Server, api *ui.API, mirrors *mirror.Engine, pages *web.Pages) *mux.Router {
	r := gitserver.NewRouter()
	h.Register(r)
	gs.RegisterHTTP(r)
	api.Register(r)
	mirrors.RegisterHTTP(r)
	if pages != nil {
		pages.Register(r)
	}
	return r
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
func firstRunAdmin(ctx context.Context, s store.Store, d dataPaths, out io.Writer, log *slog.Logger) error {
	n, err := s.CountUsers(ctx)
	if err != nil || n > 0 {
		return err
	}
	password := generatePassword()
	if _, err := s.CreateUser(ctx, "admin", password, true,
		store.AuditEntry{Actor: "system", Action: "user.create", Target: "admin", Detail: "first start"}); err != nil {
		if errors.Is(err, store.ErrExists) {
			// Another node on the same database started at the same
			// moment and created it (and printed its password).
			log.Info("another node created the first admin account")
			return nil
		}
		return fmt.Errorf("create first admin: %w", err)
	}
	if err := os.WriteFile(d.adminPassword(), []byte(password+"\n"), 0o600); err != nil {
		return fmt.Errorf("write initial admin password: %w", err)
	}
	fmt.Fprintf(out, "\nCreated the admin account.\n  user:     admin\n  password: %s\n(also written to %s; change it with `gitserver admin user passwd admin`)\n\n",
		password, d.adminPassword())
	log.Info("created first admin account", "user", "admin", "password_file", d.adminPassword())
	return nil
}

func generatePassword() string {
	return store.RandomHex(12)
}
