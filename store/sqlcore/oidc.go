package sqlcore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"gitserver/store"
)

func oidcStateHash(state string) string {
	h := sha256.Sum256([]byte("gitserver oidc state\x00" + state))
	return hex.EncodeToString(h[:])
}

// CreateOIDCState stores a pending sign-in.
func (s *Core) CreateOIDCState(ctx context.Context, st store.OIDCState) error {
	if st.State == "" || st.Nonce == "" || st.Verifier == "" {
		return store.Errorf(store.ErrInvalid, "an OIDC sign-in needs a state, a nonce and a verifier")
	}
	return s.tx(ctx, func(tx Q) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM oidc_states WHERE expires_at < ?`, micros(s.now())); err != nil {
			return fmt.Errorf("store: oidc state: %w", err)
		}
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO oidc_states (state_hash, nonce, verifier, return_to, expires_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id`, oidcStateHash(st.State), st.Nonce, emptyBlob, truncate(st.ReturnTo, 2048), micros(st.ExpiresAt)).Scan(&id)
		if s.e.IsUnique(err) {
			return store.Errorf(store.ErrExists, "OIDC state exists")
		}
		if err != nil {
			return fmt.Errorf("store: oidc state: %w", err)
		}
		v, err := s.sealIn("oidc_states", "verifier", id, st.Verifier)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE oidc_states SET verifier = ? WHERE id = ?`, v, id); err != nil {
			return fmt.Errorf("store: oidc state: %w", err)
		}
		return nil
	})
}

// ConsumeOIDCState removes and returns a pending sign-in, once.
func (s *Core) ConsumeOIDCState(ctx context.Context, state string) (store.OIDCState, error) {
	var out store.OIDCState
	var expired bool
	err := s.tx(ctx, func(tx Q) error {
		expired = false
		var id, expires int64
		var verifier []byte
		// The DELETE is the guard: of any number of consumers, one gets
		// the row.
		err := tx.QueryRowContext(ctx, `DELETE FROM oidc_states WHERE state_hash = ? RETURNING id, nonce, verifier, return_to, expires_at`,
			oidcStateHash(state)).Scan(&id, &out.Nonce, &verifier, &out.ReturnTo, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return store.Errorf(store.ErrNotFound, "unknown or already used sign-in state")
		}
		if err != nil {
			return fmt.Errorf("store: consume oidc state: %w", err)
		}
		out.ExpiresAt = fromMicros(expires)
		if !s.now().Before(out.ExpiresAt) {
			expired = true // deleted all the same
			return nil
		}
		if out.Verifier, err = s.openIn("oidc_states", "verifier", id, verifier); err != nil {
			return err
		}
		out.State = state
		return nil
	})
	if err != nil {
		return store.OIDCState{}, err
	}
	if expired {
		return store.OIDCState{}, store.Errorf(store.ErrNotFound, "the sign-in state expired")
	}
	return out, nil
}

const oidcLinkCols = `user_id, issuer, subject, refresh_token, generation, refreshed_at, created_at`

func (s *Core) scanOIDCLink(row scanner) (store.OIDCLink, error) {
	var l store.OIDCLink
	var tok []byte
	var refreshed, created int64
	if err := row.Scan(&l.UserID, &l.Issuer, &l.Subject, &tok, &l.Generation, &refreshed, &created); err != nil {
		return store.OIDCLink{}, err
	}
	l.RefreshedAt, l.CreatedAt = fromMicros(refreshed), fromMicros(created)
	var err error
	if l.RefreshToken, err = s.openIn("oidc_links", "refresh_token", l.UserID, tok); err != nil {
		return store.OIDCLink{}, err
	}
	return l, nil
}

// OIDCUser finds the user linked to issuer and subject.
func (s *Core) OIDCUser(ctx context.Context, issuer, subject string) (store.Account, store.OIDCLink, error) {
	l, err := s.scanOIDCLink(s.r.QueryRowContext(ctx, `SELECT `+oidcLinkCols+` FROM oidc_links WHERE issuer = ? AND subject = ?`, issuer, subject))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, store.OIDCLink{}, store.Errorf(store.ErrNotFound, "no account is linked to this identity")
	}
	if err != nil {
		return store.Account{}, store.OIDCLink{}, fmt.Errorf("store: oidc user: %w", err)
	}
	a, err := s.AccountByID(ctx, l.UserID)
	return a, l, err
}

// OIDCLinkOf returns a user's link.
func (s *Core) OIDCLinkOf(ctx context.Context, userID int64) (store.OIDCLink, error) {
	l, err := s.scanOIDCLink(s.r.QueryRowContext(ctx, `SELECT `+oidcLinkCols+` FROM oidc_links WHERE user_id = ?`, userID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.OIDCLink{}, store.Errorf(store.ErrNotFound, "account %d is not linked to an identity provider", userID)
	}
	if err != nil {
		return store.OIDCLink{}, fmt.Errorf("store: oidc link: %w", err)
	}
	return l, nil
}

func checkNewOIDCUser(nu store.NewOIDCUser) error {
	if nu.Issuer == "" || nu.Subject == "" {
		return store.Errorf(store.ErrInvalid, "an OIDC link needs an issuer and a subject")
	}
	if len(nu.Issuer) > 2048 || len(nu.Subject) > 255 {
		return store.Errorf(store.ErrInvalid, "the OIDC issuer or subject is too long")
	}
	return nil
}

// insertLink writes the link of userID in tx.
func (s *Core) insertLink(ctx context.Context, tx Q, userID int64, nu store.NewOIDCUser, now time.Time) error {
	tok, err := s.sealIn("oidc_links", "refresh_token", userID, nu.RefreshToken)
	if err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO oidc_links (user_id, issuer, subject, refresh_token, refreshed_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
		userID, nu.Issuer, nu.Subject, tok, micros(now), micros(now))
	if s.e.IsUnique(err) {
		return store.Errorf(store.ErrExists, "this account or this identity is linked already")
	}
	if err != nil {
		return fmt.Errorf("store: oidc link: %w", err)
	}
	return nil
}

// CreateOIDCUser creates a user without a password, and its link.
func (s *Core) CreateOIDCUser(ctx context.Context, nu store.NewOIDCUser, audit ...store.AuditEntry) (store.Account, error) {
	if err := store.CheckAccountName("user", nu.Name); err != nil {
		return store.Account{}, err
	}
	if err := checkNewOIDCUser(nu); err != nil {
		return store.Account{}, err
	}
	now := s.now().UTC()
	var id int64
	err := s.tx(ctx, func(tx Q) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO accounts (name, kind, password_hash, is_admin, created_at) VALUES (?, 'user', '', ?, ?) RETURNING id`,
			nu.Name, nu.Admin, micros(now)).Scan(&id)
		if s.e.IsUnique(err) {
			return fmt.Errorf("%w: the name %q is taken", store.ErrExists, nu.Name)
		}
		if err != nil {
			return fmt.Errorf("store: create user: %w", err)
		}
		if err := s.insertLink(ctx, tx, id, nu, now); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Account{}, wrapUnlessSentinel("create oidc user", err)
	}
	return store.Account{ID: id, Name: nu.Name, Kind: store.KindUser, IsAdmin: nu.Admin, CreatedAt: fromMicros(micros(now))}, nil
}

