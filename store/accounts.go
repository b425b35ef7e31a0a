package store

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
	"time"

	"golang.org/x/crypto/bcrypt"
)

// Account kinds.
const (
	KindUser = "user"
	KindOrg  = "org"
)

// Account is a user or an organisation. Organisations have no password and
// cannot sign in.
type Account struct {
	ID        int64
	Name      string
	Kind      string
	IsAdmin   bool
	CreatedAt time.Time
}

// Org roles.
const (
	RoleOwner  = "owner"
	RoleMember = "member"
)

// Token scopes.
const (
	ScopeRepoRead  = "repo:read"
	ScopeRepoWrite = "repo:write"
	ScopeBuilds    = "builds"
	ScopeAdmin     = "admin"
)

// ValidScope reports whether s is a known token scope.
func ValidScope(s string) bool {
	switch s {
	case ScopeRepoRead, ScopeRepoWrite, ScopeBuilds, ScopeAdmin:
		return true
	}
	return false
}

// DefaultScopes are given to a token created without explicit scopes.
var DefaultScopes = []string{ScopeRepoRead, ScopeRepoWrite}

// Token is an API/git access token. The secret itself is never stored.
type Token struct {
	ID        int64
	UserID    int64
	Name      string
	Scopes    []string
	CreatedAt time.Time
}

// HasScope reports whether the token carries scope sc.
func (t *Token) HasScope(sc string) bool {
	for _, s := range t.Scopes {
		if s == sc {
			return true
		}
	}
	return false
}

// bcryptCost is the work factor for password hashes. bcrypt rather than
// argon2id keeps memory flat under many concurrent sign-ins (see
// docs/decisions.md).
const bcryptCost = 11

// MinPasswordLen is the shortest password accepted.
const MinPasswordLen = 8

const accountCols = `id, name, kind, is_admin, created_at`

func scanAccount(row interface{ Scan(...any) error }) (Account, error) {
	var a Account
	var created int64
	if err := row.Scan(&a.ID, &a.Name, &a.Kind, &a.IsAdmin, &created); err != nil {
		return Account{}, err
	}
	a.CreatedAt = fromMicros(created)
	return a, nil
}

// CountUsers returns the number of user accounts.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM accounts WHERE kind = 'user'`).Scan(&n)
	return n, err
}

// CreateUser creates a user account with the given password.
func (s *Store) CreateUser(ctx context.Context, name, password string, admin bool) (Account, error) {
	if err := checkName("user", name); err != nil {
		return Account{}, err
	}
	if len(password) < MinPasswordLen {
		return Account{}, fmt.Errorf("%w: password must be at least %d characters", ErrInvalid, MinPasswordLen)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return Account{}, fmt.Errorf("store: hash password: %w", err)
	}
	return s.createAccount(ctx, name, KindUser, string(hash), admin)
}

func (s *Store) createAccount(ctx context.Context, name, kind, hash string, admin bool) (Account, error) {
	now := s.now().UTC()
	res, err := s.w.ExecContext(ctx, `INSERT INTO accounts (name, kind, password_hash, is_admin, created_at) VALUES (?, ?, ?, ?, ?)`,
		name, kind, hash, admin, micros(now))
	if isUniqueErr(err) {
		return Account{}, fmt.Errorf("%w: the name %q is taken", ErrExists, name)
	}
	if err != nil {
		return Account{}, fmt.Errorf("store: create %s: %w", kind, err)
	}
	id, _ := res.LastInsertId()
	return Account{ID: id, Name: name, Kind: kind, IsAdmin: admin, CreatedAt: fromMicros(micros(now))}, nil
}

