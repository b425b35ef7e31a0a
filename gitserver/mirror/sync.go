package mirror

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gitserver/gitserver/packcache"
	"gitserver/store"
)

// Error codes of a failed sync (mirror.last_error.code, docs/api.md §9).
const (
	CodeHostKeyChanged = "host_key_changed"
	CodeAuthFailed     = "auth_failed"
	CodeUnreachable    = "unreachable"
	CodeNotFound       = "not_found"
	CodeFetchFailed    = "fetch_failed"
	CodeTooLarge       = "too_large"
	CodeInternal       = "internal"
)

// SyncError is a failed sync: a code and a message safe to show (no
// server path, no secret, no raw output of ssh or git).
type SyncError struct {
	Code, Message string
	// Detail is for the server's log only (ssh's and git's stderr, with
	// the temporary directory's path removed).
	Detail string
}

func (e *SyncError) Error() string { return e.Code + ": " + e.Message }

// classify turns a failed fetch's stderr into a SyncError.
func classify(stderr string, timedOut bool) *SyncError {
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(stderr, s) {
				return true
			}
		}
		return false
	}
	e := &SyncError{Detail: stderr}
	switch {
	case has(relayMarker):
		e.Code, e.Message = CodeTooLarge, "the upstream sent more than a push may bring (--max-push-mb); nothing was fetched"
	case has("REMOTE HOST IDENTIFICATION HAS CHANGED", "Host key verification failed", "No matching host key", "host key for"):
		e.Code, e.Message = CodeHostKeyChanged, "the upstream's SSH host key is not the one pinned when the mirror was created; nothing was fetched. If the upstream really changed its host key, re-create the mirror."
	case has("Permission denied (publickey", "Permission denied, please try again", "Authentication failed", "Too many authentication failures"):
		e.Code, e.Message = CodeAuthFailed, "the upstream refused the deploy key; add mirror.deploy_key to the upstream repository as a read-only deploy key"
	case timedOut || has("Could not resolve hostname", "Connection refused", "Connection timed out", "No route to host",
		"Network is unreachable", "Connection reset", "Connection closed by", "kex_exchange_identification", "Operation timed out", "Timeout, server"):
		e.Code, e.Message = CodeUnreachable, "the upstream could not be reached over SSH (connection refused, timed out or closed)"
	case has("not found", "does not appear to be a git repository", "does not exist", "Could not read from remote repository"):
		e.Code, e.Message = CodeNotFound, "the upstream has no such repository, or the deploy key cannot read it"
	default:
		e.Code, e.Message = CodeFetchFailed, "fetching from the upstream failed"
	}
	return e
}

// sshCommand is GIT_SSH_COMMAND for a sync: the system's OpenSSH with this
// repository's key only, no agent, no user or global configuration, and
// the pinned host keys. Paths are the sync's own temporary files (no
// quotes in them).
func sshCommand(ssh, keyFile, knownHosts string) string {
	return strings.Join([]string{
		ssh, "-F", "/dev/null", "-i", packcache.ShellQuote(keyFile),
		"-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + packcache.ShellQuote(knownHosts), "-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes", "-o", "UpdateHostKeys=no", "-o", "BatchMode=yes",
		"-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4",
	}, " ")
}

// credentials writes the deploy key (0600) and the pinned known_hosts into
// a new private directory; cleanup removes them.
func (e *Engine) credentials(m store.Mirror) (keyFile, knownHosts string, cleanup func(), err error) {
	dir, err := os.MkdirTemp(e.TempDir, "mirror-")
	if err != nil {
		return "", "", nil, err
	}
	cleanup = func() { os.RemoveAll(dir) }
	if err := os.Chmod(dir, 0o700); err != nil {
		cleanup()
		return "", "", nil, err
	}
	keyFile, knownHosts = filepath.Join(dir, "key"), filepath.Join(dir, "known_hosts")
	if err := os.WriteFile(keyFile, m.PrivateKey, 0o600); err != nil {
		cleanup()
		return "", "", nil, err
	}
	if err := os.WriteFile(knownHosts, []byte(m.KnownHosts), 0o600); err != nil {
		cleanup()
		return "", "", nil, err
	}
	return keyFile, knownHosts, cleanup, nil
}

