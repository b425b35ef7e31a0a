package gitserver

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"gitserver/store"
)

// Maintainer keeps repositories packed with a reachability bitmap and a
// commit-graph, which makes serving a clone several times cheaper (see
// docs/benchmarks.md). Work is scheduled after pushes, debounced per
// repository, and runs in the background with bounded concurrency: it never
// blocks a push or a clone.
//
// The job is `git gc --cruft --prune=2.weeks.ago` with bitmaps and the
// commit-graph enabled: a full `repack -d` into one pack with a bitmap,
// unreachable objects kept in a cruft pack for two weeks (never
// --prune=now, which could delete objects an in-flight push is about to
// reference), packed refs, and `commit-graph write --reachable`. git's own
// locking (gc.pid, pack renames, ref locks) makes it safe next to clones and
// pushes.
//
// A full repack rewrites every object; on a large repository with many
// pushes that is minutes of CPU per push burst. So once a repository has
// had its full gc (and its bitmap), later runs are geometric (issue 15):
// `git repack --geometric=2 -d --write-midx --write-bitmap-index` rolls the
// small packs of recent pushes (and loose objects) into packs of
// geometrically growing sizes, leaving the big pack alone, and writes a
// multi-pack index with a multi-pack bitmap; the commit-graph grows by
// split layers and loose refs are packed. A full gc still runs FullEvery
// (it is what prunes, through the cruft pack).
type Maintainer struct {
	Git   *Git
	Repos *Repos
	Log   *slog.Logger
	// Delay debounces pushes: a repository is maintained Delay after its
	// last push, but at most MaxDelay after the first unserved one.
	Delay, MaxDelay time.Duration
	// Concurrency bounds simultaneous jobs (default 1).
	Concurrency int
	// Timeout bounds one job (default 1h).
	Timeout time.Duration
	// FullEvery is how often a repository gets the full gc even though it
	// has a bitmap (default 24h); in between, runs are geometric. < 0:
	// always full.
	FullEvery time.Duration
	// TrashSweep is how often Start's background loop retries removing
	// deleted repositories' directories (default 10 minutes).
	TrashSweep time.Duration

	mu     sync.Mutex
	jobs   map[int64]*maintJob
	sem    chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed bool
	// Locks, if set (several nodes share the repositories), makes a
	// repository's maintenance run on one node at a time: a node that
	// finds it running elsewhere tries again after Delay.
	Locks store.Locker

	// OnDone, if set, is called after every job (tests).
	OnDone func(r store.Repo, err error)
}

type maintJob struct {
	repo    store.Repo
	first   time.Time // first schedule not yet served
	timer   *time.Timer
	gen     int
	running bool
	again   bool
	cancel  context.CancelFunc // of the running job
	done    chan struct{}      // closed when the running job ends
}

// errRepoGone: the repository's directory no longer exists (deleted).
var errRepoGone = errors.New("repository deleted")

// ErrMaintainedElsewhere: another node holds the repository's maintenance
// lock (Maintainer.Locks); the job is tried again after Delay.
var ErrMaintainedElsewhere = errors.New("repository maintenance running on another node")

func (m *Maintainer) init() {
	if m.jobs != nil {
		return
	}
	m.jobs = map[int64]*maintJob{}
	n := m.Concurrency
	if n <= 0 {
		n = 1
	}
	m.sem = make(chan struct{}, n)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	if m.Delay <= 0 {
		m.Delay = 30 * time.Second
	}
	if m.MaxDelay < m.Delay {
		m.MaxDelay = max(5*time.Minute, m.Delay)
	}
	if m.Timeout <= 0 {
		m.Timeout = time.Hour
	}
	if m.Log == nil {
		m.Log = slog.New(slog.DiscardHandler)
	}
	if m.TrashSweep <= 0 {
		m.TrashSweep = 10 * time.Minute
	}
	if m.Repos != nil {
		m.Repos.OnDelete(m.Forget)
	}
}

