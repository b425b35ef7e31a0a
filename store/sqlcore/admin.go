package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"gitserver/store"
)

// ListAccounts lists the accounts of a kind, by name (the column collates
// without case).
func (s *Core) ListAccounts(ctx context.Context, kind store.AccountKind) ([]store.Account, error) {
	if !kind.Valid() {
		return nil, fmt.Errorf("%w: account kind %q", store.ErrInvalid, truncate(string(kind), 20))
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE kind = ? ORDER BY name, id`, string(kind))
	if err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	defer rows.Close()
	out := []store.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list accounts: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetAdmin makes a user an admin or not. Demoting an enabled admin needs
// another enabled admin, checked in the UPDATE itself (as SetDisabled).
func (s *Core) SetAdmin(ctx context.Context, name string, admin bool, audit ...store.AuditEntry) (store.Account, error) {
	var a store.Account
	err := s.tx(ctx, func(tx Q) error {
		var err error
		a, err = scanAccount(tx.QueryRowContext(ctx, `UPDATE accounts SET is_admin = ?
			WHERE name = ? AND kind = 'user' AND (? <> 0 OR is_admin = 0 OR disabled <> 0 OR EXISTS (
				SELECT 1 FROM accounts o WHERE o.kind = 'user' AND o.is_admin <> 0 AND o.disabled = 0 AND o.id <> accounts.id))
			RETURNING `+accountCols, admin, name, admin))
		if errors.Is(err, sql.ErrNoRows) {
			u, err := scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = ? AND kind = 'user'`, name))
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: no user %q", store.ErrNotFound, truncate(name, 100))
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: %s is the only enabled admin; make another user admin first, so that someone can still administer the server", store.ErrConflict, u.Name)
		}
		if err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Account{}, wrapUnlessSentinel("set admin", err)
	}
	return a, nil
}

// Members lists an organisation's members, by name.
func (s *Core) Members(ctx context.Context, orgID int64) ([]store.Member, error) {
	var kind string
	err := s.r.QueryRowContext(ctx, `SELECT kind FROM accounts WHERE id = ?`, orgID).Scan(&kind)
	if errors.Is(err, sql.ErrNoRows) || err == nil && kind != string(store.KindOrg) {
		return nil, fmt.Errorf("%w: no organisation with id %d", store.ErrNotFound, orgID)
	}
	if err != nil {
		return nil, fmt.Errorf("store: members: %w", err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT a.id, a.name, a.kind, a.is_admin, a.disabled, a.created_at, m.role
		FROM memberships m JOIN accounts a ON a.id = m.user_id WHERE m.org_id = ? ORDER BY a.name, a.id`, orgID)
	if err != nil {
		return nil, fmt.Errorf("store: members: %w", err)
	}
	defer rows.Close()
	out := []store.Member{}
	for rows.Next() {
		var m store.Member
		var created int64
		var role string
		if err := rows.Scan(&m.User.ID, &m.User.Name, &m.User.Kind, &m.User.IsAdmin, &m.User.Disabled, &created, &role); err != nil {
			return nil, fmt.Errorf("store: members: %w", err)
		}
		m.User.CreatedAt = fromMicros(created)
		m.Role = store.Role(role)
		out = append(out, m)
	}
	return out, rows.Err()
}

// CountBuilds counts the builds in a status, every repository.
func (s *Core) CountBuilds(ctx context.Context, status store.BuildStatus) (int, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM builds WHERE status = ?`, string(status)).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count builds: %w", err)
	}
	return n, nil
}
