package store

import (
	"context"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Build statuses.
const (
	BuildQueued     = "queued"
	BuildRunning    = "running"
	BuildSucceeded  = "succeeded"
	BuildFailed     = "failed"
	BuildSuperseded = "superseded"
)

// MaxAttempts is how many leases a build gets before it is failed.
const MaxAttempts = 3

// Build is one build of a repository's default-branch head.
type Build struct {
	ID             int64
	RepoID         int64
	Repo           string // owner/name
	Branch         string
	Commit         string
	PreviousCommit string // last built commit (or the previous head); "" if none
	CommitCount    int    // commits in PreviousCommit..Commit
	Status         string
	Attempt        int
	PushedBy       string
	QueuedAt       time.Time
	StartedAt      time.Time
	FinishedAt     time.Time
	Worker         string
	Message        string
	LogURL         string
	LeaseToken     string
	LeaseExpiresAt time.Time
	// CloneToken is the secret of the claim's clone token. Only ClaimBuild
	// sets it: the store keeps its SHA-256, never the secret.
	CloneToken string
}

const buildCols = `b.id, b.repo_id, a.name || '/' || r.name, b.branch, b.commit_id, b.previous_commit, b.commit_count,
	b.status, b.attempt, b.pushed_by, b.queued_at, b.started_at, b.finished_at, b.worker, b.message, b.log_url,
	b.lease_token, b.lease_expires_at`

const buildFrom = ` FROM builds b JOIN repos r ON r.id = b.repo_id JOIN accounts a ON a.id = r.owner_id `

func scanBuild(row interface{ Scan(...any) error }) (Build, error) {
	var b Build
	var q, st, fin, exp int64
	err := row.Scan(&b.ID, &b.RepoID, &b.Repo, &b.Branch, &b.Commit, &b.PreviousCommit, &b.CommitCount,
		&b.Status, &b.Attempt, &b.PushedBy, &q, &st, &fin, &b.Worker, &b.Message, &b.LogURL, &b.LeaseToken, &exp)
	if err != nil {
		return Build{}, err
	}
	b.QueuedAt, b.StartedAt, b.FinishedAt, b.LeaseExpiresAt = fromMicros(q), fromMicros(st), fromMicros(fin), fromMicros(exp)
	return b, nil
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

func buildByID(ctx context.Context, q querier, id int64) (Build, error) {
	b, err := scanBuild(q.QueryRowContext(ctx, `SELECT `+buildCols+buildFrom+`WHERE b.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Build{}, fmt.Errorf("%w: build %d", ErrNotFound, id)
	}
	if err != nil {
		return Build{}, fmt.Errorf("store: build: %w", err)
	}
	return b, nil
}

// BuildByID returns one build.
func (s *Store) BuildByID(ctx context.Context, id int64) (Build, error) {
	return buildByID(ctx, s.r, id)
}

// Builds lists a repository's builds, newest first, optionally only those in
// one status.
func (s *Store) Builds(ctx context.Context, repoID int64, status string, limit int) ([]Build, error) {
	q := `SELECT ` + buildCols + buildFrom + `WHERE b.repo_id = ?`
	args := []any{repoID}
	if status != "" {
		q += ` AND b.status = ?`
		args = append(args, status)
	}
	q += ` ORDER BY b.id DESC LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: builds: %w", err)
	}
	defer rows.Close()
	out := []Build{}
	for rows.Next() {
		b, err := scanBuild(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// ValidBuildStatus reports whether st is a build status.
func ValidBuildStatus(st string) bool {
	switch st {
	case BuildQueued, BuildRunning, BuildSucceeded, BuildFailed, BuildSuperseded:
		return true
	}
	return false
}

// NewBuild asks for a build of a repository's default-branch head.
type NewBuild struct {
	RepoID   int64
	Branch   string
	Commit   string
	PushedBy string
	// OldHead is the branch's value before the push ("" for a creation or
	// when unknown). It is the previous commit when nothing was built yet.
	OldHead string
	// Count returns the number of commits in prev..Commit (all commits
	// reachable from Commit when prev is ""). It runs inside the queue's
	// write transaction.
	Count func(prev string) (int, error)
}

// EnqueueBuild queues a build for nb.Commit unless one exists for that
// commit already (then it returns that build and false). A queued, unclaimed
// build of the same repository is superseded; the new build takes over its
// previous commit so that commit_count covers everything since the last
// build that ran.
func (s *Store) EnqueueBuild(ctx context.Context, nb NewBuild) (Build, bool, error) {
	var id int64
	created := false
	err := s.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT id FROM builds WHERE repo_id = ? AND commit_id = ? ORDER BY id DESC LIMIT 1`, nb.RepoID, nb.Commit).Scan(&id)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		prev := nb.OldHead
		var queuedID int64
		var queuedPrev string
		err = tx.QueryRowContext(ctx, `SELECT id, previous_commit FROM builds WHERE repo_id = ? AND status = 'queued'`, nb.RepoID).Scan(&queuedID, &queuedPrev)
		switch {
		case err == nil:
			prev = queuedPrev
		case errors.Is(err, sql.ErrNoRows):
			var last string
			err = tx.QueryRowContext(ctx, `SELECT commit_id FROM builds WHERE repo_id = ? AND status <> 'superseded' ORDER BY id DESC LIMIT 1`, nb.RepoID).Scan(&last)
			if err == nil {
				prev = last
			} else if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		default:
			return err
		}
		count := 1
		if nb.Count != nil {
			if count, err = nb.Count(prev); err != nil {
				return fmt.Errorf("count commits: %w", err)
			}
		}
		now := micros(s.now())
		if queuedID != 0 {
			if _, err := tx.ExecContext(ctx, `UPDATE builds SET status = 'superseded', finished_at = ?, message = 'superseded by a newer push' WHERE id = ?`, now, queuedID); err != nil {
				return err
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO builds (repo_id, branch, commit_id, previous_commit, commit_count, status, attempt, pushed_by, queued_at)
			VALUES (?, ?, ?, ?, ?, 'queued', 1, ?, ?)`, nb.RepoID, nb.Branch, nb.Commit, prev, count, nb.PushedBy, now)
		if err != nil {
			return err
		}
		id, _ = res.LastInsertId()
		created = true
		return nil
	})
	if err != nil {
		return Build{}, false, fmt.Errorf("store: enqueue build: %w", err)
	}
	if created {
		s.notify()
	}
	b, err := s.BuildByID(ctx, id)
	return b, created, err
}

// LastBuild returns a repository's newest build, or ErrNotFound.
func (s *Store) LastBuild(ctx context.Context, repoID int64) (Build, error) {
	b, err := scanBuild(s.r.QueryRowContext(ctx, `SELECT `+buildCols+buildFrom+`WHERE b.repo_id = ? ORDER BY b.id DESC LIMIT 1`, repoID))
	if errors.Is(err, sql.ErrNoRows) {
		return Build{}, fmt.Errorf("%w: no builds", ErrNotFound)
	}
	return b, err
}

// HasBuildFor reports whether any build exists for commit in the repository.
func (s *Store) HasBuildFor(ctx context.Context, repoID int64, commit string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM builds WHERE repo_id = ? AND commit_id = ?`, repoID, commit).Scan(&n)
	return n > 0, err
}

// expireLeases returns running builds whose lease ran out to the queue
// (attempt + 1) or fails them after MaxAttempts. It reports how many went
// back to the queue.
func (s *Store) expireLeases(ctx context.Context, tx *sql.Tx) (int, error) {
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
	requeued := 0
	for _, e := range list {
		if e.attempt >= MaxAttempts {
			_, err := tx.ExecContext(ctx, `UPDATE builds SET status = 'failed', finished_at = ?, lease_token = '', clone_token_hash = '',
				message = 'lease expired on attempt ' || attempt || '; giving up after ' || ? || ' attempts' WHERE id = ?`, now, MaxAttempts, e.id)
			if err != nil {
				return 0, err
			}
			continue
		}
		var newer int64
		err := tx.QueryRowContext(ctx, `SELECT id FROM builds WHERE repo_id = ? AND status = 'queued'`, e.repo).Scan(&newer)
		if err == nil {
			// A newer push is already queued: fold this build into it.
			if _, err := tx.ExecContext(ctx, `UPDATE builds SET previous_commit = ?, commit_count = commit_count + ? WHERE id = ?`, e.prev, e.count, newer); err != nil {
				return 0, err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE builds SET status = 'superseded', finished_at = ?, lease_token = '', clone_token_hash = '',
				message = 'lease expired; superseded by a newer queued build' WHERE id = ?`, now, e.id); err != nil {
				return 0, err
			}
			continue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE builds SET status = 'queued', attempt = attempt + 1, lease_token = '', clone_token_hash = '',
			lease_expires_at = 0, worker = '', message = 'lease expired; re-queued' WHERE id = ?`, e.id); err != nil {
			return 0, err
		}
		requeued++
	}
	return requeued, nil
}

// ExpireLeases runs lease expiry now (the server calls it periodically).
func (s *Store) ExpireLeases(ctx context.Context) (int, error) {
	var n int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		n, err = s.expireLeases(ctx, tx)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("store: expire leases: %w", err)
	}
	if n > 0 {
		s.notify()
	}
	return n, nil
}

// ClaimBuild hands the oldest queued build to worker with a lease and a
// fresh clone token (Build.CloneToken, see CheckCloneToken). It returns
// ErrNotFound when nothing is queued.
func (s *Store) ClaimBuild(ctx context.Context, worker string, lease time.Duration) (Build, error) {
	var id int64
	cloneToken := CloneTokenPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(30))
	requeued := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if requeued, err = s.expireLeases(ctx, tx); err != nil {
			return err
		}
		err = tx.QueryRowContext(ctx, `SELECT id FROM builds WHERE status = 'queued' ORDER BY queued_at, id LIMIT 1`).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		now := s.now()
		_, err = tx.ExecContext(ctx, `UPDATE builds SET status = 'running', worker = ?, lease_token = ?, lease_expires_at = ?,
			lease_seconds = ?, started_at = ?, message = '', clone_token_hash = ? WHERE id = ?`,
			worker, RandomHex(16), micros(now.Add(lease)), int64(lease/time.Second), micros(now), hashToken(cloneToken), id)
		return err
	})
	if requeued > 0 {
		s.notify() // other waiting claimers may take what expiry re-queued
	}
	if errors.Is(err, ErrNotFound) {
		return Build{}, fmt.Errorf("%w: no queued build", ErrNotFound)
	}
	if err != nil {
		return Build{}, fmt.Errorf("store: claim build: %w", err)
	}
	b, err := s.BuildByID(ctx, id)
	if err != nil {
		return Build{}, err
	}
	b.CloneToken = cloneToken
	return b, nil
}

// CloneTokenPrefix starts every clone token, so that authenticators can tell
// one from an account token (TokenPrefix) without a lookup, and secret
// scanners can recognise it.
const CloneTokenPrefix = "gsc_"

// CheckCloneToken finds the build whose live lease the clone token secret
// belongs to: the build must be running and its lease not expired (a
// heartbeat extends both). Anything else is ErrBadCredentials.
func (s *Store) CheckCloneToken(ctx context.Context, secret string) (BuildGrant, error) {
	if !strings.HasPrefix(secret, CloneTokenPrefix) || len(secret) > 200 {
		return BuildGrant{}, ErrBadCredentials
	}
	var g BuildGrant
	err := s.r.QueryRowContext(ctx, `SELECT id, repo_id FROM builds
		WHERE clone_token_hash = ? AND status = 'running' AND lease_expires_at > ?`, hashToken(secret), micros(s.now())).
		Scan(&g.BuildID, &g.RepoID)
	if errors.Is(err, sql.ErrNoRows) {
		return BuildGrant{}, ErrBadCredentials
	}
	if err != nil {
		return BuildGrant{}, fmt.Errorf("store: check clone token: %w", err)
	}
	return g, nil
}

func checkLease(b Build, token string) error {
	if b.Status != BuildRunning {
		return fmt.Errorf("%w: build %d is %s, not running", ErrConflict, b.ID, b.Status)
	}
	if token == "" || token != b.LeaseToken {
		return fmt.Errorf("%w: stale or wrong lease token for build %d", ErrConflict, b.ID)
	}
	return nil
}

// Heartbeat extends a running build's lease by its original length.
func (s *Store) Heartbeat(ctx context.Context, id int64, token string) (Build, error) {
	return s.withLease(ctx, "heartbeat", id, token, func(tx *sql.Tx, now int64) error {
		_, err := tx.ExecContext(ctx, `UPDATE builds SET lease_expires_at = ? + lease_seconds * 1000000 WHERE id = ?`, now, id)
		return err
	})
}

// CompleteBuild records a running build's result.
func (s *Store) CompleteBuild(ctx context.Context, id int64, token, status, message, logURL string) (Build, error) {
	if status != BuildSucceeded && status != BuildFailed {
		return Build{}, fmt.Errorf("%w: status must be \"succeeded\" or \"failed\"", ErrInvalid)
	}
	return s.withLease(ctx, "complete build", id, token, func(tx *sql.Tx, now int64) error {
		_, err := tx.ExecContext(ctx, `UPDATE builds SET status = ?, message = ?, log_url = ?, finished_at = ?, lease_token = '', clone_token_hash = '' WHERE id = ?`,
			status, message, logURL, now, id)
		return err
	})
}

// withLease runs update on build id in a write transaction, after expiring
// leases and checking that the build is running under token (ErrConflict
// otherwise), and returns the updated build.
func (s *Store) withLease(ctx context.Context, op string, id int64, token string, update func(tx *sql.Tx, now int64) error) (Build, error) {
	requeued := 0
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if requeued, err = s.expireLeases(ctx, tx); err != nil {
			return err
		}
		b, err := buildByID(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := checkLease(b, token); err != nil {
			return err
		}
		return update(tx, micros(s.now()))
	})
	if requeued > 0 && err == nil {
		s.notify()
	}
	if err != nil {
		return Build{}, wrapUnlessSentinel(op, err)
	}
	return s.BuildByID(ctx, id)
}

func wrapUnlessSentinel(op string, err error) error {
	for _, s := range []error{ErrNotFound, ErrConflict, ErrInvalid, ErrExists, ErrForbidden} {
		if errors.Is(err, s) {
			return err
		}
	}
	return fmt.Errorf("store: %s: %w", op, err)
}
