package hooks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"

	"gitserver/store"
)

// Trigger is the daemon side of post-receive: it turns a push of a
// repository's default branch into exactly one queued build of its head.
type Trigger struct {
	Store store.Store
	// Git runs git in dir and returns its trimmed stdout (the server's
	// runner, gitserver.Git.Output, with its clean environment).
	Git func(ctx context.Context, dir string, args ...string) (string, error)
	// RepoDir maps a repository to its directory on disk.
	RepoDir func(store.Repo) string
	Log     *slog.Logger
	// OnQueued, when set, is called for every newly queued build (the
	// optional build webhook).
	OnQueued func(store.Build)

	pushMu sync.Mutex
	pushes map[string]bool // TrackPush id -> post-receive reached us
}

// TrackPush registers one receive-pack run. Its id goes to the hooks
// (Env.PushID); refsUpdated, called once git has exited, reports whether
// post-receive told the daemon that git updated refs (git runs post-receive
// only then), and forgets the id. It is how a push is judged: by what git
// did to the refs, not by whether the client stayed to the end.
func (t *Trigger) TrackPush() (id string, refsUpdated func() bool) {
	id = store.RandomHex(16)
	t.pushMu.Lock()
	if t.pushes == nil {
		t.pushes = map[string]bool{}
	}
	t.pushes[id] = false
	t.pushMu.Unlock()
	return id, func() bool {
		t.pushMu.Lock()
		defer t.pushMu.Unlock()
		updated := t.pushes[id]
		delete(t.pushes, id)
		return updated
	}
}

// NoteRefsUpdated records that the post-receive hook of push id ran.
// Unknown ids (a push tracked by a previous daemon, or none) are ignored.
func (t *Trigger) NoteRefsUpdated(id string) {
	t.pushMu.Lock()
	defer t.pushMu.Unlock()
	if _, ok := t.pushes[id]; ok {
		t.pushes[id] = true
	}
}

// PostReceive handles the updates of one push.
func (t *Trigger) PostReceive(ctx context.Context, repoID int64, pusher string, updates []RefUpdate) ([]string, error) {
	repo, err := t.Store.RepoByID(ctx, repoID)
	if err != nil {
		return nil, err
	}
	return t.Received(ctx, repo, pusher, updates)
}

// Received is PostReceive for a repository the caller has read already
// (the hook-free push): it queues the build of a moved default branch and
// returns the lines for the pusher.
func (t *Trigger) Received(ctx context.Context, repo store.Repo, pusher string, updates []RefUpdate) ([]string, error) {
	defaultRef := "refs/heads/" + repo.DefaultBranch
	for _, u := range updates {
		if u.Ref != defaultRef || u.Deleted() {
			continue
		}
		b, created, err := t.Pushed(ctx, repo, pusher, u.Old, u.New)
		if err != nil {
			return nil, err
		}
		if created {
			return []string{fmt.Sprintf("gitserver: build %d queued for %s (%d commit(s))", b.ID, shortID(b.Commit), b.CommitCount)}, nil
		}
		return nil, nil
	}
	return nil, nil
}

// Pushed queues the build of a default-branch update old → new of repo
// (old all zeros or "" when the update created the branch): what
// post-receive does for each push, and what a Web IDE commit does after
// its ref update (gitserver.WebCommitter). created is false when new
// already had a build.
func (t *Trigger) Pushed(ctx context.Context, repo store.Repo, pusher, old, new string) (store.Build, bool, error) {
	if IsZero(old) {
		old = ""
	}
	return t.ensureHeadBuilt(ctx, repo, pusher, old, new)
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// EnsureHeadBuilt makes sure the current head of repo's default branch has a build,
// queuing one if not. oldHead is the branch's value before the push when
// known. It is idempotent: the post-receive hook, the daemon after each
// receive-pack and the start-up reconciliation all call it.
func (t *Trigger) EnsureHeadBuilt(ctx context.Context, repo store.Repo, pusher, oldHead string) (store.Build, bool, error) {
	return t.ensureHeadBuilt(ctx, repo, pusher, oldHead, "")
}

// ensureHeadBuilt is EnsureHeadBuilt for a known head commit (the new value of a pushed default
// branch); head "" reads the branch.
func (t *Trigger) ensureHeadBuilt(ctx context.Context, repo store.Repo, pusher, oldHead, head string) (store.Build, bool, error) {
	dir := t.RepoDir(repo)
	if head == "" {
		var err error
		head, err = t.Git(ctx, dir, "rev-parse", "--verify", "--quiet", "refs/heads/"+repo.DefaultBranch+"^{commit}")
		if err != nil || head == "" {
			return store.Build{}, false, nil // no default branch yet: nothing is owed
		}
	}
	if ok, err := t.Store.HasBuildFor(ctx, repo.ID, head); err != nil || ok {
		return store.Build{}, false, err
	}
	// Commits are counted outside the store's write transaction (no
	// subprocess holds the database); EnqueueBuild refuses with ErrConflict
	// when the base moved meanwhile, and the count is redone once.
	var b store.Build
	var created bool
	for attempt := 1; ; attempt++ {
		prev, err := t.Store.BuildBase(ctx, repo.ID, oldHead)
		if err != nil {
			return store.Build{}, false, err
		}
		count, err := t.countCommits(ctx, dir, prev, head)
		if err != nil {
			return store.Build{}, false, fmt.Errorf("count commits: %w", err)
		}
		b, created, err = t.Store.EnqueueBuild(ctx, store.NewBuild{
			RepoID: repo.ID, Branch: repo.DefaultBranch, Commit: head, PushedBy: pusher,
			PreviousCommit: prev, CommitCount: count,
		})
		if errors.Is(err, store.ErrConflict) && attempt < 2 {
			continue
		}
		if err != nil {
			return store.Build{}, false, err
		}
		break
	}
	if created {
		t.Log.Info("build queued", "build", b.ID, "repo", b.Repo, "commit", b.Commit, "commit_count", b.CommitCount, "pushed_by", pusher)
		if t.OnQueued != nil {
			t.OnQueued(b)
		}
	}
	return b, created, nil
}

// countCommits counts the commits in prev..head, or all of head's history
// when prev is "" or gone.
func (t *Trigger) countCommits(ctx context.Context, dir, prev, head string) (int, error) {
	out, err := "", errors.New("no previous commit")
	if prev != "" {
		out, err = t.Git(ctx, dir, "rev-list", "--count", head, "^"+prev)
	}
	if err != nil {
		// Nothing built before, or the previous commit is gone: the build
		// covers the whole history.
		if out, err = t.Git(ctx, dir, "rev-list", "--count", head); err != nil {
			return 0, err
		}
	}
	return strconv.Atoi(out)
}

// ReconcileAll queues every owed build (a default-branch head without a
// build), e.g. after a crash between a ref update and its enqueue.
func (t *Trigger) ReconcileAll(ctx context.Context) (int, error) {
	repos, err := t.Store.Repos(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	for _, r := range repos {
		_, created, err := t.EnsureHeadBuilt(ctx, r, "", "")
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.FullName(), err))
			continue
		}
		if created {
			n++
		}
	}
	return n, errors.Join(errs...)
}