// SetPassword replaces a user's password.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if len(password) < MinPasswordLen {
		return fmt.Errorf("%w: password must be at least %d characters", ErrInvalid, MinPasswordLen)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
	if err != nil {
		return fmt.Errorf("store: hash password: %w", err)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE accounts SET password_hash = ? WHERE name = ? AND kind = 'user'`, string(hash), name)
	if err != nil {
		return fmt.Errorf("store: set password: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: no user %q", ErrNotFound, name)
	}
	return nil
}

// AccountByName finds a user or organisation by name (case-insensitive).
func (s *Store) AccountByName(ctx context.Context, name string) (Account, error) {
	a, err := scanAccount(s.r.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("%w: no account %q", ErrNotFound, truncate(name, 100))
	}
	return a, err
}

// AccountByID finds an account by id.
func (s *Store) AccountByID(ctx context.Context, id int64) (Account, error) {
	a, err := scanAccount(s.r.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, fmt.Errorf("%w: no account with id %d", ErrNotFound, id)
	}
	return a, err
}

// UserByName finds a user (not an organisation) by name.
func (s *Store) UserByName(ctx context.Context, name string) (Account, error) {
	a, err := s.AccountByName(ctx, name)
	if err != nil {
		return a, err
	}
	if a.Kind != KindUser {
		return Account{}, fmt.Errorf("%w: %q is not a user", ErrNotFound, name)
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

// ErrBadCredentials is returned by the credential checks for any failure to
// authenticate (unknown user, wrong password, revoked token).
var ErrBadCredentials = errors.New("bad credentials")

// CheckPassword verifies a user's password.
func (s *Store) CheckPassword(ctx context.Context, name, password string) (Account, error) {
	var a Account
	var hash string
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT id, name, kind, is_admin, created_at, password_hash FROM accounts WHERE name = ? AND kind = 'user'`, name).
		Scan(&a.ID, &a.Name, &a.Kind, &a.IsAdmin, &created, &hash)
	if errors.Is(err, sql.ErrNoRows) || hash == "" {
		bcrypt.CompareHashAndPassword(dummyHash(), []byte(password))
		return Account{}, ErrBadCredentials
	}
	if err != nil {
		return Account{}, fmt.Errorf("store: check password: %w", err)
	}
	if bcrypt.CompareHashAndPassword([]byte(hash), []byte(password)) != nil {
		return Account{}, ErrBadCredentials
	}
	a.CreatedAt = fromMicros(created)
	return a, nil
}

// PasswordHashOf returns the stored hash of a user's password; callers use it
// as a cache-invalidation key (it changes whenever the password does).
func (s *Store) PasswordHashOf(ctx context.Context, userID int64) (string, error) {
	_, h, err := s.UserWithPasswordHash(ctx, userID)
	return h, err
}

// UserWithPasswordHash returns an account and its stored password hash in
// one read (the sign-in cache checks both on every request).
func (s *Store) UserWithPasswordHash(ctx context.Context, userID int64) (Account, string, error) {
	var a Account
	var h string
	var created int64
	err := s.r.QueryRowContext(ctx, `SELECT id, name, kind, is_admin, created_at, password_hash FROM accounts WHERE id = ?`, userID).
		Scan(&a.ID, &a.Name, &a.Kind, &a.IsAdmin, &created, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, "", ErrNotFound
	}
	if err != nil {
		return Account{}, "", err
	}
	a.CreatedAt = fromMicros(created)
	return a, h, nil
}

// TokenPrefix starts every token so that secret scanners can recognise it.
const TokenPrefix = "gst_"

func hashToken(tok string) string {
	sum := sha256.Sum256([]byte(tok))
	return hex.EncodeToString(sum[:])
}

