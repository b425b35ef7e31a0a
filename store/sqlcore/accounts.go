package sqlcore

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"gitserver/store"
)

// bcryptCost is the work factor for password hashes. bcrypt rather than
// argon2id keeps memory flat under many concurrent sign-ins (see
// docs/decisions.md).
const bcryptCost = 11

const accountCols = `id, name, kind, is_admin, disabled, created_at`

func scanAccount(row scanner) (store.Account, error) {
	var a store.Account
	var created int64
	if err := row.Scan(&a.ID, &a.Name, &a.Kind, &a.IsAdmin, &a.Disabled, &created); err != nil {
		return store.Account{}, err
	}
	a.CreatedAt = fromMicros(created)
	return a, nil
}

// CountUsers returns the number of user accounts.
func (s *Core) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE kind = 'user'`).Scan(&n)
	return n, err
}

// CreateUser creates a user account with the given password.
func (s *Core) CreateUser(ctx context.Context, name, password string, admin bool, audit ...store.AuditEntry) (store.Account, error) {
	if err := store.CheckAccountName("user", name); err != nil {
		return store.Account{}, err
	}
	if len(password) < store.MinPasswordLen {
		return store.Account{}, fmt.Errorf("%w: password must be at least %d characters", store.ErrInvalid, store.MinPasswordLen)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return store.Account{}, fmt.Errorf("store: hash password: %w", err)
	}
	now := s.now().UTC()
	var id int64
	err = s.tx(ctx, func(tx Q) error {
		err := tx.QueryRowContext(ctx, `INSERT INTO accounts (name, kind, password_hash, is_admin, created_at) VALUES (?, 'user', ?, ?, ?) RETURNING id`,
			name, string(hash), admin, micros(now)).Scan(&id)
		if s.e.IsUnique(err) {
			return fmt.Errorf("%w: the name %q is taken", store.ErrExists, name)
		}
		if err != nil {
			return fmt.Errorf("store: create user: %w", err)
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Account{}, err
	}
	return store.Account{ID: id, Name: name, Kind: store.KindUser, IsAdmin: admin, CreatedAt: fromMicros(micros(now))}, nil
}

// SetPassword replaces a user's password.
func (s *Core) SetPassword(ctx context.Context, name, password string, audit ...store.AuditEntry) error {
	if len(password) < store.MinPasswordLen {
		return fmt.Errorf("%w: password must be at least %d characters", store.ErrInvalid, store.MinPasswordLen)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return fmt.Errorf("store: hash password: %w", err)
	}
	return s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `UPDATE accounts SET password_hash = ? WHERE name = ? AND kind = 'user'`, string(hash), name)
		if err != nil {
			return fmt.Errorf("store: set password: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: no user %q", store.ErrNotFound, name)
		}
		// A new password ends the user's web sessions.
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = (SELECT id FROM accounts WHERE name = ? AND kind = 'user')`, name); err != nil {
			return fmt.Errorf("store: set password: %w", err)
		}
		return s.writeAudit(ctx, tx, audit)
	})
}

// AccountByName finds a user or organisation by name (case-insensitive).
func (s *Core) AccountByName(ctx context.Context, name string) (store.Account, error) {
	a, err := scanAccount(s.r.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, fmt.Errorf("%w: no account %q", store.ErrNotFound, truncate(name, 100))
	}
	return a, err
}

// AccountByID finds an account by id.
func (s *Core) AccountByID(ctx context.Context, id int64) (store.Account, error) {
	a, err := scanAccount(s.r.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, fmt.Errorf("%w: no account with id %d", store.ErrNotFound, id)
	}
	return a, err
}

// UserByName finds a user (not an organisation) by name.
func (s *Core) UserByName(ctx context.Context, name string) (store.Account, error) {
	a, err := s.AccountByName(ctx, name)
	if err != nil {
		return a, err
	}
	if a.Kind != store.KindUser {
		return store.Account{}, fmt.Errorf("%w: %q is not a user", store.ErrNotFound, name)
	}
	return a, nil
}

