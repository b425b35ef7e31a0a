package sqlcore

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"gitserver/store"
)

const buildCols = `b.id, b.repo_id, a.name || '/' || r.name, b.branch, b.commit_id, b.previous_commit, b.commit_count,
	b.status, b.attempt, b.pushed_by, b.queued_at, b.started_at, b.finished_at, b.worker, b.message, b.log_url,
	b.lease_token, b.lease_expires_at`

const buildFrom = ` FROM builds b JOIN repos r ON r.id = b.repo_id JOIN accounts a ON a.id = r.owner_id `

func scanBuild(row scanner) (store.Build, error) {
	var b store.Build
	var q, st, fin, exp int64
	err := row.Scan(&b.ID, &b.RepoID, &b.Repo, &b.Branch, &b.Commit, &b.PreviousCommit, &b.CommitCount,
		&b.Status, &b.Attempt, &b.PushedBy, &q, &st, &fin, &b.Worker, &b.Message, &b.LogURL, &b.LeaseToken, &exp)
	if err != nil {
		return store.Build{}, err
	}
	b.QueuedAt, b.StartedAt, b.FinishedAt, b.LeaseExpiresAt = fromMicros(q), fromMicros(st), fromMicros(fin), fromMicros(exp)
	return b, nil
}

func buildByID(ctx context.Context, q querier, id int64) (store.Build, error) {
	b, err := scanBuild(q.QueryRowContext(ctx, `SELECT `+buildCols+buildFrom+`WHERE b.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Build{}, fmt.Errorf("%w: build %d", store.ErrNotFound, id)
	}
	if err != nil {
		return store.Build{}, fmt.Errorf("store: build: %w", err)
	}
	return b, nil
}

// BuildByID returns one build.
func (s *Core) BuildByID(ctx context.Context, id int64) (store.Build, error) {
	return buildByID(ctx, s.r, id)
}

// Builds lists a repository's builds, newest first, optionally only those in
// one status.
func (s *Core) Builds(ctx context.Context, repoID int64, status store.BuildStatus, limit int) ([]store.Build, error) {
	q := `SELECT ` + buildCols + buildFrom + `WHERE b.repo_id = ?`
	args := []any{repoID}
	if status != "" {
		q += ` AND b.status = ?`
		args = append(args, string(status))
	}
	q += ` ORDER BY b.id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: builds: %w", err)
	}
	defer rows.Close()
	out := []store.Build{}
	for rows.Next() {
		b, err := scanBuild(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// buildBase is BuildBase on q (the reader, or the enqueue's transaction),
// with the id of the repository's queued build (0 if none).
func buildBase(ctx context.Context, q querier, repoID int64, oldHead string) (base string, queuedID int64, err error) {
	err = q.QueryRowContext(ctx, `SELECT id, previous_commit FROM builds WHERE repo_id = ? AND status = 'queued'`, repoID).Scan(&queuedID, &base)
	if err == nil {
		return base, queuedID, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return "", 0, err
	}
	err = q.QueryRowContext(ctx, `SELECT commit_id FROM builds WHERE repo_id = ? AND status <> 'superseded' ORDER BY id DESC LIMIT 1`, repoID).Scan(&base)
	if errors.Is(err, sql.ErrNoRows) {
		return oldHead, 0, nil
	}
	if err != nil {
		return "", 0, err
	}
	return base, 0, nil
}

// BuildBase returns the commit a build queued now would follow.
func (s *Core) BuildBase(ctx context.Context, repoID int64, oldHead string) (string, error) {
	base, _, err := buildBase(ctx, s.r, repoID, oldHead)
	if err != nil {
		return "", fmt.Errorf("store: build base: %w", err)
	}
	return base, nil
}

// EnqueueBuild queues a build for nb.Commit unless one exists for that
// commit already (then it returns that build and false). A queued, unclaimed
// build of the same repository is superseded; the new build takes over its
// previous commit so that commit_count covers everything since the last
// build that ran.
//
// The database enforces both invariants: builds_one_per_commit (repo_id,
// commit_id) and builds_one_queued (repo_id WHERE status = 'queued'). The
// INSERT does nothing on either conflict; the transaction then tells "this
// commit has a build" (return it) from "another build was queued meanwhile"
// (ErrConflict, after a rollback).
func (s *Core) EnqueueBuild(ctx context.Context, nb store.NewBuild) (store.Build, bool, error) {
	if nb.CommitCount < 0 {
		return store.Build{}, false, fmt.Errorf("%w: negative commit count", store.ErrInvalid)
	}
	var id int64
	created := false
	err := s.tx(ctx, func(tx Q) error {
		id, created = 0, false
		err := tx.QueryRowContext(ctx, `SELECT id FROM builds WHERE repo_id = ? AND commit_id = ?`, nb.RepoID, nb.Commit).Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		// With no build at all the base is the caller's old head, which
		// is what nb.PreviousCommit then holds.
		base, queuedID, err := buildBase(ctx, tx, nb.RepoID, nb.PreviousCommit)
		if err != nil {
			return err
		}
		if base != nb.PreviousCommit {
			return fmt.Errorf("%w: the previous build of repository %d changed while the commits were counted", store.ErrConflict, nb.RepoID)
		}
		now := micros(s.now())
		if queuedID != 0 {
			res, err := tx.ExecContext(ctx, `UPDATE builds SET status = 'superseded', finished_at = ?, message = 'superseded by a newer push'
				WHERE id = ? AND status = 'queued' AND previous_commit = ?`, now, queuedID, base)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return fmt.Errorf("%w: the queued build %d was claimed meanwhile", store.ErrConflict, queuedID)
			}
		}
		err = tx.QueryRowContext(ctx, `INSERT INTO builds (repo_id, branch, commit_id, previous_commit, commit_count, status, attempt, pushed_by, queued_at)
			VALUES (?, ?, ?, ?, ?, 'queued', 1, ?, ?) ON CONFLICT DO NOTHING RETURNING id`,
			nb.RepoID, nb.Branch, nb.Commit, base, nb.CommitCount, nb.PushedBy, now).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			// A concurrent writer queued this commit, or another one.
			return errRetry
		}
		if s.e.IsForeignKey(err) {
			return fmt.Errorf("%w: repository %d", store.ErrNotFound, nb.RepoID)
		}
		if err != nil {
			return err
		}
		created = true
		// Delivered at commit to every node's listener, where the engine
		// has any.
		return s.e.BuildsChanged(ctx, tx)
	})
	if errors.Is(err, errRetry) {
		err = fmt.Errorf("%w: repository %d: builds were queued concurrently", store.ErrConflict, nb.RepoID)
	}
	if err != nil {
		return store.Build{}, false, wrapUnlessSentinel("enqueue build", err)
	}
	if created {
		s.e.Notify()
	}
	b, err := buildByID(ctx, s.w, id)
	return b, created, err
}

// HasBuildFor reports whether any build exists for commit in the repository.
func (s *Core) HasBuildFor(ctx context.Context, repoID int64, commit string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM builds WHERE repo_id = ? AND commit_id = ?`, repoID, commit).Scan(&n)
	return n > 0, err
}

// expireLeases returns running builds whose lease ran out to the queue
// (attempt + 1) or fails them after MaxAttempts. It reports how many went
// back to the queue. Every update repeats the expiry condition, so a build
// that another writer expired, heartbeated or completed meanwhile is left
// alone.
func (s *Core) expireLeases(ctx context.Context, tx Q) (int, error) {
	now := micros(s.now())
	rows, err := tx.QueryContext(ctx, `SELECT id, repo_id, attempt, previous_commit, commit_count FROM builds WHERE status = 'running' AND lease_expires_at < ?`, now)
	if err != nil {
		return 0, err
	}
	type exp struct {
		id, repo       int64
		attempt, count int
		prev           string
	}
	var list []exp
	for rows.Next() {
		var e exp
		if err := rows.Scan(&e.id, &e.repo, &e.attempt, &e.prev, &e.count); err != nil {
			rows.Close()
			return 0, err
		}
		list = append(list, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	const expired = ` AND status = 'running' AND lease_expires_at < ?`
	requeued := 0
	for _, e := range list {
		if e.attempt >= store.MaxAttempts {
			_, err := tx.ExecContext(ctx, `UPDATE builds SET status = 'failed', finished_at = ?, lease_token = '', clone_token_hash = '',
				message = 'lease expired on attempt ' || attempt || '; giving up after ' || CAST(? AS BIGINT) || ' attempts' WHERE id = ?`+expired,
				now, store.MaxAttempts, e.id, now)
			if err != nil {
				return 0, err
			}
			continue
		}
		var newer int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM builds WHERE repo_id = ? AND status = 'queued'`, e.repo).Scan(&newer)
		if err == nil {
			// A newer push is already queued: fold this build into it.
			res, err := tx.ExecContext(ctx, `UPDATE builds SET status = 'superseded', finished_at = ?, lease_token = '', clone_token_hash = '',
				message = 'lease expired; superseded by a newer queued build' WHERE id = ?`+expired, now, e.id, now)
			if err != nil {
				return 0, err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			res, err = tx.ExecContext(ctx, `UPDATE builds SET previous_commit = ?, commit_count = commit_count + ? WHERE id = ? AND status = 'queued'`, e.prev, e.count, newer)
			if err != nil {
				return 0, err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return 0, errRetry // the newer build was claimed meanwhile
			}
			continue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		res, err := tx.ExecContext(ctx, `UPDATE builds SET status = 'queued', attempt = attempt + 1, lease_token = '', clone_token_hash = '',
			lease_expires_at = 0, worker = '', message = 'lease expired; re-queued' WHERE id = ?`+expired, e.id, now)
		if s.e.IsUnique(err) {
			return 0, errRetry // a newer build was queued meanwhile
		}
		if err != nil {
			return 0, err
		}
		if n, _ := res.RowsAffected(); n > 0 {
			requeued++
		}
	}
	return requeued, nil
}

// ExpireLeases runs lease expiry now (the server calls it periodically).
func (s *Core) ExpireLeases(ctx context.Context) (int, error) {
	var n int
	err := s.e.QueueTx(ctx, func(tx Q) error {
		var err error
		n, err = s.expireLeases(ctx, tx)
		if err == nil && n > 0 {
			err = s.e.BuildsChanged(ctx, tx)
		}
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: expire leases: %w", err)
	}
	if n > 0 {
		s.e.Notify()
	}
	return n, nil
}

// ClaimBuild hands the oldest queued build to worker with a lease and a
// fresh clone token (Build.CloneToken, see CheckCloneToken). It returns
// ErrNotFound when nothing is queued. The claim's UPDATE repeats
// status = 'queued': when another claimer took the build first it changes
// no row, and the next queued build is tried.
func (s *Core) ClaimBuild(ctx context.Context, worker string, lease time.Duration) (store.Build, error) {
	var id int64
	cloneToken := store.CloneTokenPrefix + base64.RawURLEncoding.EncodeToString(store.RandomBytes(30))
	requeued := 0
	err := s.e.QueueTx(ctx, func(tx Q) error {
		var err error
		if requeued, err = s.expireLeases(ctx, tx); err != nil {
			return err
		}
		if requeued > 0 {
			if err := s.e.BuildsChanged(ctx, tx); err != nil {
				return err
			}
		}
		for tries := 0; tries < 10; tries++ {
			// With SKIP LOCKED (where the engine has row locks), a build
			// another claimer is taking is not waited for; the next one is
			// taken instead.
			err = tx.QueryRowContext(ctx, `SELECT id FROM builds WHERE status = 'queued' ORDER BY queued_at, id LIMIT 1`+s.d.SkipLocked).Scan(&id)
			if errors.Is(err, sql.ErrNoRows) {
				return store.ErrNotFound
			}
			if err != nil {
				return err
			}
			now := s.now()
			res, err := tx.ExecContext(ctx, `UPDATE builds SET status = 'running', worker = ?, lease_token = ?, lease_expires_at = ?,
				lease_seconds = ?, started_at = ?, message = '', clone_token_hash = ? WHERE id = ? AND status = 'queued'`,
				worker, store.RandomHex(16), micros(now.Add(lease)), int64(lease/time.Second), micros(now), hashToken(cloneToken), id)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				return nil
			}
		}
		return errRetry
	})
	if requeued > 0 {
		s.e.Notify() // other waiting claimers may take what expiry re-queued
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Build{}, fmt.Errorf("%w: no queued build", store.ErrNotFound)
	}
	if err != nil {
		return store.Build{}, fmt.Errorf("store: claim build: %w", err)
	}
	b, err := buildByID(ctx, s.w, id)
	if err != nil {
		return store.Build{}, err
	}
	b.CloneToken = cloneToken
	return b, nil
}

// CheckCloneToken finds the build whose live lease the clone token secret
// belongs to: the build must be running and its lease not expired (a
// heartbeat extends both). Anything else is ErrBadCredentials.
func (s *Core) CheckCloneToken(ctx context.Context, secret string) (store.BuildGrant, error) {
	if !strings.HasPrefix(secret, store.CloneTokenPrefix) || len(secret) > 200 {
		return store.BuildGrant{}, store.ErrBadCredentials
	}
	var g store.BuildGrant
	err := s.r.QueryRowContext(ctx, `SELECT id, repo_id FROM builds
		WHERE clone_token_hash = ? AND status = 'running' AND lease_expires_at > ?`, hashToken(secret), micros(s.now())).
		Scan(&g.BuildID, &g.RepoID)
	if errors.Is(err, sql.ErrNoRows) {
		return store.BuildGrant{}, store.ErrBadCredentials
	}
	if err != nil {
		return store.BuildGrant{}, fmt.Errorf("store: check clone token: %w", err)
	}
	return g, nil
}

// LeaseGuard is the WHERE clause of every update under a lease: the build is
// running, under this (non-empty) token, and its lease has not run out.
const LeaseGuard = ` WHERE id = ? AND status = 'running' AND lease_token = ? AND lease_token <> '' AND lease_expires_at >= ?`

// Heartbeat extends a running build's lease by its original length.
func (s *Core) Heartbeat(ctx context.Context, id int64, token string) (store.Build, error) {
	return s.withLease(ctx, "heartbeat", id, token, func(tx Q, now int64) (sql.Result, error) {
		return tx.ExecContext(ctx, `UPDATE builds SET lease_expires_at = ? + lease_seconds * 1000000`+LeaseGuard, now, id, token, now)
	})
}

// CompleteBuild records a running build's result.
func (s *Core) CompleteBuild(ctx context.Context, id int64, token string, status store.BuildStatus, message, logURL string) (store.Build, error) {
	if status != store.BuildSucceeded && status != store.BuildFailed {
		return store.Build{}, fmt.Errorf("%w: status must be \"succeeded\" or \"failed\"", store.ErrInvalid)
	}
	return s.withLease(ctx, "complete build", id, token, func(tx Q, now int64) (sql.Result, error) {
		return tx.ExecContext(ctx, `UPDATE builds SET status = ?, message = ?, log_url = ?, finished_at = ?, lease_token = '', clone_token_hash = ''`+LeaseGuard,
			string(status), message, logURL, now, id, token, now)
	})
}

// withLease runs update (guarded by LeaseGuard) on build id in a write
// transaction, after expiring leases, and returns the build as that
// transaction left it (not as a later writer may have). When
// the guard matches no row the build is read to tell ErrNotFound from
// ErrConflict.
func (s *Core) withLease(ctx context.Context, op string, id int64, token string, update func(tx Q, now int64) (sql.Result, error)) (store.Build, error) {
	requeued := 0
	var out store.Build
	err := s.e.QueueTx(ctx, func(tx Q) error {
		var err error
		if requeued, err = s.expireLeases(ctx, tx); err != nil {
			return err
		}
		if requeued > 0 {
			if err := s.e.BuildsChanged(ctx, tx); err != nil {
				return err
			}
		}
		res, err := update(tx, micros(s.now()))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 1 {
			out, err = buildByID(ctx, tx, id)
			return err
		}
		b, err := buildByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if b.Status != store.BuildRunning {
			return fmt.Errorf("%w: build %d is %s, not running", store.ErrConflict, b.ID, b.Status)
		}
		return fmt.Errorf("%w: stale or wrong lease token for build %d", store.ErrConflict, b.ID)
	})
	if requeued > 0 && err == nil {
		s.e.Notify()
	}
	if err != nil {
		return store.Build{}, wrapUnlessSentinel(op, err)
	}
	return out, nil
}
