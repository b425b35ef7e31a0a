package mirror

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gitserver/gitserver"
	"gitserver/hooks"
	"gitserver/store"
)

// Engine is the mirrors' sync engine. Set its fields, then Start it;
// Close stops it.
type Engine struct {
	Store store.Store
	Git   *gitserver.Git
	Repos *gitserver.Repos
	// Builds queues the build of a moved default branch.
	Builds  *hooks.Trigger
	Log     *slog.Logger
	Metrics *Metrics
	// Maintainer, if set, is told about syncs that changed refs.
	Maintainer interface{ Schedule(store.Repo) }
	// Locks, if set (several nodes share the database), makes a mirror's
	// sync run on one node at a time: a sync waits for the one running
	// elsewhere, then fetches (so a webhook that arrived during it is not
	// lost), and a mirror left "syncing" by a node that died is recovered
	// by the others' polls (its lock died with that node).
	Locks store.Locker
	// SSH and Keyscan are the OpenSSH client programs ("ssh",
	// "ssh-keyscan" on PATH when empty).
	SSH, Keyscan string
	// TempDir holds each sync's key file for the sync's duration
	// (os.TempDir() when empty).
	TempDir string
	// MaxSyncs bounds the syncs running at once (default 4).
	MaxSyncs int
	// MaxFetchBytes bounds what one sync may download (the server's
	// --max-push-mb; 0: no bound beyond SyncTimeout). Self is the gitserver
	// binary, whose `hook ssh-relay` enforces it.
	MaxFetchBytes int64
	Self          string
	// SyncTimeout bounds one sync (default 10 minutes).
	SyncTimeout time.Duration
	// PollEvery is how often due mirrors are looked for (default 15 s).
	PollEvery time.Duration
	// Resolve, if set, is asked before each sync of a provider-hosted
	// mirror (SCMConfigID != 0) where its remote repository is now, by the
	// remote's stable id: a rename or transfer upstream is followed (the
	// new SSH URL, on the same host, and the remote's names are recorded).
	// Its error is logged and the sync goes on with the recorded URL.
	Resolve func(ctx context.Context, m store.Mirror) (sshURL string, remote store.MirrorRemote, err error)
	// PollHead, if set, is asked before each fetch of a provider-hosted
	// mirror for the head of its remote default branch through the
	// provider's API (ok false: this mirror is not polled that way —
	// only Bitbucket Server's api mode is). When the head is the one
	// already here, nothing is fetched over SSH.
	PollHead func(ctx context.Context, m store.Mirror) (head string, ok bool, err error)

	once  sync.Once
	sched *Scheduler
	mets  *Metrics
}

func (e *Engine) log() *slog.Logger {
	if e.Log != nil {
		return e.Log
	}
	return slog.Default()
}

func (e *Engine) metrics() *Metrics {
	e.once.Do(e.init)
	return e.mets
}

func (e *Engine) init() {
	e.mets = e.Metrics
	if e.mets == nil {
		e.mets = NewMetrics(nil)
	}
	e.sched = &Scheduler{Max: e.MaxSyncs, Sync: func(ctx context.Context, id int64, pusher string) {
		if err := e.Sync(ctx, id, pusher); err != nil {
			var se *SyncError
			if !errors.As(err, &se) {
				e.log().Error("mirror sync", "repo_id", id, "err", err)
			}
		}
	}}
}

// Trigger asks for a sync of repository repoID (coalesced with any sync
// pending or running for it). pusher names who pushed upstream, "" when
// unknown.
func (e *Engine) Trigger(repoID int64, pusher string) {
	e.once.Do(e.init)
	e.sched.Trigger(repoID, pusher)
}

// Start recovers mirrors left "syncing" by a previous process and polls
// for due mirrors until ctx ends or Close.
func (e *Engine) Start(ctx context.Context) {
	e.once.Do(e.init)
	e.sched.start()
	e.recoverSyncing(ctx)
	every := e.PollEvery
	if every <= 0 {
		every = 15 * time.Second
	}
	e.sched.goLoop(func(stop <-chan struct{}) {
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			due, err := e.Store.DueMirrors(ctx, e.Store.Now(), 100)
			if err != nil && ctx.Err() == nil {
				e.log().Error("due mirrors", "err", err)
			}
			for _, m := range due {
				e.sched.TriggerIfIdle(m.RepoID)
			}
			if e.Locks != nil {
				e.recoverSyncing(ctx)
			}
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	})
}

// Close stops the engine: no new sync starts, running ones are cancelled
// and waited for (up to timeout).
func (e *Engine) Close(timeout time.Duration) bool {
	e.once.Do(e.init)
	return e.sched.Close(timeout)
}

