package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gitserver/store"
)

const repoCols = `r.id, r.owner_id, a.name, a.kind, r.name, r.visibility, r.default_branch, r.created_at`

func scanRepo(row scanner) (store.Repo, error) {
	var r store.Repo
	var created int64
	if err := row.Scan(&r.ID, &r.OwnerID, &r.Owner, &r.OwnerKind, &r.Name, &r.Visibility, &r.DefaultBranch, &created); err != nil {
		return store.Repo{}, err
	}
	r.CreatedAt = fromMicros(created)
	return r, nil
}

// insertRepo inserts nr's row (created at now) and returns its id: a
// taken name is ErrExists, an unknown owner ErrNotFound.
func (s *Core) insertRepo(ctx context.Context, tx Q, nr store.NewRepo, now time.Time) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `INSERT INTO repos (owner_id, name, visibility, default_branch, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id`,
		nr.OwnerID, nr.Name, string(nr.Visibility), nr.DefaultBranch, micros(now)).Scan(&id)
	switch {
	case s.e.IsUnique(err):
		return 0, fmt.Errorf("%w: repository %q exists", store.ErrExists, nr.Name)
	case s.e.IsForeignKey(err):
		return 0, fmt.Errorf("%w: no account with id %d", store.ErrNotFound, nr.OwnerID)
	case err != nil:
		return 0, fmt.Errorf("store: create repo: %w", err)
	}
	return id, nil
}

// CreateRepo records a new repository. The caller creates its directory.
func (s *Core) CreateRepo(ctx context.Context, nr store.NewRepo, audit ...store.AuditEntry) (store.Repo, error) {
	if err := nr.Normalize(); err != nil {
		return store.Repo{}, err
	}
	now := s.now().UTC()
	var r store.Repo
	err := s.tx(ctx, func(tx Q) error {
		id, err := s.insertRepo(ctx, tx, nr, now)
		if err != nil {
			return err
		}
		if r, err = s.repoByID(ctx, tx, id); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Repo{}, err
	}
	return r, nil
}

// RepoByName finds owner/name (case-insensitive).
func (s *Core) RepoByName(ctx context.Context, owner, name string) (store.Repo, error) {
	r, err := scanRepo(s.r.QueryRowContext(ctx, `SELECT `+repoCols+` FROM repos r JOIN accounts a ON a.id = r.owner_id WHERE a.name = ? AND r.name = ?`, owner, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Repo{}, fmt.Errorf("%w: repository %s/%s", store.ErrNotFound, truncate(owner, 100), truncate(name, 100))
	}
	if err != nil {
		return store.Repo{}, fmt.Errorf("store: repo: %w", err)
	}
	return r, nil
}

// RepoByID finds a repository by id.
func (s *Core) RepoByID(ctx context.Context, id int64) (store.Repo, error) {
	return s.repoByID(ctx, s.r, id)
}

func (s *Core) repoByID(ctx context.Context, q querier, id int64) (store.Repo, error) {
	r, err := scanRepo(q.QueryRowContext(ctx, `SELECT `+repoCols+` FROM repos r JOIN accounts a ON a.id = r.owner_id WHERE r.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Repo{}, fmt.Errorf("%w: repository %d", store.ErrNotFound, id)
	}
	if err != nil {
		return store.Repo{}, fmt.Errorf("store: repo: %w", err)
	}
	return r, nil
}

// Repos lists every repository, ordered by id.
func (s *Core) Repos(ctx context.Context) ([]store.Repo, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+repoCols+` FROM repos r JOIN accounts a ON a.id = r.owner_id ORDER BY r.id`)
	if err != nil {
		return nil, fmt.Errorf("store: repos: %w", err)
	}
	defer rows.Close()
	var out []store.Repo
	for rows.Next() {
		r, err := scanRepo(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// DeleteRepo removes a repository's records (builds, versions, deploy keys).
// The caller removes its directory.
func (s *Core) DeleteRepo(ctx context.Context, id int64, audit ...store.AuditEntry) error {
	return s.tx(ctx, func(tx Q) error {
		for _, q := range []string{
			`DELETE FROM mirror_deliveries WHERE hook_id IN (SELECT hook_id FROM mirrors WHERE repo_id = ?)`,
			`DELETE FROM mirrors WHERE repo_id = ?`,
			`DELETE FROM versions WHERE repo_id = ?`,
			`DELETE FROM builds WHERE repo_id = ?`,
			`DELETE FROM ssh_keys WHERE repo_id = ?`,
		} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return fmt.Errorf("store: delete repo: %w", err)
			}
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM repos WHERE id = ?`, id)
		if err != nil {
			return fmt.Errorf("store: delete repo: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: repository %d", store.ErrNotFound, id)
		}
		return s.writeAudit(ctx, tx, audit)
	})
}

// UpdateRepo changes a repository's visibility and default branch.
func (s *Core) UpdateRepo(ctx context.Context, id int64, u store.RepoUpdate, audit ...store.AuditEntry) (store.Repo, error) {
	if err := u.Check(); err != nil {
		return store.Repo{}, err
	}
	var r store.Repo
	err := s.tx(ctx, func(tx Q) error {
		var err error
		if u.Visibility != nil {
			if _, err = tx.ExecContext(ctx, `UPDATE repos SET visibility = ? WHERE id = ?`, string(*u.Visibility), id); err != nil {
				return fmt.Errorf("store: update repo: %w", err)
			}
		}
		if u.DefaultBranch != nil {
			if _, err = tx.ExecContext(ctx, `UPDATE repos SET default_branch = ? WHERE id = ?`, *u.DefaultBranch, id); err != nil {
				return fmt.Errorf("store: update repo: %w", err)
			}
		}
		if r, err = s.repoByID(ctx, tx, id); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Repo{}, err
	}
	return r, nil
}
