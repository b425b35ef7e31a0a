package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Visibilities.
const (
	Public     = "public"
	Restricted = "restricted"
)

// DefaultBranch is used when a repository is created without one.
const DefaultBranch = "master"

// Repo is a hosted repository. Its directory on disk is derived from ID
// only (see gitserver.Repos), never from user-supplied names.
type Repo struct {
	ID            int64
	OwnerID       int64
	Owner         string // owner's account name, as stored
	OwnerKind     string
	Name          string
	Visibility    string
	DefaultBranch string
	CreatedAt     time.Time
}

// FullName is "owner/name".
func (r Repo) FullName() string { return r.Owner + "/" + r.Name }

// NewRepo describes a repository to create.
type NewRepo struct {
	OwnerID       int64
	Name          string
	Visibility    string
	DefaultBranch string
}

const repoCols = `r.id, r.owner_id, a.name, a.kind, r.name, r.visibility, r.default_branch, r.created_at`

func scanRepo(row interface{ Scan(...any) error }) (Repo, error) {
	var r Repo
	var created int64
	if err := row.Scan(&r.ID, &r.OwnerID, &r.Owner, &r.OwnerKind, &r.Name, &r.Visibility, &r.DefaultBranch, &created); err != nil {
		return Repo{}, err
	}
	r.CreatedAt = fromMicros(created)
	return r, nil
}

// CreateRepo records a new repository. The caller creates its directory.
func (s *Store) CreateRepo(ctx context.Context, nr NewRepo) (Repo, error) {
	if err := checkName("repository", nr.Name); err != nil {
		return Repo{}, err
	}
	if nr.Visibility != Public && nr.Visibility != Restricted {
		return Repo{}, fmt.Errorf("%w: visibility must be \"public\" or \"restricted\"", ErrInvalid)
	}
	if nr.DefaultBranch == "" {
		nr.DefaultBranch = DefaultBranch
	}
	if !ValidBranchName(nr.DefaultBranch) {
		return Repo{}, fmt.Errorf("%w: %q is not a valid branch name", ErrInvalid, truncate(nr.DefaultBranch, 100))
	}
	now := s.now().UTC()
	res, err := s.w.ExecContext(ctx, `INSERT INTO repos (owner_id, name, visibility, default_branch, created_at) VALUES (?, ?, ?, ?, ?)`,
		nr.OwnerID, nr.Name, nr.Visibility, nr.DefaultBranch, micros(now))
	if isUniqueErr(err) {
		return Repo{}, fmt.Errorf("%w: repository %q exists", ErrExists, nr.Name)
	}
	if err != nil {
		return Repo{}, fmt.Errorf("store: create repo: %w", err)
	}
	id, _ := res.LastInsertId()
	return s.RepoByID(ctx, id)
}

// RepoByName finds owner/name (case-insensitive).
func (s *Store) RepoByName(ctx context.Context, owner, name string) (Repo, error) {
	r, err := scanRepo(s.r.QueryRowContext(ctx, `SELECT `+repoCols+` FROM repos r JOIN accounts a ON a.id = r.owner_id WHERE a.name = ? AND r.name = ?`, owner, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Repo{}, fmt.Errorf("%w: repository %s/%s", ErrNotFound, truncate(owner, 100), truncate(name, 100))
	}
	if err != nil {
		return Repo{}, fmt.Errorf("store: repo: %w", err)
	}
	return r, nil
}

// RepoByID finds a repository by id.
func (s *Store) RepoByID(ctx context.Context, id int64) (Repo, error) {
	r, err := scanRepo(s.r.QueryRowContext(ctx, `SELECT `+repoCols+` FROM repos r JOIN accounts a ON a.id = r.owner_id WHERE r.id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Repo{}, fmt.Errorf("%w: repository %d", ErrNotFound, id)
	}
	if err != nil {
		return Repo{}, fmt.Errorf("store: repo: %w", err)
	}
	return r, nil
}

// Repos lists every repository, ordered by id.
func (s *Store) Repos(ctx context.Context) ([]Repo, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+repoCols+` FROM repos r JOIN accounts a ON a.id = r.owner_id ORDER BY r.id`)
	if err != nil {
		return nil, fmt.Errorf("store: repos: %w", err)
	}
	defer rows.Close()
	var out []Repo
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
func (s *Store) DeleteRepo(ctx context.Context, id int64) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, q := range []string{
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
			return fmt.Errorf("%w: repository %d", ErrNotFound, id)
		}
		return nil
	})
}