// Forget cancels r's maintenance: a scheduled job is dropped, a running one
// is stopped and waited for. Repos.Delete calls it once r's directory is in
// the trash, so no git runs in a deleted repository.
func (m *Maintainer) Forget(r store.Repo) {
	m.mu.Lock()
	m.init()
	j := m.jobs[r.ID]
	if j == nil {
		m.mu.Unlock()
		return
	}
	if j.timer != nil {
		j.timer.Stop()
		j.timer = nil
	}
	j.gen++ // a timer already firing finds itself stale
	j.again = false
	var done chan struct{}
	if j.running {
		j.cancel()
		done = j.done
	} else {
		delete(m.jobs, r.ID)
	}
	m.mu.Unlock()
	if done != nil {
		<-done
	}
}

// Schedule asks for r to be maintained after the debounce delay.
func (m *Maintainer) Schedule(r store.Repo) { m.scheduleAfter(r, -1) }

func (m *Maintainer) scheduleAfter(r store.Repo, delay time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.init()
	if m.closed {
		return
	}
	now := time.Now()
	j := m.jobs[r.ID]
	if j == nil {
		j = &maintJob{first: now}
		m.jobs[r.ID] = j
	}
	j.repo = r
	if j.running {
		j.again = true
		return
	}
	if delay < 0 {
		delay = min(m.Delay, time.Until(j.first.Add(m.MaxDelay)))
	}
	if j.timer != nil {
		j.timer.Stop()
	}
	j.gen++
	gen := j.gen
	j.timer = time.AfterFunc(max(delay, 0), func() { m.fire(r.ID, gen) })
}

func (m *Maintainer) fire(id int64, gen int) {
	m.mu.Lock()
	j := m.jobs[id]
	if m.closed || j == nil || j.gen != gen || j.running {
		m.mu.Unlock()
		return
	}
	j.running, j.timer = true, nil
	r := j.repo
	ctx, cancel := context.WithCancel(m.ctx)
	j.cancel, j.done = cancel, make(chan struct{})
	done := j.done
	m.wg.Add(1)
	m.mu.Unlock()
	defer m.wg.Done()
	defer close(done)
	defer cancel()

	var err error
	select {
	case m.sem <- struct{}{}:
		err = m.Run(ctx, r)
		<-m.sem
	case <-ctx.Done():
		err = ctx.Err()
	}
	if m.OnDone != nil {
		m.OnDone(r, err)
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	j.running = false
	if errors.Is(err, ErrMaintainedElsewhere) {
		// What this node was asked to maintain may postdate the other
		// node's run: once more, later.
		j.again = true
	}
	if j.again && !m.closed {
		j.again = false
		j.first = time.Now()
		j.gen++
		gen := j.gen
		j.timer = time.AfterFunc(m.Delay, func() { m.fire(id, gen) })
		return
	}
	delete(m.jobs, id)
}

// Run maintains r now, in the caller's goroutine.
func (m *Maintainer) Run(ctx context.Context, r store.Repo) error {
	m.mu.Lock()
	m.init()
	m.mu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, m.Timeout)
	defer cancel()
	dir := m.Repos.Dir(r)
	if _, err := os.Stat(dir); os.IsNotExist(err) {
		// Deleted after it was scheduled: nothing to do, nothing to
		// report (git would fail with a misleading "fork/exec
		// /usr/bin/git: no such file or directory" from the chdir).
		m.Log.Debug("repository maintenance skipped: repository deleted", "repo", r.FullName())
		return errRepoGone
	}
	if m.Locks != nil {
		release, ok, err := m.Locks.TryLock(ctx, "maintain:"+strconv.FormatInt(r.ID, 10))
		if err != nil {
			m.Log.Warn("repository maintenance: lock", "repo", r.FullName(), "err", err)
			return err
		}
		if !ok {
			m.Log.Debug("repository maintenance running on another node", "repo", r.FullName())
			return ErrMaintainedElsewhere
		}
		defer release()
	}
	start := time.Now()
	full := m.needsFull(dir)
	var err error
	if full {
		_, err = m.Git.Output(ctx, dir,
			"-c", "repack.writeBitmaps=true",
			"-c", "pack.writeBitmapHashCache=true",
			"-c", "gc.writeCommitGraph=true",
			"-c", "gc.autoDetach=false",
			"gc", "--quiet", "--cruft", "--prune=2.weeks.ago")
		if err == nil {
			err = touch(filepath.Join(dir, fullGCMarker))
		}
	} else {
		_, err = m.Git.Output(ctx, dir,
			"-c", "pack.writeBitmapHashCache=true",
			"repack", "--geometric=2", "-d", "--write-midx", "--write-bitmap-index", "-q")
		if err == nil {
			_, err = m.Git.Output(ctx, dir, "commit-graph", "write", "--reachable", "--split")
		}
		if err == nil {
			_, err = m.Git.Output(ctx, dir, "pack-refs", "--all")
		}
	}
	if err != nil {
		if _, serr := os.Stat(dir); os.IsNotExist(serr) {
			m.Log.Debug("repository maintenance stopped: repository deleted", "repo", r.FullName())
			return errRepoGone
		}
		if ctx.Err() == nil {
			m.Log.Warn("repository maintenance failed", "repo", r.FullName(), "err", err)
		}
		return err
	}
	m.Log.Info("repository maintained", "repo", r.FullName(), "full", full, "duration_ms", time.Since(start).Milliseconds())
	return nil
}

