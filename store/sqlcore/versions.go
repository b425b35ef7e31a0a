package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"gitserver/store"
)

// Publish records a new version of a repository for a succeeded build. The
// caller pins the build's commit in the repository before calling.
//
// The database enforces what the reads check: versions_one_per_build
// (build_id) and UNIQUE (repo_id, major, minor, patch). A version number
// taken by a concurrent publish retries the transaction (the next number is
// read again); the build published concurrently is ErrConflict.
func (s *Core) Publish(ctx context.Context, repoID, buildID int64, bump, notes, by string, audit ...store.AuditEntry) (store.Version, error) {
	if _, _, _, err := store.NextVersion(0, 0, 0, bump); err != nil {
		return store.Version{}, err
	}
	if len(notes) > store.MaxReleaseNotes {
		return store.Version{}, fmt.Errorf("%w: release notes longer than 64 KiB", store.ErrInvalid)
	}
	var v store.Version
	err := s.tx(ctx, func(tx Q) error {
		b, err := buildByID(ctx, tx, buildID)
		if err != nil || b.RepoID != repoID {
			return fmt.Errorf("%w: build %d of this repository", store.ErrNotFound, buildID)
		}
		if b.Status != store.BuildSucceeded {
			return fmt.Errorf("%w: build %d is %s; only a succeeded build can be published", store.ErrConflict, buildID, b.Status)
		}
		var existing string
		err = tx.QueryRowContext(ctx, `SELECT major || '.' || minor || '.' || patch FROM versions WHERE build_id = ?`, buildID).Scan(&existing)
		if err == nil {
			return fmt.Errorf("%w: build %d is already published as %s", store.ErrConflict, buildID, existing)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var ma, mi, pa int
		err = tx.QueryRowContext(ctx, `SELECT major, minor, patch FROM versions WHERE repo_id = ? ORDER BY major DESC, minor DESC, patch DESC LIMIT 1`, repoID).Scan(&ma, &mi, &pa)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		ma, mi, pa, _ = store.NextVersion(ma, mi, pa, bump)
		now := s.now().UTC()
		var id int64
		err = tx.QueryRowContext(ctx, `INSERT INTO versions (repo_id, major, minor, patch, commit_id, build_id, release_notes, published_by, published_at)
			SELECT CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT) FROM builds WHERE id = ? AND repo_id = ? AND status = 'succeeded' RETURNING id`,
			repoID, ma, mi, pa, b.Commit, buildID, notes, by, micros(now), buildID, repoID).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) || s.e.IsUnique(err) {
			return errRetry // the build or the version number changed meanwhile: read again
		}
		if err != nil {
			return err
		}
		v = store.Version{ID: id, RepoID: repoID, Major: ma, Minor: mi, Patch: pa, Commit: b.Commit, BuildID: buildID,
			ReleaseNotes: notes, PublishedBy: by, PublishedAt: fromMicros(micros(now))}
		entries := make([]store.AuditEntry, len(audit))
		for i, e := range audit {
			e.Detail = strings.TrimSpace(v.String() + " " + e.Detail)
			entries[i] = e
		}
		return s.writeAudit(ctx, tx, entries)
	})
	if errors.Is(err, errRetry) {
		err = fmt.Errorf("%w: versions of repository %d were published concurrently", store.ErrConflict, repoID)
	}
	if err != nil {
		return store.Version{}, wrapUnlessSentinel("publish", err)
	}
	return v, nil
}

// Versions lists a repository's versions, newest first.
func (s *Core) Versions(ctx context.Context, repoID int64) ([]store.Version, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, repo_id, major, minor, patch, commit_id, build_id, release_notes, published_by, published_at
		FROM versions WHERE repo_id = ? ORDER BY major DESC, minor DESC, patch DESC`, repoID)
	if err != nil {
		return nil, fmt.Errorf("store: versions: %w", err)
	}
	defer rows.Close()
	out := []store.Version{}
	for rows.Next() {
		var v store.Version
		var at int64
		if err := rows.Scan(&v.ID, &v.RepoID, &v.Major, &v.Minor, &v.Patch, &v.Commit, &v.BuildID, &v.ReleaseNotes, &v.PublishedBy, &at); err != nil {
			return nil, err
		}
		v.PublishedAt = fromMicros(at)
		out = append(out, v)
	}
	return out, rows.Err()
}

// PinnedCommits lists every published commit of a repository (for
// re-pinning at start-up).
func (s *Core) PinnedCommits(ctx context.Context, repoID int64) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT DISTINCT commit_id FROM versions WHERE repo_id = ?`, repoID)
	if err != nil {
		return nil, fmt.Errorf("store: pinned commits: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