// refs reads refs/heads and refs/tags of dir.
func (e *Engine) refs(ctx context.Context, dir string) (map[string]string, error) {
	out, err := e.Git.Output(ctx, dir, "for-each-ref", "--format=%(objectname) %(refname)", "refs/heads/", "refs/tags/")
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if id, ref, ok := strings.Cut(line, " "); ok {
			m[ref] = id
		}
	}
	return m, nil
}

// Sync fetches repository repoID's upstream now, records the result, and
// queues a build when the default branch moved (pushed_by pusher, else
// "mirror"). It returns the sync's error (a *SyncError for upstream
// failures), which the mirror's status also records.
func (e *Engine) Sync(ctx context.Context, repoID int64, pusher string) (err error) {
	start := time.Now()
	defer func() {
		result := "ok"
		var se *SyncError
		switch {
		case errors.As(err, &se):
			result = se.Code
		case err != nil:
			result = CodeInternal
		}
		e.metrics().syncs.WithLabelValues(result).Inc()
		e.metrics().duration.Observe(time.Since(start).Seconds())
	}()
	timeout := e.SyncTimeout
	if timeout <= 0 {
		timeout = 10 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	repo, err := e.Store.RepoByID(ctx, repoID)
	if err != nil {
		return err
	}
	if e.Locks != nil {
		release, err := e.syncLock(ctx, repoID)
		if err != nil {
			return fmt.Errorf("mirror sync lock: %w", err)
		}
		defer release()
	}
	m, err := e.Store.MirrorByRepo(ctx, repoID)
	if err != nil {
		return err
	}
	if _, err := e.Store.UpdateMirror(ctx, repoID, store.MirrorUpdate{Status: store.MirrorSyncing}); err != nil {
		return err
	}
	m = e.relocate(ctx, repo, m)
	res, syncErr := e.fetch(ctx, repo, m)
	rewrite, moved, oldHead := res.rewrite, res.moved, res.oldHead
	u := store.MirrorUpdate{Status: store.MirrorOK, Synced: true, Rewrite: rewrite, NextSyncAt: e.nextSync(m.Interval)}
	if syncErr == nil && res.defaultBranch != "" {
		u.DefaultBranch = res.defaultBranch
		repo.DefaultBranch = res.defaultBranch
		e.log().Info("upstream default branch changed", "repo", repo.FullName(), "default_branch", res.defaultBranch)
	}
	var se *SyncError
	switch {
	case errors.As(syncErr, &se):
		u.Status, u.ErrorCode, u.ErrorMessage = store.MirrorError, se.Code, se.Message
		e.log().Warn("mirror sync failed", "repo", repo.FullName(), "code", se.Code, "detail", se.Detail)
	case syncErr != nil:
		ref := store.RandomHex(6)
		u.Status, u.ErrorCode, u.ErrorMessage = store.MirrorError, CodeInternal, "internal error, reference "+ref
		e.log().Error("mirror sync failed", "repo", repo.FullName(), "err", syncErr, "reference", ref)
	}
	// The state is written even when ctx ended (a timed-out sync is an
	// error to show, not a sync left "syncing").
	wctx, wcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer wcancel()
	if _, err := e.Store.UpdateMirror(wctx, repoID, u); err != nil {
		return errors.Join(syncErr, err)
	}
	if syncErr != nil {
		return syncErr
	}
	if rewrite != "" {
		e.log().Warn("upstream rewrote history", "repo", repo.FullName(), "rewrite", rewrite)
	}
	if moved && e.Builds != nil {
		if pusher == "" {
			pusher = "mirror"
		}
		if _, _, err := e.Builds.EnsureHeadBuilt(wctx, repo, pusher, oldHead); err != nil {
			return fmt.Errorf("queue build: %w", err)
		}
	}
	if e.Maintainer != nil && (moved || rewrite != "") {
		e.Maintainer.Schedule(repo)
	}
	return nil
}

// nextSync is now plus the interval, give or take a tenth (jitter, so that
// mirrors created together do not poll together).
func (e *Engine) nextSync(interval time.Duration) time.Time {
	if interval <= 0 {
		interval = store.DefaultMirrorInterval
	}
	j := time.Duration(mrand.Int64N(int64(interval)/5+1)) - interval/10
	return e.Store.Now().Add(interval + j)
}

// fetchResult is what a fetch did.
type fetchResult struct {
	// rewrite describes the non-fast-forward updates ("" if none).
	rewrite string
	// moved: the default branch (the new one, if it changed) has a new
	// head; oldHead is its value before the sync.
	moved   bool
	oldHead string
	// defaultBranch is the upstream's default branch when it is not the
	// repository's any more ("" when unchanged).
	defaultBranch string
	// fetched: git fetch ran (false when the upstream's refs were ours already).
	fetched bool
}

// run runs git with the sync's SSH command; a failure is classified.
func (e *Engine) runGit(ctx context.Context, dir string, env []string, tmp string, stdout *bytes.Buffer, args ...string) error {
	cmd := e.Git.Command(ctx, dir, env, append([]string{"-c", "protocol.allow=never", "-c", "protocol.ssh.allow=always"}, args...)...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if stdout != nil {
		cmd.Stdout = stdout
	}
	if err := cmd.Run(); err != nil {
		stderr := strings.ReplaceAll(errb.String(), tmp, "<tmp>")
		if len(stderr) > 4000 {
			stderr = stderr[len(stderr)-4000:]
		}
		return classify(stderr, ctx.Err() != nil)
	}
	return nil
}

// fetch lists the upstream's refs (listRemote: one SSH connection in
// process, the ref advertisement only) and, unless they are what the repository has already, runs git
// fetch --prune of branches and tags into repo. It follows the
// upstream's default branch (HEAD) when that names another existing
// branch, and reports the rewrites it saw and whether the default branch
// moved.
func (e *Engine) fetch(ctx context.Context, repo store.Repo, m store.Mirror) (res fetchResult, err error) {
	dir := e.Repos.Dir(repo)
	before, err := e.refs(ctx, dir)
	if err != nil {
		return res, err
	}
	if e.PollHead != nil && m.SCMConfigID != 0 && m.Remote.DefaultBranch != "" && m.LastErrorCode == "" {
		head, ok, err := e.PollHead(ctx, m)
		switch {
		case err != nil:
			e.log().Warn("polling the remote default branch", "repo", repo.FullName(), "err", err)
		case ok && head != "" && before["refs/heads/"+m.Remote.DefaultBranch] == head:
			return res, nil // unchanged: no SSH round trip
		}
	}
	upstream, upHead, err := listRemote(ctx, m)
	if err != nil {
		return res, err
	}
	after := before
	if !maps.Equal(upstream, before) {
		keyFile, knownHosts, cleanup, err := e.credentials(m)
		if err != nil {
			return res, err
		}
		defer cleanup()
		ssh := e.SSH
		if ssh == "" {
			ssh = "ssh"
		}
		env := []string{
			"GIT_SSH_COMMAND=" + e.relay() + sshCommand(ssh, keyFile, knownHosts),
			"GIT_SSH_VARIANT=ssh",
		}
		tmp := filepath.Dir(keyFile)
		// Only refs/heads and refs/tags are fetched and pruned: the
		// server's own refs (refs/gitserver/pins/*) are never touched, so
		// a published version's commit stays reachable whatever the
		// upstream does.
		e.metrics().fetches.Inc()
		res.fetched = true
		// git has no size bound for fetches (receive.maxInputSize is for
		// pushes): the SSH command runs through the relay (RelayMain),
		// which stops the transfer past MaxFetchBytes; refs move only after
		// a complete pack, so a stopped fetch changes nothing, and the
		// partial pack it leaves is removed.
		packDir := filepath.Join(dir, "objects", "pack")
		before := tmpPacks(packDir)
		err = e.runGit(ctx, dir, env, tmp, nil,
			"-c", "transfer.fsckObjects=true", "-c", "fetch.writeCommitGraph=false",
			"fetch", "--prune", "--no-tags", "--no-write-fetch-head", "--no-auto-gc", "--quiet",
			"--", m.URL, "+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
		var se *SyncError
		if errors.As(err, &se) && se.Code == CodeTooLarge {
			removeNewPacks(packDir, before)
			se.Message = fmt.Sprintf("the upstream sent more than %d MB, the most a push may bring (--max-push-mb); nothing was fetched", e.MaxFetchBytes>>20)
		}
		if err != nil {
			return res, err
		}
		if after, err = e.refs(ctx, dir); err != nil {
			return res, err
		}
	}
	var rewrites []string
	for ref, old := range before {
		nu, ok := after[ref]
		if !ok || nu == old {
			continue
		}
		if _, err := e.Git.Output(ctx, dir, "merge-base", "--is-ancestor", old, nu); err != nil {
			name := strings.TrimPrefix(strings.TrimPrefix(ref, "refs/heads/"), "refs/")
			rewrites = append(rewrites, name+" "+old+".."+nu)
		}
	}
	branch := repo.DefaultBranch
	if upHead != "" && upHead != branch && after["refs/heads/"+upHead] != "" && store.ValidBranchName(upHead) {
		if _, err := e.Git.Output(ctx, dir, "symbolic-ref", "HEAD", "refs/heads/"+upHead); err != nil {
			return res, err
		}
		branch, res.defaultBranch = upHead, upHead
	}
	defRef := "refs/heads/" + branch
	res.oldHead = before[defRef]
	res.moved = after[defRef] != "" && (after[defRef] != res.oldHead || res.defaultBranch != "")
	if len(rewrites) > 0 {
		slices.Sort(rewrites)
		res.rewrite = e.Store.Now().UTC().Format(time.RFC3339) + " upstream rewrote history (not a fast-forward): " + strings.Join(rewrites, ", ")
	}
	return res, nil
}

// tmpPacks names the temporary pack files in packDir (index-pack's
// tmp_pack_*, still being written).
func tmpPacks(packDir string) map[string]bool {
	out := map[string]bool{}
	entries, _ := os.ReadDir(packDir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "tmp_pack_") {
			out[e.Name()] = true
		}
	}
	return out
}

// removeNewPacks removes the temporary packs (and their indexes) a stopped
// fetch left behind.
func removeNewPacks(packDir string, before map[string]bool) {
	entries, _ := os.ReadDir(packDir)
	for _, e := range entries {
		name := e.Name()
		if (strings.HasPrefix(name, "tmp_pack_") || strings.HasPrefix(name, "tmp_idx_")) && !before[name] {
			os.Remove(filepath.Join(packDir, name))
		}
	}
}

// relay is the prefix of GIT_SSH_COMMAND that bounds what a sync may
// download (RelayMain), or "" without a bound or a binary to run it.
func (e *Engine) relay() string {
	if e.MaxFetchBytes <= 0 || e.Self == "" {
		return ""
	}
	return packcache.ShellQuote(e.Self) + " hook ssh-relay " + strconv.FormatInt(e.MaxFetchBytes, 10) + " "
}

// relocate follows a provider-hosted mirror's remote to where it is now
// (Resolve) and records a move; anything that goes wrong is logged and m
// is returned unchanged.
func (e *Engine) relocate(ctx context.Context, repo store.Repo, m store.Mirror) store.Mirror {
	if e.Resolve == nil || m.SCMConfigID == 0 || m.Remote.ID == "" {
		return m
	}
	log := e.log().With("repo", repo.FullName(), "remote_id", m.Remote.ID)
	sshURL, remote, err := e.Resolve(ctx, m)
	if err != nil {
		log.Warn("looking up the remote repository by id", "err", err)
		return m
	}
	remote.ID, remote.UserID = m.Remote.ID, m.Remote.UserID
	url := ""
	if sshURL != "" && sshURL != m.URL {
		old, oerr := ParseURL(m.URL)
		nu, nerr := ParseURL(sshURL)
		switch {
		case oerr != nil || nerr != nil:
			log.Warn("the remote repository's new SSH URL is not usable", "url", sshURL, "err", nerr)
		case nu.KnownHostsName() != old.KnownHostsName():
			log.Warn("the remote repository moved to another SSH host; not followed (its host keys are not pinned)", "url", nu.URL)
		case nu.URL != m.URL:
			url = nu.URL
		}
	}
	if url == "" && remote == m.Remote {
		return m
	}
	detail := m.Remote.FullName + " -> " + remote.FullName
	if url != "" {
		detail += " (" + url + ")"
	}
	if err := e.Store.RelocateMirror(ctx, repo.ID, url, remote, store.AuditEntry{Actor: "mirror", Action: "repo.mirror.relocate", Target: repo.FullName(), Detail: detail}); err != nil {
		log.Error("recording the remote repository's move", "err", err)
		return m
	}
	log.Info("the remote repository moved", "detail", detail)
	if url != "" {
		m.URL = url
	}
	m.Remote = remote
	return m
}
