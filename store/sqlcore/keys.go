package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"gitserver/store"
)

const keyCols = `id, COALESCE(user_id, 0), COALESCE(repo_id, 0), title, fingerprint, public_key, read_only, created_at`

func scanKey(row scanner) (store.Key, error) {
	var k store.Key
	var created int64
	if err := row.Scan(&k.ID, &k.UserID, &k.RepoID, &k.Title, &k.Fingerprint, &k.PublicKey, &k.ReadOnly, &created); err != nil {
		return store.Key{}, err
	}
	k.CreatedAt = fromMicros(created)
	return k, nil
}

func nullID(id int64) any {
	if id == 0 {
		return nil
	}
	return id
}

// AddKey stores a key. A key already stored anywhere (same fingerprint)
// gives ErrExists.
func (s *Core) AddKey(ctx context.Context, nk store.NewKey, audit ...store.AuditEntry) (store.Key, error) {
	if err := nk.Normalize(); err != nil {
		return store.Key{}, err
	}
	now := s.now().UTC()
	var id int64
	err := s.tx(ctx, func(tx Q) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO ssh_keys (user_id, repo_id, title, fingerprint, public_key, read_only, created_at) VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			nullID(nk.UserID), nullID(nk.RepoID), nk.Title, nk.Fingerprint, nk.PublicKey, nk.ReadOnly, micros(now)).Scan(&id)
		if s.e.IsUnique(err) {
			return fmt.Errorf("%w: this key is already in use (fingerprint %s)", store.ErrExists, nk.Fingerprint)
		}
		if err != nil {
			return fmt.Errorf("store: add key: %w", err)
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Key{}, err
	}
	return store.Key{ID: id, UserID: nk.UserID, RepoID: nk.RepoID, Title: nk.Title, Fingerprint: nk.Fingerprint,
		PublicKey: nk.PublicKey, ReadOnly: nk.ReadOnly, CreatedAt: fromMicros(micros(now))}, nil
}

// KeyByFingerprint finds a key by its SHA256 fingerprint.
func (s *Core) KeyByFingerprint(ctx context.Context, fp string) (store.Key, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyCols+` FROM ssh_keys WHERE fingerprint = ?`, fp))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Key{}, fmt.Errorf("%w: key %s", store.ErrNotFound, fp)
	}
	if err != nil {
		return store.Key{}, fmt.Errorf("store: key: %w", err)
	}
	return k, nil
}

// UserKeys lists a user's keys.
func (s *Core) UserKeys(ctx context.Context, userID int64) ([]store.Key, error) {
	return s.keys(ctx, `SELECT `+keyCols+` FROM ssh_keys WHERE user_id = ? ORDER BY id`, userID)
}

// DeployKeys lists a repository's deploy keys.
func (s *Core) DeployKeys(ctx context.Context, repoID int64) ([]store.Key, error) {
	return s.keys(ctx, `SELECT `+keyCols+` FROM ssh_keys WHERE repo_id = ? ORDER BY id`, repoID)
}

func (s *Core) keys(ctx context.Context, q string, arg int64) ([]store.Key, error) {
	rows, err := s.r.QueryContext(ctx, q, arg)
	if err != nil {
		return nil, fmt.Errorf("store: keys: %w", err)
	}
	defer rows.Close()
	out := []store.Key{}
	for rows.Next() {
		k, err := scanKey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// DeleteUserKey removes key id of user userID.
func (s *Core) DeleteUserKey(ctx context.Context, userID, id int64, audit ...store.AuditEntry) error {
	return s.deleteKey(ctx, `DELETE FROM ssh_keys WHERE id = ? AND user_id = ?`, id, userID, audit)
}

// DeleteDeployKey removes deploy key id of repository repoID.
func (s *Core) DeleteDeployKey(ctx context.Context, repoID, id int64, audit ...store.AuditEntry) error {
	return s.deleteKey(ctx, `DELETE FROM ssh_keys WHERE id = ? AND repo_id = ?`, id, repoID, audit)
}

func (s *Core) deleteKey(ctx context.Context, q string, id, owner int64, audit []store.AuditEntry) error {
	return s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, q, id, owner)
		if err != nil {
			return fmt.Errorf("store: delete key: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: key %d", store.ErrNotFound, id)
		}
		return s.writeAudit(ctx, tx, audit)
	})
}
