package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gitserver/store"
)

// CreateSession starts a session of userID.
func (s *Core) CreateSession(ctx context.Context, userID int64) (string, store.Session, error) {
	id := store.RandomHex(32)
	now := s.now()
	sess := store.Session{UserID: userID, CSRF: store.RandomHex(32), CreatedAt: fromMicros(micros(now)), LastSeen: fromMicros(micros(now))}
	err := s.tx(ctx, func(tx Q) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE last_seen < ? OR created_at < ?`,
			micros(now.Add(-store.SessionIdle)), micros(now.Add(-store.SessionMaxAge))); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id_hash, user_id, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?)`,
			store.SessionIDHash(id), userID, sess.CSRF, micros(now), micros(now))
		return err
	})
	if err != nil {
		return "", store.Session{}, fmt.Errorf("store: create session: %w", err)
	}
	return id, sess, nil
}

// SessionByID returns a live session and its (enabled) account.
func (s *Core) SessionByID(ctx context.Context, id string) (store.Account, store.Session, error) {
	now := s.now()
	var a store.Account
	var sess store.Session
	var acreated, created, seen int64
	hash := store.SessionIDHash(id)
	err := s.r.QueryRowContext(ctx, `SELECT a.id, a.name, a.kind, a.is_admin, a.disabled, a.created_at,
			s.user_id, s.csrf, s.created_at, s.last_seen
		FROM sessions s JOIN accounts a ON a.id = s.user_id
		WHERE s.id_hash = ? AND a.disabled = 0 AND s.last_seen >= ? AND s.created_at >= ?`,
		hash, micros(now.Add(-store.SessionIdle)), micros(now.Add(-store.SessionMaxAge))).
		Scan(&a.ID, &a.Name, &a.Kind, &a.IsAdmin, &a.Disabled, &acreated, &sess.UserID, &sess.CSRF, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, store.Session{}, fmt.Errorf("%w: no such session", store.ErrNotFound)
	}
	if err != nil {
		return store.Account{}, store.Session{}, fmt.Errorf("store: session: %w", err)
	}
	a.CreatedAt, sess.CreatedAt, sess.LastSeen = fromMicros(acreated), fromMicros(created), fromMicros(seen)
	if now.Sub(sess.LastSeen) >= time.Minute {
		if _, err := s.w.ExecContext(ctx, `UPDATE sessions SET last_seen = ? WHERE id_hash = ? AND last_seen < ?`,
			micros(now), hash, micros(now)); err != nil {
			return store.Account{}, store.Session{}, fmt.Errorf("store: touch session: %w", err)
		}
		sess.LastSeen = fromMicros(micros(now))
	}
	return a, sess, nil
}

// DeleteSession ends a session.
func (s *Core) DeleteSession(ctx context.Context, id string) error {
	if _, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, store.SessionIDHash(id)); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of userID.
func (s *Core) DeleteUserSessions(ctx context.Context, userID int64) (int, error) {
	res, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	if err != nil {
		return 0, fmt.Errorf("store: delete sessions: %w", err)
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
