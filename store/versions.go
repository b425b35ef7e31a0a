package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Version is a published semantic version of a repository.
type Version struct {
	ID           int64
	RepoID       int64
	Major        int
	Minor        int
	Patch        int
	Commit       string
	BuildID      int64
	ReleaseNotes string
	PublishedBy  string
	PublishedAt  time.Time
}

// String is "MAJOR.MINOR.PATCH".
func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// Bump kinds.
const (
	BumpMajor = "major"
	BumpMinor = "minor"
	BumpPatch = "patch"
)

// NextVersion applies a bump to the latest version (0.0.0 when none).
func NextVersion(major, minor, patch int, bump string) (int, int, int, error) {
	switch bump {
	case BumpMajor:
		return major + 1, 0, 0, nil
	case BumpMinor:
		return major, minor + 1, 0, nil
	case BumpPatch:
		return major, minor, patch + 1, nil
	}
	return 0, 0, 0, Errorf(ErrInvalid, "bump must be \"major\", \"minor\" or \"patch\"")
}

// Publish records a new version of a repository for a succeeded build. The
// caller pins the build's commit in the repository before calling.
func (s *Store) Publish(ctx context.Context, repoID, buildID int64, bump, notes, by string) (Version, error) {
	if _, _, _, err := NextVersion(0, 0, 0, bump); err != nil {
		return Version{}, err
	}
	if len(notes) > 64<<10 {
		return Version{}, fmt.Errorf("%w: release notes longer than 64 KiB", ErrInvalid)
	}
	var v Version
	err := s.tx(ctx, func(tx *sql.Tx) error {
		b, err := buildByID(ctx, tx, buildID)
		if err != nil || b.RepoID != repoID {
			return fmt.Errorf("%w: build %d of this repository", ErrNotFound, buildID)
		}
		if b.Status != BuildSucceeded {
			return fmt.Errorf("%w: build %d is %s; only a succeeded build can be published", ErrConflict, buildID, b.Status)
		}
		var existing string
		err = tx.QueryRowContext(ctx, `SELECT major || '.' || minor || '.' || patch FROM versions WHERE repo_id = ? AND build_id = ?`, repoID, buildID).Scan(&existing)
		if err == nil {
			return fmt.Errorf("%w: build %d is already published as %s", ErrConflict, buildID, existing)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var ma, mi, pa int
		err = tx.QueryRowContext(ctx, `SELECT major, minor, patch FROM versions WHERE repo_id = ? ORDER BY major DESC, minor DESC, patch DESC LIMIT 1`, repoID).Scan(&ma, &mi, &pa)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		ma, mi, pa, _ = NextVersion(ma, mi, pa, bump)
		now := s.now().UTC()
		res, err := tx.ExecContext(ctx, `INSERT INTO versions (repo_id, major, minor, patch, commit_id, build_id, release_notes, published_by, published_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, repoID, ma, mi, pa, b.Commit, buildID, notes, by, micros(now))
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		v = Version{ID: id, RepoID: repoID, Major: ma, Minor: mi, Patch: pa, Commit: b.Commit, BuildID: buildID,
			ReleaseNotes: notes, PublishedBy: by, PublishedAt: fromMicros(micros(now))}
		return nil
	})
	if err != nil {
		return Version{}, wrapUnlessSentinel("publish", err)
	}
	return v, nil
}

// Versions lists a repository's versions, newest first.
func (s *Store) Versions(ctx context.Context, repoID int64) ([]Version, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, repo_id, major, minor, patch, commit_id, build_id, release_notes, published_by, published_at
		FROM versions WHERE repo_id = ? ORDER BY major DESC, minor DESC, patch DESC`, repoID)
	if err != nil {
		return nil, fmt.Errorf("store: versions: %w", err)
	}
	defer rows.Close()
	out := []Version{}
	for rows.Next() {
		var v Version
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
func (s *Store) PinnedCommits(ctx context.Context, repoID int64) ([]string, error) {
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