// LinkOIDCUser links an existing user.
func (s *Core) LinkOIDCUser(ctx context.Context, nu store.NewOIDCUser, audit ...store.AuditEntry) (store.Account, error) {
	if err := checkNewOIDCUser(nu); err != nil {
		return store.Account{}, err
	}
	now := s.now().UTC()
	var a store.Account
	err := s.tx(ctx, func(tx Q) error {
		var err error
		a, err = scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = ? AND kind = 'user'`, nu.Name))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("%w: no user %q", store.ErrNotFound, truncate(nu.Name, 100))
		}
		if err != nil {
			return err
		}
		if err := s.insertLink(ctx, tx, a.ID, nu, now); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Account{}, wrapUnlessSentinel("link oidc user", err)
	}
	return a, nil
}

// OIDCSignedIn records a sign-in of a linked user.
func (s *Core) OIDCSignedIn(ctx context.Context, userID int64, refreshToken string, admin *bool, audit ...store.AuditEntry) (store.Account, error) {
	now := s.now().UTC()
	var a store.Account
	err := s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `UPDATE oidc_links SET refreshed_at = ? WHERE user_id = ?`, micros(now), userID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.Errorf(store.ErrNotFound, "account %d is not linked to an identity provider", userID)
		}
		if refreshToken != "" {
			tok, err := s.sealIn("oidc_links", "refresh_token", userID, refreshToken)
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `UPDATE oidc_links SET refresh_token = ?, generation = generation + 1 WHERE user_id = ?`, tok, userID); err != nil {
				return err
			}
		}
		if admin != nil {
			// Demoting needs another enabled admin, checked in the UPDATE
			// itself (as SetDisabled).
			res, err := tx.ExecContext(ctx, `UPDATE accounts SET is_admin = ?
				WHERE id = ? AND (? <> 0 OR is_admin = 0 OR disabled <> 0 OR EXISTS (
					SELECT 1 FROM accounts o WHERE o.kind = 'user' AND o.is_admin <> 0 AND o.disabled = 0 AND o.id <> accounts.id))`,
				*admin, userID, *admin)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return store.Errorf(store.ErrConflict, "the only enabled admin cannot lose the admin role; enable or create another admin first")
			}
		}
		a, err = scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, userID))
		if err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Account{}, wrapUnlessSentinel("oidc sign-in", err)
	}
	return a, nil
}

// ClaimOIDCRefresh claims the refresh of a user's link when it is due.
func (s *Core) ClaimOIDCRefresh(ctx context.Context, userID int64, olderThan time.Duration) (store.OIDCLink, bool, error) {
	now := s.now().UTC()
	var l store.OIDCLink
	var won bool
	err := s.tx(ctx, func(tx Q) error {
		var err error
		// The UPDATE is the guard: of concurrent claimers one moves
		// refreshed_at past the threshold.
		l, err = s.scanOIDCLink(tx.QueryRowContext(ctx, `UPDATE oidc_links SET refreshed_at = ? WHERE user_id = ? AND refreshed_at <= ?
			RETURNING `+oidcLinkCols, micros(now), userID, micros(now.Add(-olderThan))))
		if errors.Is(err, sql.ErrNoRows) {
			var n int
			if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM oidc_links WHERE user_id = ?`, userID).Scan(&n); err != nil {
				return err
			}
			if n == 0 {
				return store.Errorf(store.ErrNotFound, "account %d is not linked to an identity provider", userID)
			}
			won = false
			return nil
		}
		won = err == nil
		return err
	})
	if err != nil {
		return store.OIDCLink{}, false, wrapUnlessSentinel("claim oidc refresh", err)
	}
	if !won {
		return store.OIDCLink{}, false, nil
	}
	return l, true, nil
}

