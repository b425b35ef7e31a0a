package store

import (
	"context"
	"crypto/rsa"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/ssh"
)

// Key is an SSH public key: either a user's key (UserID set) or a deploy
// key of one repository (RepoID set).
type Key struct {
	ID          int64
	UserID      int64 // 0 for deploy keys
	RepoID      int64 // 0 for user keys
	Title       string
	Fingerprint string // SHA256:... as printed by ssh-keygen -l
	PublicKey   string // authorized_keys form, without comment
	ReadOnly    bool   // deploy keys only
	CreatedAt   time.Time
}

// NewKey describes a key to add. Exactly one of UserID and RepoID is set.
// The caller parses and normalises the key text.
type NewKey struct {
	UserID      int64
	RepoID      int64
	Title       string
	Fingerprint string
	PublicKey   string
	ReadOnly    bool
}

const keyCols = `id, COALESCE(user_id, 0), COALESCE(repo_id, 0), title, fingerprint, public_key, read_only, created_at`

func scanKey(row interface{ Scan(...any) error }) (Key, error) {
	var k Key
	var created int64
	if err := row.Scan(&k.ID, &k.UserID, &k.RepoID, &k.Title, &k.Fingerprint, &k.PublicKey, &k.ReadOnly, &created); err != nil {
		return Key{}, err
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
func (s *Store) AddKey(ctx context.Context, nk NewKey) (Key, error) {
	if (nk.UserID == 0) == (nk.RepoID == 0) {
		return Key{}, fmt.Errorf("%w: a key belongs to a user or to a repository", ErrInvalid)
	}
	if nk.Title == "" {
		nk.Title = "key"
	}
	if len(nk.Title) > 200 {
		return Key{}, fmt.Errorf("%w: title longer than 200 characters", ErrInvalid)
	}
	if nk.UserID != 0 {
		nk.ReadOnly = false
	}
	now := s.now().UTC()
	res, err := s.w.ExecContext(ctx, `INSERT INTO ssh_keys (user_id, repo_id, title, fingerprint, public_key, read_only, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		nullID(nk.UserID), nullID(nk.RepoID), nk.Title, nk.Fingerprint, nk.PublicKey, nk.ReadOnly, micros(now))
	if isUniqueErr(err) {
		return Key{}, fmt.Errorf("%w: this key is already in use (fingerprint %s)", ErrExists, nk.Fingerprint)
	}
	if err != nil {
		return Key{}, fmt.Errorf("store: add key: %w", err)
	}
	id, _ := res.LastInsertId()
	return Key{ID: id, UserID: nk.UserID, RepoID: nk.RepoID, Title: nk.Title, Fingerprint: nk.Fingerprint,
		PublicKey: nk.PublicKey, ReadOnly: nk.ReadOnly, CreatedAt: fromMicros(micros(now))}, nil
}

// KeyByFingerprint finds a key by its SHA256 fingerprint.
func (s *Store) KeyByFingerprint(ctx context.Context, fp string) (Key, error) {
	k, err := scanKey(s.r.QueryRowContext(ctx, `SELECT `+keyCols+` FROM ssh_keys WHERE fingerprint = ?`, fp))
	if errors.Is(err, sql.ErrNoRows) {
		return Key{}, fmt.Errorf("%w: key %s", ErrNotFound, fp)
	}
	if err != nil {
		return Key{}, fmt.Errorf("store: key: %w", err)
	}
	return k, nil
}

// UserKeys lists a user's keys.
func (s *Store) UserKeys(ctx context.Context, userID int64) ([]Key, error) {
	return s.keys(ctx, `SELECT `+keyCols+` FROM ssh_keys WHERE user_id = ? ORDER BY id`, userID)
}

// DeployKeys lists a repository's deploy keys.
func (s *Store) DeployKeys(ctx context.Context, repoID int64) ([]Key, error) {
	return s.keys(ctx, `SELECT `+keyCols+` FROM ssh_keys WHERE repo_id = ? ORDER BY id`, repoID)
}

func (s *Store) keys(ctx context.Context, q string, arg int64) ([]Key, error) {
	rows, err := s.r.QueryContext(ctx, q, arg)
	if err != nil {
		return nil, fmt.Errorf("store: keys: %w", err)
	}
	defer rows.Close()
	out := []Key{}
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
func (s *Store) DeleteUserKey(ctx context.Context, userID, id int64) error {
	return s.deleteKey(ctx, `DELETE FROM ssh_keys WHERE id = ? AND user_id = ?`, id, userID)
}

// DeleteDeployKey removes deploy key id of repository repoID.
func (s *Store) DeleteDeployKey(ctx context.Context, repoID, id int64) error {
	return s.deleteKey(ctx, `DELETE FROM ssh_keys WHERE id = ? AND repo_id = ?`, id, repoID)
}

func (s *Store) deleteKey(ctx context.Context, q string, id, owner int64) error {
	res, err := s.w.ExecContext(ctx, q, id, owner)
	if err != nil {
		return fmt.Errorf("store: delete key: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%w: key %d", ErrNotFound, id)
	}
	return nil
}

// ParsedKey is a validated SSH public key.
type ParsedKey struct {
	Fingerprint string // SHA256:...
	PublicKey   string // "<type> <base64>", comment dropped
	Comment     string
}

// ParseSSHKey validates one public key in authorized_keys form
// ("ssh-ed25519 AAAA... comment"). Options and multiple keys are refused.
func ParseSSHKey(text string) (ParsedKey, error) {
	text = strings.TrimSpace(text)
	if text == "" || len(text) > 16<<10 || strings.ContainsAny(text, "\r\n") {
		return ParsedKey{}, fmt.Errorf("%w: key must be one line in authorized_keys form, e.g. \"ssh-ed25519 AAAA... comment\"", ErrInvalid)
	}
	pk, comment, options, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return ParsedKey{}, fmt.Errorf("%w: not an SSH public key (expected e.g. \"ssh-ed25519 AAAA... comment\")", ErrInvalid)
	}
	if len(options) > 0 || len(strings.TrimSpace(string(rest))) > 0 {
		return ParsedKey{}, fmt.Errorf("%w: key options and multiple keys are not accepted", ErrInvalid)
	}
	if pk.Type() == "ssh-dss" { // DSA (ssh.KeyAlgoDSA, deprecated for this very reason)
		return ParsedKey{}, fmt.Errorf("%w: DSA keys are not accepted", ErrInvalid)
	}
	if ck, ok := pk.(ssh.CryptoPublicKey); ok {
		if rk, ok := ck.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
			return ParsedKey{}, fmt.Errorf("%w: RSA keys must have at least 2048 bits", ErrInvalid)
		}
	}
	return ParsedKey{
		Fingerprint: ssh.FingerprintSHA256(pk),
		PublicKey:   strings.TrimSpace(string(ssh.MarshalAuthorizedKey(pk))),
		Comment:     comment,
	}, nil
}
