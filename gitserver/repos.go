package gitserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"gitserver/hooks"
	"gitserver/store"
)

// Repos manages repository directories under Root.
type Repos struct {
	Root string
	Git  *Git
	// Log receives trash-sweeping messages (nil: the Maintainer's logger
	// once it started, else slog's default).
	Log *slog.Logger
	// SharedLockAge, when not zero, says that other nodes' git processes
	// use the same repositories (a shared --repos-dir): a lock file is
	// then stale, and removed, only once older than SharedLockAge (git
	// holds a ref lock for milliseconds), and a push's quarantine only
	// once older than a day; SweepStaleLocks runs the same removal
	// periodically, since a node killed mid-push leaves its locks to the
	// others.
	SharedLockAge time.Duration

	// removeAll removes a trash entry (os.RemoveAll; tests inject
	// failures, which chmod cannot cause for root).
	removeAll func(string) error

	mu        sync.Mutex
	onDelete  []func(store.Repo)
	trashFail map[string]bool // trash entries whose failed removal was logged
}

// TrashDir is where deleted repositories wait for their removal: inside
// Root, so that moving one there is a rename on the same filesystem.
func (rs *Repos) TrashDir() string { return filepath.Join(rs.Root, ".trash") }

// OnDelete registers fn, called with every repository whose directory
// Delete moved to the trash, before its files are removed (the Maintainer
// cancels its work on it).
func (rs *Repos) OnDelete(fn func(store.Repo)) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	rs.onDelete = append(rs.onDelete, fn)
}

func (rs *Repos) log() *slog.Logger {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.Log != nil {
		return rs.Log
	}
	return slog.Default()
}

// setLogIfNil gives Repos a logger when cmd did not.
func (rs *Repos) setLogIfNil(l *slog.Logger) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	if rs.Log == nil {
		rs.Log = l
	}
}

// Dir is the directory of repo: <root>/<id>.git. Only the numeric id goes
// into the path.
func (rs *Repos) Dir(r store.Repo) string {
	return filepath.Join(rs.Root, strconv.FormatInt(r.ID, 10)+".git")
}