// Prepare validates a mirror to create (service.Mirrorer): the URL, the
// pasted private key or a new one, the given host keys or a scan of the
// upstream's, the interval ("10m"; "" for the default), and a new webhook
// secret. Its errors are store.ErrInvalid with a client-safe message.
func (e *Engine) Prepare(ctx context.Context, rawURL, privateKey string, hostKeys []string, interval string) (store.NewMirror, error) {
	r, err := ParseURL(rawURL)
	if err != nil {
		return store.NewMirror{}, err
	}
	iv, err := ParseInterval(interval)
	if err != nil {
		return store.NewMirror{}, err
	}
	var priv []byte
	var pub string
	if strings.TrimSpace(privateKey) != "" {
		priv, pub, err = ParsePrivateKey(privateKey)
	} else {
		priv, pub, err = GenerateKey()
	}
	if err != nil {
		return store.NewMirror{}, err
	}
	var hk HostKeys
	if len(hostKeys) > 0 {
		hk, err = ParseHostKeys(r, hostKeys)
	} else {
		hk, err = ScanHostKeys(ctx, e.Keyscan, r)
	}
	if err != nil {
		return store.NewMirror{}, err
	}
	return store.NewMirror{URL: r.URL, PublicKey: pub, PrivateKey: priv, KnownHosts: hk.KnownHosts,
		HostKeyFingerprints: hk.Fingerprints, WebhookSecret: store.RandomHex(32), Interval: iv}, nil
}

// ParseInterval reads a mirror's polling interval ("10m", "1h30m"); ""
// is store.DefaultMirrorInterval. It must lie within
// store.MinMirrorInterval and store.MaxMirrorInterval.
func ParseInterval(s string) (time.Duration, error) {
	if s == "" {
		return store.DefaultMirrorInterval, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < store.MinMirrorInterval || d > store.MaxMirrorInterval {
		return 0, invalid("mirror.interval must be a duration between 1m and 24h, e.g. \"10m\"")
	}
	return d, nil
}

// FormatInterval writes d as ParseInterval reads it (store.FormatInterval).
func FormatInterval(d time.Duration) string { return store.FormatInterval(d) }

// Metrics are the mirrors' Prometheus collectors.
type Metrics struct {
	syncs    *prometheus.CounterVec
	duration prometheus.Histogram
	webhooks *prometheus.CounterVec
	fetches  prometheus.Counter
}

// NewMetrics makes the collectors and registers them with reg (unless nil).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		syncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitserver_mirror_syncs_total",
			Help: "Mirror syncs, by result (ok or the error code).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "gitserver_mirror_sync_duration_seconds",
			Help:    "Wall time of mirror syncs.",
			Buckets: prometheus.ExponentialBuckets(0.05, 2.5, 10),
		}),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gitserver_mirror_webhooks_total",
			Help: "Inbound webhook deliveries, by result (accepted, duplicate, ping, ignored, unknown_hook, no_signature, bad_signature, too_large, malformed).",
		}, []string{"result"}),
		fetches: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "gitserver_mirror_fetches_total",
			Help: "git fetch runs of mirror syncs (a sync whose ref check shows nothing new fetches nothing).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.syncs, m.duration, m.webhooks, m.fetches)
	}
	return m
}

// recoverSyncing returns mirrors left "syncing" by a process that stopped
// mid-sync to "ok", due now. With Locks, only those whose sync lock is free
// (no live node is syncing them); without, every one (at start-up: this
// process is the only one).
func (e *Engine) recoverSyncing(ctx context.Context) {
	ms, err := e.Store.Mirrors(ctx)
	if err != nil {
		return
	}
	for _, m := range ms {
		if m.Status != store.MirrorSyncing {
			continue
		}
		if e.Locks != nil {
			release, ok, err := e.Locks.TryLock(ctx, syncLockKey(m.RepoID))
			if err != nil || !ok {
				continue
			}
			e.Store.UpdateMirror(ctx, m.RepoID, store.MirrorUpdate{From: store.MirrorSyncing, Status: store.MirrorOK, NextSyncAt: e.Store.Now()})
			release()
			continue
		}
		e.Store.UpdateMirror(ctx, m.RepoID, store.MirrorUpdate{From: store.MirrorSyncing, Status: store.MirrorOK, NextSyncAt: e.Store.Now()})
	}
}

func syncLockKey(repoID int64) string { return "mirror-sync:" + strconv.FormatInt(repoID, 10) }

// syncLock waits (until ctx ends) for the sync lock of repoID, held by
// whichever node syncs it.
func (e *Engine) syncLock(ctx context.Context, repoID int64) (release func(), err error) {
	for {
		release, ok, err := e.Locks.TryLock(ctx, syncLockKey(repoID))
		if err != nil {
			return nil, err
		}
		if ok {
			return release, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