// SetOIDCRefreshToken replaces a claimed refresh token.
func (s *Core) SetOIDCRefreshToken(ctx context.Context, userID, generation int64, refreshToken string) (bool, error) {
	tok, err := s.sealIn("oidc_links", "refresh_token", userID, refreshToken)
	if err != nil {
		return false, err
	}
	var wrote bool
	err = s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `UPDATE oidc_links SET refresh_token = ?, generation = generation + 1 WHERE user_id = ? AND generation = ?`,
			tok, userID, generation)
		if err != nil {
			return fmt.Errorf("store: oidc refresh token: %w", err)
		}
		n, _ := res.RowsAffected()
		wrote = n == 1
		return nil
	})
	return wrote, err
}

// OIDCRefreshesDue lists linked, enabled users whose refresh is due.
func (s *Core) OIDCRefreshesDue(ctx context.Context, olderThan time.Duration, limit int) ([]int64, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT l.user_id FROM oidc_links l JOIN accounts a ON a.id = l.user_id
		WHERE a.disabled = 0 AND l.refreshed_at <= ? ORDER BY l.refreshed_at, l.user_id LIMIT ?`,
		micros(s.now().UTC().Add(-olderThan)), limit)
	if err != nil {
		return nil, fmt.Errorf("store: oidc refreshes due: %w", err)
	}
	defer rows.Close()
	ids := []int64{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("store: oidc refreshes due: %w", err)
		}
		ids = append(ids, id)
	}
	return ids, rows.Err()
}