// fullGCMarker is touched in a repository after each full gc.
const fullGCMarker = "gitserver-full-gc"

// needsFull reports whether the repository at dir gets the full gc: it has
// no bitmap yet, or its last full gc is older than FullEvery.
func (m *Maintainer) needsFull(dir string) bool {
	every := m.FullEvery
	if every == 0 {
		every = 24 * time.Hour
	}
	if every < 0 || NeedsMaintenance(dir) {
		return true
	}
	st, err := os.Stat(filepath.Join(dir, fullGCMarker))
	return err != nil || time.Since(st.ModTime()) >= every
}

func touch(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o640)
	if err != nil {
		return err
	}
	f.Close()
	now := time.Now()
	return os.Chtimes(path, now, now)
}

// Start schedules, shortly after start-up, every repository that has
// objects but no bitmap yet (created before maintenance existed, or whose
// last maintenance was interrupted).
func (m *Maintainer) Start(ctx context.Context, s store.Store) error {
	m.mu.Lock()
	m.init()
	closed := m.closed
	if !closed {
		m.wg.Add(1)
	}
	m.mu.Unlock()
	if m.Repos != nil {
		m.Repos.setLogIfNil(m.Log)
	}
	if !closed {
		// Deleted repositories whose directory could not be removed at
		// once are retried here (and at every start, Repos.EnsureAll).
		go func() {
			defer m.wg.Done()
			t := time.NewTicker(m.TrashSweep)
			defer t.Stop()
			for {
				select {
				case <-m.ctx.Done():
					return
				case <-t.C:
					if m.Repos != nil {
						m.Repos.SweepTrash()
					}
				}
			}
		}()
	}
	repos, err := s.Repos(ctx)
	if err != nil {
		return err
	}
	for i, r := range repos {
		if NeedsMaintenance(m.Repos.Dir(r)) {
			m.scheduleAfter(r, 5*time.Second+time.Duration(i)*100*time.Millisecond)
		}
	}
	return nil
}

// NeedsMaintenance reports whether the repository in dir has objects but no
// reachability bitmap.
func NeedsMaintenance(dir string) bool {
	objects := filepath.Join(dir, "objects")
	if b, _ := filepath.Glob(filepath.Join(objects, "pack", "*.bitmap")); len(b) > 0 {
		return false
	}
	if p, _ := filepath.Glob(filepath.Join(objects, "pack", "*.pack")); len(p) > 0 {
		return true
	}
	loose, _ := filepath.Glob(filepath.Join(objects, "[0-9a-f][0-9a-f]"))
	for _, d := range loose {
		if entries, err := os.ReadDir(d); err == nil && len(entries) > 0 {
			return true
		}
	}
	return false
}

// Close stops scheduling, cancels running jobs (git's repack is safe to
// interrupt: new packs are renamed into place before old ones go) and waits
// for them.
func (m *Maintainer) Close() {
	m.mu.Lock()
	m.init()
	m.closed = true
	for _, j := range m.jobs {
		if j.timer != nil {
			j.timer.Stop()
		}
	}
	m.cancel()
	m.mu.Unlock()
	m.wg.Wait()
}