// CreateToken creates a token for a user and returns its secret, which is not
// stored and cannot be shown again.
func (s *Store) CreateToken(ctx context.Context, userID int64, label string, scopes []string) (string, Token, error) {
	if len(scopes) == 0 {
		scopes = DefaultScopes
	}
	seen := map[string]bool{}
	var clean []string
	for _, sc := range scopes {
		if !ValidScope(sc) {
			return "", Token{}, fmt.Errorf("%w: unknown scope %q (known: repo:read, repo:write, builds, admin)", ErrInvalid, truncate(sc, 40))
		}
		if !seen[sc] {
			seen[sc] = true
			clean = append(clean, sc)
		}
	}
	if label == "" {
		label = "token"
	}
	if len(label) > 100 {
		return "", Token{}, fmt.Errorf("%w: token name longer than 100 characters", ErrInvalid)
	}
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(randomBytes(30))
	now := s.now().UTC()
	var id int64
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var name, kind string
		var isAdmin bool
		err := tx.QueryRowContext(ctx, `SELECT name, kind, is_admin FROM accounts WHERE id = ?`, userID).Scan(&name, &kind, &isAdmin)
		if errors.Is(err, sql.ErrNoRows) || err == nil && kind != KindUser {
			return fmt.Errorf("%w: no user with id %d", ErrNotFound, userID)
		}
		if err != nil {
			return err
		}
		// The one place that enforces who may hold which scope, for the
		// CLI and the API alike: a builds token can claim (and so clone)
		// any repository's build, and an admin token acts as an admin.
		if !isAdmin {
			for _, sc := range clean {
				if sc == ScopeBuilds || sc == ScopeAdmin {
					return fmt.Errorf("%w: only admins can hold tokens with the %s scope, and %s is not an admin", ErrForbidden, sc, name)
				}
			}
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens (user_id, name, hash, scopes, created_at) VALUES (?, ?, ?, ?, ?)`,
			userID, label, hashToken(secret), strings.Join(clean, " "), micros(now))
		if err != nil {
			return err
		}
		id, _ = res.LastInsertId()
		return nil
	})
	if err != nil {
		return "", Token{}, wrapUnlessSentinel("create token", err)
	}
	return secret, Token{ID: id, UserID: userID, Name: label, Scopes: clean, CreatedAt: fromMicros(micros(now))}, nil
}

// CheckToken finds the token with the given secret. If name is not empty the
// token must belong to that user.
func (s *Store) CheckToken(ctx context.Context, name, secret string) (Account, Token, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) > 200 {
		return Account{}, Token{}, ErrBadCredentials
	}
	h := hashToken(secret)
	var t Token
	var a Account
	var scopes, stored string
	var created, acreated int64
	err := s.r.QueryRowContext(ctx, `SELECT t.id, t.user_id, t.name, t.scopes, t.created_at, t.hash,
		a.id, a.name, a.kind, a.is_admin, a.created_at
		FROM tokens t JOIN accounts a ON a.id = t.user_id WHERE t.hash = ?`, h).
		Scan(&t.ID, &t.UserID, &t.Name, &scopes, &created, &stored, &a.ID, &a.Name, &a.Kind, &a.IsAdmin, &acreated)
	if errors.Is(err, sql.ErrNoRows) {
		return Account{}, Token{}, ErrBadCredentials
	}
	if err != nil {
		return Account{}, Token{}, fmt.Errorf("store: check token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(stored), []byte(h)) != 1 {
		return Account{}, Token{}, ErrBadCredentials
	}
	if name != "" && !strings.EqualFold(name, a.Name) {
		return Account{}, Token{}, ErrBadCredentials
	}
	t.Scopes = strings.Fields(scopes)
	t.CreatedAt = fromMicros(created)
	a.CreatedAt = fromMicros(acreated)
	return a, t, nil
}

// CreateOrg creates an organisation whose first owner is creatorID.
func (s *Store) CreateOrg(ctx context.Context, name string, creatorID int64) (Account, error) {
	if err := checkName("organisation", name); err != nil {
		return Account{}, err
	}
	var org Account
	err := s.tx(ctx, func(tx *sql.Tx) error {
		now := s.now().UTC()
		res, err := tx.ExecContext(ctx, `INSERT INTO accounts (name, kind, created_at) VALUES (?, 'org', ?)`, name, micros(now))
		if isUniqueErr(err) {
			return fmt.Errorf("%w: the name %q is taken", ErrExists, name)
		}
		if err != nil {
			return err
		}
		id, _ := res.LastInsertId()
		if _, err := tx.ExecContext(ctx, `INSERT INTO memberships (org_id, user_id, role) VALUES (?, ?, 'owner')`, id, creatorID); err != nil {
			return err
		}
		org = Account{ID: id, Name: name, Kind: KindOrg, CreatedAt: fromMicros(micros(now))}
		return nil
	})
	if err != nil && !errors.Is(err, ErrExists) {
		return Account{}, fmt.Errorf("store: create org: %w", err)
	}
	return org, err
}

// SetMembership adds a user to an organisation or changes their role.
func (s *Store) SetMembership(ctx context.Context, orgID, userID int64, role string) error {
	if role != RoleOwner && role != RoleMember {
		return fmt.Errorf("%w: role must be \"owner\" or \"member\"", ErrInvalid)
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO memberships (org_id, user_id, role) VALUES (?, ?, ?)
		ON CONFLICT (org_id, user_id) DO UPDATE SET role = excluded.role`, orgID, userID, role)
	if err != nil {
		return fmt.Errorf("store: set membership: %w", err)
	}
	return nil
}

// Role returns a user's role in an organisation, or "" if not a member.
func (s *Store) Role(ctx context.Context, orgID, userID int64) (string, error) {
	var role string
	err := s.r.QueryRowContext(ctx, `SELECT role FROM memberships WHERE org_id = ? AND user_id = ?`, orgID, userID).Scan(&role)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("store: role: %w", err)
	}
	return role, nil
}

// AuditEvent records who did what, when.
type AuditEvent struct {
	ID     int64
	At     time.Time
	Actor  string
	Action string
	Target string
	Detail string
}

// Audit appends an audit event. Failures are returned but callers usually
// only log them.
func (s *Store) Audit(ctx context.Context, actor, action, target, detail string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO audit_events (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`,
		micros(s.now()), actor, action, target, detail)
	if err != nil {
		return fmt.Errorf("store: audit: %w", err)
	}
	return nil
}

// AuditEvents returns the newest audit events first.
func (s *Store) AuditEvents(ctx context.Context, limit int) ([]AuditEvent, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, at, actor, action, target, detail FROM audit_events ORDER BY id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, fmt.Errorf("store: audit events: %w", err)
	}
	defer rows.Close()
	var out []AuditEvent
	for rows.Next() {
		var e AuditEvent
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, err
		}
		e.At = fromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