// Init creates the bare repository for r (idempotent).
func (rs *Repos) Init(ctx context.Context, r store.Repo) error {
	dir := rs.Dir(r)
	if _, err := os.Stat(filepath.Join(dir, "HEAD")); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(rs.Root, ".init-*")
	if err != nil {
		return fmt.Errorf("init repo: %w", err)
	}
	defer os.RemoveAll(tmp)
	if _, err := rs.Git.Output(ctx, tmp, "init", "--bare", "--quiet", "--initial-branch="+r.DefaultBranch, "."); err != nil {
		return fmt.Errorf("init repo: %w", err)
	}
	// Bitmaps and the commit-graph are written by the Maintainer (its
	// settings are on its command line, so older repositories get them too).
	for _, kv := range [][2]string{
		{"gc.auto", "0"}, // maintenance is the server's job, not a side effect of pushes
		{"receive.autogc", "false"},
		{"gitserver.id", strconv.FormatInt(r.ID, 10)},
	} {
		if _, err := rs.Git.Output(ctx, tmp, "config", kv[0], kv[1]); err != nil {
			return fmt.Errorf("init repo: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("init repo: %w", err)
	}
	return nil
}

// Delete deletes repository r: its directory is renamed into the trash,
// then deleteRows deletes its rows, then the trash entry is removed. If the
// rename fails, nothing is deleted and the error says so; if deleteRows
// fails, the directory is moved back. A trash entry that cannot be removed
// now is logged (once) and removed by a later SweepTrash, so a deleted
// repository never leaves an orphaned directory behind.
func (rs *Repos) Delete(ctx context.Context, r store.Repo, deleteRows func(context.Context) error) error {
	dir := rs.Dir(r)
	trashed := filepath.Join(rs.TrashDir(), strconv.FormatInt(r.ID, 10)+".git-"+store.RandomHex(4))
	moved := true
	if err := os.Mkdir(rs.TrashDir(), 0o750); err != nil && !os.IsExist(err) {
		return fmt.Errorf("repository directory could not be moved to the trash (nothing was deleted): %w", err)
	}
	if err := os.Rename(dir, trashed); err != nil {
		if _, serr := os.Lstat(dir); !os.IsNotExist(serr) {
			return fmt.Errorf("repository directory could not be moved to the trash (nothing was deleted): %w", err)
		}
		moved = false // no directory: only the rows are left to delete
	}
	if err := deleteRows(ctx); err != nil {
		if moved {
			if rerr := os.Rename(trashed, dir); rerr != nil {
				return errors.Join(err, fmt.Errorf("restore repository directory from %s: %w", trashed, rerr))
			}
		}
		return err
	}
	rs.mu.Lock()
	listeners := slices.Clone(rs.onDelete)
	rs.mu.Unlock()
	for _, fn := range listeners {
		fn(r)
	}
	if moved {
		rs.removeTrashEntry(filepath.Base(trashed))
	}
	return nil
}

// removeTrashEntry removes one entry of the trash, logging a failure once
// per entry (it is retried by every sweep).
func (rs *Repos) removeTrashEntry(name string) bool {
	removeAll := rs.removeAll
	if removeAll == nil {
		removeAll = os.RemoveAll
	}
	err := removeAll(filepath.Join(rs.TrashDir(), name))
	rs.mu.Lock()
	logged := rs.trashFail[name]
	if err != nil && !logged {
		if rs.trashFail == nil {
			rs.trashFail = map[string]bool{}
		}
		rs.trashFail[name] = true
	}
	if err == nil {
		delete(rs.trashFail, name)
	}
	rs.mu.Unlock()
	switch {
	case err != nil && !logged:
		rs.log().Warn("deleted repository's directory could not be removed yet; retrying in the background",
			"path", filepath.Join(rs.TrashDir(), name), "err", err)
	case err == nil && logged:
		rs.log().Info("deleted repository's directory removed", "path", filepath.Join(rs.TrashDir(), name))
	}
	return err == nil
}

// SweepTrash removes what deleted repositories left behind: every entry of
// the trash (a removal that failed before), and the temporary directories of
// older versions and interrupted inits. It runs at start-up and
// periodically (Maintainer.Start).
func (rs *Repos) SweepTrash() {
	entries, _ := os.ReadDir(rs.Root)
	for _, e := range entries {
		// .init-*: an Init that crashed; .deleted-*: the trash of older
		// versions, directly in Root.
		if strings.HasPrefix(e.Name(), ".init-") || strings.HasPrefix(e.Name(), ".deleted-") {
			os.RemoveAll(filepath.Join(rs.Root, e.Name()))
		}
	}
	trash, _ := os.ReadDir(rs.TrashDir())
	for _, e := range trash {
		rs.removeTrashEntry(e.Name())
	}
}

// PinRef is the hidden ref that keeps a published commit reachable.
func PinRef(commit string) string { return hooks.ReservedPrefix + "pins/" + commit }

// Pin keeps commit reachable forever under a hidden ref that clients can
// neither see nor push.
func (rs *Repos) Pin(ctx context.Context, r store.Repo, commit string) error {
	if !store.ValidObjectID(commit) {
		return fmt.Errorf("pin: bad commit id")
	}
	_, err := rs.Git.Output(ctx, rs.Dir(r), "update-ref", PinRef(commit), commit)
	return err
}

// SetHead points r's HEAD (what a clone checks out) at refs/heads/branch.
// When r has branches, branch must be one of them (ErrInvalid otherwise);
// an empty repository takes any valid name (its first push creates it).
func (rs *Repos) SetHead(ctx context.Context, r store.Repo, branch string) error {
	if p := store.BranchNameProblem(branch); p != "" {
		return store.Errorf(store.ErrInvalid, "default_branch %q is not a valid branch name: %s", store.Truncate(branch, 100), p)
	}
	dir := rs.Dir(r)
	heads, err := rs.Git.Output(ctx, dir, "for-each-ref", "--count=1", "--format=%(refname)", "refs/heads/")
	if err != nil {
		return fmt.Errorf("set HEAD: %w", err)
	}
	if heads != "" {
		if _, err := rs.Git.Output(ctx, dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+branch+"^{commit}"); err != nil {
			return store.Errorf(store.ErrInvalid, "%s has no branch %q", r.FullName(), store.Truncate(branch, 100))
		}
	}
	if _, err := rs.Git.Output(ctx, dir, "symbolic-ref", "HEAD", "refs/heads/"+branch); err != nil {
		return fmt.Errorf("set HEAD: %w", err)
	}
	return nil
}

// EnsureAll makes sure every stored repository has its directory and its
// published commits pinned; it runs at start-up and repairs a crash between
// a store write and the matching disk change. Leftover temporary
// directories are removed.
func (rs *Repos) EnsureAll(ctx context.Context, s store.Store) error {
	if err := os.MkdirAll(rs.Root, 0o750); err != nil {
		return err
	}
	rs.SweepTrash()
	if err := os.Mkdir(rs.TrashDir(), 0o750); err != nil && !os.IsExist(err) {
		return fmt.Errorf("trash for deleted repositories: %w", err)
	}
	repos, err := s.Repos(ctx)
	if err != nil {
		return err
	}
	for _, r := range repos {
		removeStaleLocks(rs.Dir(r), rs.SharedLockAge)
		if err := rs.Init(ctx, r); err != nil {
			return fmt.Errorf("%s: %w", r.FullName(), err)
		}
		pins, err := s.PinnedCommits(ctx, r.ID)
		if err != nil {
			return err
		}
		for _, c := range pins {
			if err := rs.Pin(ctx, r, c); err != nil {
				return fmt.Errorf("%s: %w", r.FullName(), err)
			}
		}
	}
	return nil
}

// InstallHooks installs the hooks git runs (via core.hooksPath) into dir:
// symbolic links to the server binary, which recognizes its hook by the
// name it was started as (cmd/gitserver's main). git then starts the
// binary itself, without a shell in between (issue 15: one process less
// per hook, twice per push). They are rewritten at every start: a moved or
// upgraded binary never breaks pushes.
func InstallHooks(dir, binary string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("install hooks: %w", err)
	}
	for _, name := range HookNames {
		tmp := filepath.Join(dir, "."+name+".new")
		os.Remove(tmp)
		if err := os.Symlink(binary, tmp); err != nil {
			return fmt.Errorf("install hooks: %w", err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
			os.Remove(tmp)
			return fmt.Errorf("install hooks: %w", err)
		}
	}
	return nil
}

// HookNames are the hooks InstallHooks installs.
var HookNames = []string{"pre-receive", "post-receive"}

// isQuarantine reports whether name (an entry of objects/) is a push's
// quarantine directory: "tmp_objdir-incoming-XXXXXX" since git 2.13's
// tmp-objdir (observed with git 2.39), "incoming-XXXXXX" in older gits.
func isQuarantine(name string) bool {
	return strings.HasPrefix(name, "tmp_objdir-incoming-") || strings.HasPrefix(name, "incoming-")
}

// removeStaleLocks deletes what a git process killed mid-push leaves
// behind: ref lock files (which would refuse every later update of that
// ref) and quarantine directories. With age 0 it runs only at start-up,
// before any git process of this server exists; git children die with a
// previous server (see procAttr), so every lock found then is stale. With
// age > 0 (Repos.SharedLockAge) other nodes may be pushing: only locks older
// than age, and quarantines older than a day, are stale.
func removeStaleLocks(dir string, age time.Duration) {
	now := time.Now()
	old := func(path string, limit time.Duration) bool {
		if age == 0 {
			return true
		}
		fi, err := os.Lstat(path)
		return err == nil && now.Sub(fi.ModTime()) > limit
	}
	for _, f := range []string{"packed-refs.lock", "HEAD.lock", "config.lock", "shallow.lock"} {
		if p := filepath.Join(dir, f); old(p, age) {
			os.Remove(p)
		}
	}
	filepath.WalkDir(filepath.Join(dir, "refs"), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".lock") && old(path, age) {
			os.Remove(path)
		}
		return nil
	})
	if entries, err := os.ReadDir(filepath.Join(dir, "objects")); err == nil {
		for _, e := range entries {
			if p := filepath.Join(dir, "objects", e.Name()); e.IsDir() && isQuarantine(e.Name()) && old(p, 24*time.Hour) {
				os.RemoveAll(p)
			}
		}
	}
}

// SweepStaleLocks removes the stale locks (SharedLockAge) of every stored
// repository; serve runs it periodically when the repositories are shared.
func (rs *Repos) SweepStaleLocks(ctx context.Context, s store.Store) error {
	if rs.SharedLockAge == 0 {
		return nil
	}
	repos, err := s.Repos(ctx)
	if err != nil {
		return err
	}
	for _, r := range repos {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		removeStaleLocks(rs.Dir(r), rs.SharedLockAge)
	}
	return nil
}
