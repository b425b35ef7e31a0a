package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"gitserver/store"
)

// aad binds a sealed value to its row and column.
func aad(column string, repoID int64) []byte {
	return sealAAD("mirrors", column, repoID)
}

func (s *Core) seal(column string, repoID int64, plain []byte) ([]byte, error) {
	if s.sealer == nil {
		return plain, nil
	}
	out, err := s.sealer.Seal(plain, aad(column, repoID))
	if err != nil {
		return nil, fmt.Errorf("store: seal %s: %w", column, err)
	}
	return out, nil
}

func (s *Core) open(column string, repoID int64, sealed []byte) ([]byte, error) {
	if s.sealer == nil {
		return sealed, nil
	}
	out, err := s.sealer.Open(sealed, aad(column, repoID))
	if err != nil {
		// Never the value, nor the sealer's detail.
		return nil, fmt.Errorf("store: the %s of mirror %d cannot be opened with this sealing key", column, repoID)
	}
	return out, nil
}

// CreateMirror records a repository and its mirror in one transaction.
func (s *Core) CreateMirror(ctx context.Context, nr store.NewRepo, nm store.NewMirror, audit ...store.AuditEntry) (store.Repo, store.Mirror, error) {
	if err := nr.Normalize(); err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	if err := nm.Normalize(); err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	now := s.now().UTC()
	var r store.Repo
	var m store.Mirror
	err := s.tx(ctx, func(tx Q) error {
		id, err := s.insertRepo(ctx, tx, nr, now)
		if err != nil {
			return err
		}
		key, err := s.seal("private_key", id, nm.PrivateKey)
		if err != nil {
			return err
		}
		secret, err := s.seal("webhook_secret", id, []byte(nm.WebhookSecret))
		if err != nil {
			return err
		}
		// The first sync is due at once.
		if _, err := tx.ExecContext(ctx, `INSERT INTO mirrors (repo_id, url, public_key, private_key, known_hosts, host_key_fingerprints, hook_id, webhook_secret, provider, interval_seconds, next_sync_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			id, nm.URL, nm.PublicKey, key, nm.KnownHosts, strings.Join(nm.HostKeyFingerprints, "\n"),
			store.RandomHex(16), secret, nm.Provider, int64(nm.Interval/time.Second), micros(now)); err != nil {
			return fmt.Errorf("store: create mirror: %w", err)
		}
		if r, err = s.repoByID(ctx, tx, id); err != nil {
			return err
		}
		if m, err = s.mirrorWhere(ctx, tx, `m.repo_id = ?`, id); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Repo{}, store.Mirror{}, err
	}
	return r, m, nil
}

const mirrorCols = `m.repo_id, m.url, m.public_key, m.private_key, m.known_hosts, m.host_key_fingerprints, m.hook_id, m.webhook_secret,
	m.provider, m.interval_seconds, m.status, m.last_sync_at, m.last_error_code, m.last_error_message, m.last_rewrite,
	m.last_delivery_at, m.next_sync_at, COALESCE(m.scm_config_id, 0), m.remote_id, m.remote_full_name, m.remote_html_url,
	m.remote_default_branch, COALESCE(m.remote_user_id, 0)`

func (s *Core) scanMirror(row scanner) (store.Mirror, error) {
	var m store.Mirror
	var key, secret []byte
	var fps, status string
	var interval, lastSync, lastDelivery, next int64
	if err := row.Scan(&m.RepoID, &m.URL, &m.PublicKey, &key, &m.KnownHosts, &fps, &m.HookID, &secret,
		&m.Provider, &interval, &status, &lastSync, &m.LastErrorCode, &m.LastErrorMessage, &m.LastRewrite,
		&lastDelivery, &next, &m.SCMConfigID, &m.Remote.ID, &m.Remote.FullName, &m.Remote.HTMLURL,
		&m.Remote.DefaultBranch, &m.Remote.UserID); err != nil {
		return store.Mirror{}, err
	}
	var err error
	if m.PrivateKey, err = s.open("private_key", m.RepoID, key); err != nil {
		return store.Mirror{}, err
	}
	sec, err := s.open("webhook_secret", m.RepoID, secret)
	if err != nil {
		return store.Mirror{}, err
	}
	m.WebhookSecret = string(sec)
	m.HostKeyFingerprints = []string{}
	if fps != "" {
		m.HostKeyFingerprints = strings.Split(fps, "\n")
	}
	m.Interval = time.Duration(interval) * time.Second
	m.Status = store.MirrorStatus(status)
	m.LastSyncAt, m.LastDeliveryAt, m.NextSyncAt = fromMicros(lastSync), fromMicros(lastDelivery), fromMicros(next)
	return m, nil
}

func (s *Core) mirrorWhere(ctx context.Context, q querier, where string, args ...any) (store.Mirror, error) {
	m, err := s.scanMirror(q.QueryRowContext(ctx, `SELECT `+mirrorCols+` FROM mirrors m WHERE `+where, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Mirror{}, fmt.Errorf("%w: mirror", store.ErrNotFound)
	}
	if err != nil {
		return store.Mirror{}, wrapUnlessSentinel("mirror", err)
	}
	return m, nil
}

// MirrorByRepo returns the mirror of a repository.
func (s *Core) MirrorByRepo(ctx context.Context, repoID int64) (store.Mirror, error) {
	return s.mirrorWhere(ctx, s.r, `m.repo_id = ?`, repoID)
}

// MirrorByHookID finds the mirror of an inbound webhook id.
func (s *Core) MirrorByHookID(ctx context.Context, hookID string) (store.Mirror, error) {
	return s.mirrorWhere(ctx, s.r, `m.hook_id = ?`, hookID)
}

func (s *Core) mirrorList(ctx context.Context, query string, args ...any) ([]store.Mirror, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+mirrorCols+` FROM mirrors m `+query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: mirrors: %w", err)
	}
	defer rows.Close()
	out := []store.Mirror{}
	for rows.Next() {
		m, err := s.scanMirror(rows)
		if err != nil {
			return nil, wrapUnlessSentinel("mirrors", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// Mirrors lists every mirror.
func (s *Core) Mirrors(ctx context.Context) ([]store.Mirror, error) {
	return s.mirrorList(ctx, `ORDER BY m.repo_id`)
}

// DueMirrors lists mirrors due for a sync.
func (s *Core) DueMirrors(ctx context.Context, now time.Time, limit int) ([]store.Mirror, error) {
	return s.mirrorList(ctx, `WHERE m.next_sync_at <= ? AND m.status != 'syncing' ORDER BY m.next_sync_at, m.repo_id LIMIT ?`, micros(now), limit)
}

// UpdateMirror changes a mirror's synchronisation state.
func (s *Core) UpdateMirror(ctx context.Context, repoID int64, u store.MirrorUpdate) (store.Mirror, error) {
	if err := u.Validate(); err != nil {
		return store.Mirror{}, err
	}
	var m store.Mirror
	err := s.tx(ctx, func(tx Q) error {
		set := []string{`status = ?`}
		args := []any{string(u.Status)}
		if u.Synced {
			set = append(set, `last_sync_at = ?`, `last_error_code = ?`, `last_error_message = ?`)
			args = append(args, micros(s.now()), u.ErrorCode, truncate(u.ErrorMessage, 1000))
		}
		if u.Rewrite != "" {
			set = append(set, `last_rewrite = ?`)
			args = append(args, truncate(u.Rewrite, 4000))
		}
		if !u.NextSyncAt.IsZero() {
			set = append(set, `next_sync_at = ?`)
			args = append(args, micros(u.NextSyncAt))
		}
		where := `repo_id = ?`
		args = append(args, repoID)
		if u.From != "" {
			where += ` AND status = ?`
			args = append(args, string(u.From))
		}
		res, err := tx.ExecContext(ctx, `UPDATE mirrors SET `+strings.Join(set, ", ")+` WHERE `+where, args...)
		if err != nil {
			return fmt.Errorf("store: update mirror: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM mirrors WHERE repo_id = ?`, repoID).Scan(&one); errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: mirror of repository %d", store.ErrNotFound, repoID)
			}
			return store.Errorf(store.ErrConflict, "the mirror is not %s", u.From)
		}
		if u.DefaultBranch != "" {
			var old, target string
			if err := tx.QueryRowContext(ctx, `SELECT r.default_branch, a.name || '/' || r.name FROM repos r JOIN accounts a ON a.id = r.owner_id WHERE r.id = ?`,
				repoID).Scan(&old, &target); err != nil {
				return fmt.Errorf("store: update mirror: %w", err)
			}
			if old != u.DefaultBranch {
				if _, err := tx.ExecContext(ctx, `UPDATE repos SET default_branch = ? WHERE id = ?`, u.DefaultBranch, repoID); err != nil {
					return fmt.Errorf("store: update mirror: default branch: %w", err)
				}
				if err := s.writeAudit(ctx, tx, []store.AuditEntry{{Actor: "mirror", Action: "repo.default_branch", Target: target,
					Detail: "the upstream's default branch is now " + u.DefaultBranch + " (was " + old + ")"}}); err != nil {
					return err
				}
			}
		}
		m, err = s.mirrorWhere(ctx, tx, `m.repo_id = ?`, repoID)
		return err
	})
	if err != nil {
		return store.Mirror{}, err
	}
	return m, nil
}

// RecordDelivery remembers a delivery id and reports whether it is new.
func (s *Core) RecordDelivery(ctx context.Context, hookID, deliveryID string) (bool, error) {
	now := s.now()
	var fresh bool
	err := s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `UPDATE mirrors SET last_delivery_at = ? WHERE hook_id = ?`, micros(now), hookID)
		if err != nil {
			return fmt.Errorf("store: record delivery: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: webhook", store.ErrNotFound)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM mirror_deliveries WHERE received_at < ?`, micros(now.Add(-store.MirrorDeliveryRetention))); err != nil {
			return fmt.Errorf("store: record delivery: %w", err)
		}
		var id int64
		err = tx.QueryRowContext(ctx, `INSERT INTO mirror_deliveries (hook_id, delivery_id, received_at) VALUES (?, ?, ?)
			ON CONFLICT (hook_id, delivery_id) DO NOTHING RETURNING 1`, hookID, truncate(deliveryID, 200), micros(now)).Scan(&id)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			fresh = false
		case err != nil:
			return fmt.Errorf("store: record delivery: %w", err)
		default:
			fresh = true
		}
		return nil
	})
	return fresh, err
}