// SetDisabled disables or re-enables a user. Disabling an enabled admin
// needs another enabled admin, checked in the UPDATE itself.
func (s *Core) SetDisabled(ctx context.Context, name string, disabled bool, audit ...store.AuditEntry) (store.Account, error) {
	var a store.Account
	err := s.tx(ctx, func(tx Q) error {
		var err error
		a, err = scanAccount(tx.QueryRowContext(ctx, `UPDATE accounts SET disabled = ?
			WHERE name = ? AND kind = 'user' AND (? = 0 OR is_admin = 0 OR disabled <> 0 OR EXISTS (
				SELECT 1 FROM accounts o WHERE o.kind = 'user' AND o.is_admin <> 0 AND o.disabled = 0 AND o.id <> accounts.id))
			RETURNING `+accountCols, disabled, name, disabled))
		if errors.Is(err, sql.ErrNoRows) {
			u, err := scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = ? AND kind = 'user'`, name))
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: no user %q", store.ErrNotFound, truncate(name, 100))
			}
			if err != nil {
				return err
			}
			return fmt.Errorf("%w: %s is the only enabled admin; enable or create another admin first, so that someone can still administer the server", store.ErrConflict, u.Name)
		}
		if err != nil {
			return err
		}
		if disabled {
			// Sessions of a disabled account stop working at once (the
			// lookup checks the flag too); they are not kept for later.
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, a.ID); err != nil {
				return err
			}
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Account{}, wrapUnlessSentinel("set disabled", err)
	}
	return a, nil
}

// dummyHash is compared against when a user does not exist, so that sign-in
// takes the same time whether or not the name is known. It is computed on
// first use, not at package init: every hook process and admin command links
// this package, and a bcrypt at init cost each of them ~0.3 s of CPU.
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("gitserver-dummy-password"), bcryptCost)
	return h
})

// CheckPassword verifies a user's password.
func (s *Core) CheckPassword(ctx context.Context, name, password string) (store.Account, error) {
	var a store.Account
	var hash string
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT id, name, kind, is_admin, disabled, created_at, password_hash FROM accounts WHERE name = ? AND kind = 'user'`, name).
		Scan(&a.ID, &a.Name, &a.Kind, &a.IsAdmin, &a.Disabled, &created, &hash)
	if errors.Is(err, sql.ErrNoRows) || hash == "" || err == nil && a.Disabled {
		// A disabled account costs the same bcrypt as any other refusal.
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return store.Account{}, store.ErrBadCredentials
	}
	if err != nil {
		return store.Account{}, fmt.Errorf("store: check password: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return store.Account{}, store.ErrBadCredentials
	}
	a.CreatedAt = fromMicros(created)
	return a, nil
}

// UserWithPasswordHash returns an account and its stored password hash in
// one read (the sign-in cache checks both on every request).
func (s *Core) UserWithPasswordHash(ctx context.Context, userID int64) (store.Account, string, error) {
	var a store.Account
	var h string
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT id, name, kind, is_admin, disabled, created_at, password_hash FROM accounts WHERE id = ?`, userID).
		Scan(&a.ID, &a.Name, &a.Kind, &a.IsAdmin, &a.Disabled, &created, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, "", fmt.Errorf("%w: no account with id %d", store.ErrNotFound, userID)
	}
	if err != nil {
		return store.Account{}, "", fmt.Errorf("store: user: %w", err)
	}
	a.CreatedAt = fromMicros(created)
	return a, h, nil
}

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// CreateToken creates a token for a user and returns its secret, which is not
// stored and cannot be shown again.
func (s *Core) CreateToken(ctx context.Context, userID int64, label string, scopes []store.Scope, audit ...store.AuditEntry) (string, store.Token, error) {
	clean, err := store.CleanScopes(scopes)
	if err != nil {
		return "", store.Token{}, err
	}
	if label == "" {
		label = "token"
	}
	if len(label) > 100 {
		return "", store.Token{}, fmt.Errorf("%w: token name longer than 100 characters", store.ErrInvalid)
	}
	secret := store.TokenPrefix + base64.RawURLEncoding.EncodeToString(store.RandomBytes(30))
	now := s.now().UTC()
	var id int64
	err = s.tx(ctx, func(tx Q) error {
		var name string
		var kind store.AccountKind
		var isAdmin bool
		err := tx.QueryRowContext(ctx, `SELECT name, kind, is_admin FROM accounts WHERE id = ?`, userID).Scan(&name, &kind, &isAdmin)
		if errors.Is(err, sql.ErrNoRows) || err == nil && kind != store.KindUser {
			return fmt.Errorf("%w: no user with id %d", store.ErrNotFound, userID)
		}
		if err != nil {
			return err
		}
		// The one place that enforces who may hold which scope, for the
		// CLI and the API alike: a builds token can claim (and so clone)
		// any repository's build, and an admin token acts as an admin.
		privileged := false
		if !isAdmin {
			for _, sc := range clean {
				if sc == store.ScopeBuilds || sc == store.ScopeAdmin {
					return fmt.Errorf("%w: only admins can hold tokens with the %s scope, and %s is not an admin", store.ErrForbidden, sc, name)
				}
			}
		} else {
			for _, sc := range clean {
				privileged = privileged || sc == store.ScopeBuilds || sc == store.ScopeAdmin
			}
		}
		// The guard repeats what was read: a user demoted meanwhile (by
		// another writer) gets no privileged token.
		err = tx.QueryRowContext(ctx, `INSERT INTO tokens (user_id, name, hash, scopes, created_at)
			SELECT id, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT) FROM accounts WHERE id = ? AND kind = 'user' AND (is_admin <> 0 OR ? = 0) RETURNING id`,
			label, hashToken(secret), store.JoinScopes(clean), micros(now), userID, privileged).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return errRetry
		}
		if err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return "", store.Token{}, wrapUnlessSentinel("create token", err)
	}
	return secret, store.Token{ID: id, UserID: userID, Name: label, Scopes: clean, CreatedAt: fromMicros(micros(now))}, nil
}

// splitScopes reads the tokens.scopes column (written by store.JoinScopes).
func splitScopes(col string) []store.Scope {
	var scopes []store.Scope
	for _, f := range strings.Fields(col) {
		scopes = append(scopes, store.Scope(f))
	}
	return scopes
}

// CheckToken finds the token with the given secret. If name is not empty the
// token must belong to that user.
func (s *Core) CheckToken(ctx context.Context, name, secret string) (store.Account, store.Token, error) {
	if !strings.HasPrefix(secret, store.TokenPrefix) || len(secret) > 200 {
		return store.Account{}, store.Token{}, store.ErrBadCredentials
	}
	h := hashToken(secret)
	var t store.Token
	var a store.Account
	var scopes, stored string
	var created, acreated int64
	err := s.r.QueryRowContext(ctx, `SELECT t.id, t.user_id, t.name, t.scopes, t.created_at, t.hash,
		a.id, a.name, a.kind, a.is_admin, a.disabled, a.created_at
		FROM tokens t JOIN accounts a ON a.id = t.user_id WHERE t.hash = ?`, h).
		Scan(&t.ID, &t.UserID, &t.Name, &scopes, &created, &stored, &a.ID, &a.Name, &a.Kind, &a.IsAdmin, &a.Disabled, &acreated)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Account{}, store.Token{}, store.ErrBadCredentials
	}
	if err != nil {
		return store.Account{}, store.Token{}, fmt.Errorf("store: check token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(h)) != 1 {
		return store.Account{}, store.Token{}, store.ErrBadCredentials
	}
	if name != "" && !strings.EqualFold(name, a.Name) || a.Disabled {
		return store.Account{}, store.Token{}, store.ErrBadCredentials
	}
	t.Scopes = splitScopes(scopes)
	t.CreatedAt = fromMicros(created)
	a.CreatedAt = fromMicros(acreated)
	return a, t, nil
}

// Tokens lists a user's tokens, oldest first.
func (s *Core) Tokens(ctx context.Context, userID int64) ([]store.Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, user_id, name, scopes, created_at FROM tokens WHERE user_id = ? ORDER BY id`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: tokens: %w", err)
	}
	defer rows.Close()
	out := []store.Token{}
	for rows.Next() {
		var t store.Token
		var scopes string
		var created int64
		if err := rows.Scan(&t.ID, &t.UserID, &t.Name, &scopes, &created); err != nil {
			return nil, fmt.Errorf("store: tokens: %w", err)
		}
		t.Scopes = splitScopes(scopes)
		t.CreatedAt = fromMicros(created)
		out = append(out, t)
	}
	return out, rows.Err()
}

// DeleteToken revokes token id of user userID.
func (s *Core) DeleteToken(ctx context.Context, userID, id int64, audit ...store.AuditEntry) error {
	return s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM tokens WHERE id = ? AND user_id = ?`, id, userID)
		if err != nil {
			return fmt.Errorf("store: delete token: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: token %d", store.ErrNotFound, id)
		}
		return s.writeAudit(ctx, tx, audit)
	})
}

// CreateOrg creates an organisation whose first owner is creatorID.
func (s *Core) CreateOrg(ctx context.Context, name string, creatorID int64, audit ...store.AuditEntry) (store.Account, error) {
	if err := store.CheckAccountName("organisation", name); err != nil {
		return store.Account{}, err
	}
	var org store.Account
	err := s.tx(ctx, func(tx Q) error {
		now := s.now().UTC()
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO accounts (name, kind, created_at) VALUES (?, 'org', ?) RETURNING id`, name, micros(now)).Scan(&id)
		if s.e.IsUnique(err) {
			return fmt.Errorf("%w: the name %q is taken", store.ErrExists, name)
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (org_id, user_id, role) VALUES (?, ?, 'owner')`, id, creatorID); err != nil {
			return err
		}
		org = store.Account{ID: id, Name: name, Kind: store.KindOrg, CreatedAt: fromMicros(micros(now))}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.Account{}, wrapUnlessSentinel("create org", err)
	}
	return org, nil
}

// SetMembership adds a user to an organisation or changes their role. The
// only owner cannot be demoted: the upsert's update repeats that guard, so
// it holds whatever the number of writers.
func (s *Core) SetMembership(ctx context.Context, orgID, userID int64, role store.Role, audit ...store.AuditEntry) error {
	if !role.Valid() {
		return fmt.Errorf("%w: role must be \"owner\" or \"member\"", store.ErrInvalid)
	}
	return s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO memberships (org_id, user_id, role) VALUES (?, ?, ?)
			ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role
			WHERE excluded.role = 'owner' OR memberships.role <> 'owner' OR `+otherOwner,
			orgID, userID, string(role))
		if err != nil {
			return fmt.Errorf("store: set membership: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("%w: the only owner of an organisation cannot be demoted; make another member an owner first", store.ErrConflict)
		}
		return s.writeAudit(ctx, tx, audit)
	})
}

