package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/sqlcore"
)

// TestSchemaEnforcesUniqueness: the invariants the store's SQL relies on
// under concurrent writers are constraints of the schema, and their
// violations are recognised by SQLite's extended code, not by text.
func TestSchemaEnforcesUniqueness(t *testing.T) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := s.CreateUser(ctx, "alice", "password-alice", false)
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.CreateRepo(ctx, store.NewRepo{OwnerID: u.ID, Name: "app", Visibility: store.Restricted})
	if err != nil {
		t.Fatal(err)
	}
	insert := func(commit, status string) error {
		_, err := s.w.ExecContext(ctx, `INSERT INTO builds (repo_id, branch, commit_id, commit_count, status, queued_at) VALUES (?, 'master', ?, 1, ?, 1)`,
			r.ID, commit, status)
		return err
	}
	if err := insert("c1", "queued"); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ what, commit, status string }{
		{"a second build of one commit", "c1", "succeeded"},
		{"a superseded duplicate of one commit", "c1", "superseded"},
		{"a second queued build of one repository", "c2", "queued"},
	} {
		if err := insert(c.commit, c.status); !isUniqueErr(err) {
			t.Errorf("%s: %v, want a UNIQUE violation", c.what, err)
		}
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO versions (repo_id, major, minor, patch, commit_id, build_id, published_by, published_at)
		SELECT repo_id, 0, 0, n, commit_id, id, 'a', 1 FROM builds, (SELECT 1 AS n UNION SELECT 2) WHERE commit_id = 'c1'`); !isUniqueErr(err) {
		t.Errorf("two versions of one build: %v, want a UNIQUE violation", err)
	}
	if isUniqueErr(errors.New("UNIQUE constraint failed: builds.commit_id")) {
		t.Error("a message that looks like a constraint violation is taken for one")
	}
	if _, err := s.w.ExecContext(ctx, `INSERT INTO repos (owner_id, name, visibility, default_branch, created_at) VALUES (9999, 'x', 'public', 'master', 1)`); !isForeignKeyErr(err) || isUniqueErr(err) {
		t.Errorf("unknown owner: %v, want a FOREIGN KEY violation", err)
	}
}

// TestGuardsInTheStatements: each state change repeats its precondition in
// its WHERE clause, so a row another writer changed after it was read is
// left alone (0 rows) rather than overwritten. The transactions cannot
// interleave on SQLite (BEGIN IMMEDIATE); the statements are run here as
// if they did.
func TestGuardsInTheStatements(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := Open(ctx, filepath.Join(t.TempDir(), "db"), Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, _ := s.CreateUser(ctx, "alice", "password-alice", false)
	r, _ := s.CreateRepo(ctx, store.NewRepo{OwnerID: u.ID, Name: "app", Visibility: store.Restricted})
	b, _, err := s.EnqueueBuild(ctx, store.NewBuild{RepoID: r.ID, Branch: "master", Commit: "c1", CommitCount: 1})
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.ClaimBuild(ctx, "w1", time.Minute)
	if err != nil || c.ID != b.ID {
		t.Fatalf("claim: %+v, %v", c, err)
	}
	rows := func(q string, args ...any) int64 {
		t.Helper()
		res, err := s.w.ExecContext(ctx, q, args...)
		if err != nil {
			t.Fatal(err)
		}
		n, _ := res.RowsAffected()
		return n
	}
	// A second claimer that read the build while it was queued.
	if n := rows(`UPDATE builds SET status = 'running', worker = 'w2' WHERE id = ? AND status = 'queued'`, b.ID); n != 0 {
		t.Errorf("claim guard: %d rows", n)
	}
	// A supersede that read the build while it was queued.
	if n := rows(`UPDATE builds SET status = 'superseded' WHERE id = ? AND status = 'queued' AND previous_commit = ''`, b.ID); n != 0 {
		t.Errorf("supersede guard: %d rows", n)
	}
	// A heartbeat or completion with a stale token, or after the lease ran out.
	at := micros(now)
	if n := rows(`UPDATE builds SET lease_expires_at = 0`+sqlcore.LeaseGuard, b.ID, "stale", at); n != 0 {
		t.Errorf("lease guard, stale token: %d rows", n)
	}
	if n := rows(`UPDATE builds SET lease_expires_at = 0`+sqlcore.LeaseGuard, b.ID, c.LeaseToken, micros(now.Add(time.Hour))); n != 0 {
		t.Errorf("lease guard, expired lease: %d rows", n)
	}
	if n := rows(`UPDATE builds SET lease_expires_at = lease_expires_at`+sqlcore.LeaseGuard, b.ID, c.LeaseToken, at); n != 1 {
		t.Errorf("lease guard, live token: %d rows", n)
	}
	// An enqueue of the same commit that found no build when it looked.
	var id int64
	err = s.w.QueryRowContext(ctx, `INSERT INTO builds (repo_id, branch, commit_id, previous_commit, commit_count, status, attempt, pushed_by, queued_at)
		VALUES (?, 'master', 'c1', '', 1, 'queued', 1, '', 1) ON CONFLICT DO NOTHING RETURNING id`, r.ID).Scan(&id)
	if err == nil || !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("duplicate enqueue inserted build %d (%v)", id, err)
	}
}