// otherOwner is true when the membership row being changed (memberships.org_id,
// memberships.user_id) is not its organisation's only owner.
const otherOwner = `EXISTS (SELECT 1 FROM memberships o WHERE o.org_id = memberships.org_id AND o.role = 'owner' AND o.user_id <> memberships.user_id)`

// RemoveMember removes a user from an organisation, unless they are its only
// owner (guarded in the DELETE itself).
func (s *Core) RemoveMember(ctx context.Context, orgID, userID int64, audit ...store.AuditEntry) error {
	return s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM memberships WHERE org_id = ? AND user_id = ? AND (role <> 'owner' OR `+otherOwner+`)`, orgID, userID)
		if err != nil {
			return fmt.Errorf("store: remove member: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			var role string
			err := tx.QueryRowContext(ctx, `SELECT role FROM memberships WHERE org_id = ? AND user_id = ?`, orgID, userID).Scan(&role)
			if errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("%w: not a member", store.ErrNotFound)
			}
			if err != nil {
				return fmt.Errorf("store: remove member: %w", err)
			}
			return fmt.Errorf("%w: the only owner of an organisation cannot leave it; make another member an owner first", store.ErrConflict)
		}
		return s.writeAudit(ctx, tx, audit)
	})
}

// Role returns a user's role in an organisation, or "" if not a member.
func (s *Core) Role(ctx context.Context, orgID, userID int64) (store.Role, error) {
	var role string
	err := s.r.QueryRowContext(ctx, `SELECT role FROM memberships WHERE org_id = ? AND user_id = ?`, orgID, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: role: %w", err)
	}
	return store.Role(role), nil
}

// Audit appends an audit event on its own (changes are audited in their
// own transaction, through the audit entries of the mutating methods).
func (s *Core) Audit(ctx context.Context, actor, action, target, detail string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO audit_events (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`,
		micros(s.now()), actor, action, target, detail)
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// AuditEvents returns the newest audit events first.
func (s *Core) AuditEvents(ctx context.Context, limit int) ([]store.AuditEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, at, actor, action, target, detail FROM audit_events ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: audit events: %w", err)
	}
	defer rows.Close()
	var out []store.AuditEvent
	for rows.Next() {
		var e store.AuditEvent
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// UserOrgs lists the organisations a user is a member of, by name.
func (s *Core) UserOrgs(ctx context.Context, userID int64) ([]store.Account, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE kind = 'org' AND id IN (SELECT org_id FROM memberships WHERE user_id = ?) ORDER BY name`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: user orgs: %w", err)
	}
	defer rows.Close()
	out := []store.Account{}
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
