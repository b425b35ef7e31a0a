package sqlcore

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"gitserver/store"
)

// sealIn seals a secret of table.column in row id; "" is stored as NULL.
func (s *Core) sealIn(table, column string, id int64, plain string) ([]byte, error) {
	if plain == "" {
		return nil, nil
	}
	if s.sealer == nil {
		return []byte(plain), nil
	}
	out, err := s.sealer.Seal([]byte(plain), sealAAD(table, column, id))
	if err != nil {
		return nil, fmt.Errorf("store: seal %s.%s: %w", table, column, err)
	}
	return out, nil
}

// openIn opens a value sealIn sealed; NULL or empty is "".
func (s *Core) openIn(table, column string, id int64, sealed []byte) (string, error) {
	if len(sealed) == 0 {
		return "", nil
	}
	if s.sealer == nil {
		return string(sealed), nil
	}
	out, err := s.sealer.Open(sealed, sealAAD(table, column, id))
	if err != nil {
		// Never the value, nor the sealer's detail.
		return "", fmt.Errorf("store: %s.%s of row %d cannot be opened with this sealing key", table, column, id)
	}
	return string(out), nil
}

func splitLines(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, "\n")
}

const scmConfigCols = `id, name, kind, mode, website_url, api_url, ssh_url, client_id, client_secret, project_key, access_token,
	allowed_owners, known_hosts, host_key_fingerprints, created_at, updated_at`

func (s *Core) scanSCMConfig(row scanner) (store.SCMConfig, error) {
	var c store.SCMConfig
	var secret, token []byte
	var owners, fps string
	var created, updated int64
	if err := row.Scan(&c.ID, &c.Name, &c.Kind, &c.Mode, &c.WebsiteURL, &c.APIURL, &c.SSHURL, &c.ClientID, &secret, &c.ProjectKey, &token,
		&owners, &c.KnownHosts, &fps, &created, &updated); err != nil {
		return store.SCMConfig{}, err
	}
	var err error
	if c.ClientSecret, err = s.openIn("scm_configs", "client_secret", c.ID, secret); err != nil {
		return store.SCMConfig{}, err
	}
	if c.AccessToken, err = s.openIn("scm_configs", "access_token", c.ID, token); err != nil {
		return store.SCMConfig{}, err
	}
	c.AllowedOwners, c.HostKeyFingerprints = splitLines(owners), splitLines(fps)
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return c, nil
}

func (s *Core) scmConfigByID(ctx context.Context, q querier, id int64) (store.SCMConfig, error) {
	c, err := s.scanSCMConfig(q.QueryRowContext(ctx, `SELECT `+scmConfigCols+` FROM scm_configs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return store.SCMConfig{}, store.Errorf(store.ErrNotFound, "no SCM configuration with id %d", id)
	}
	if err != nil {
		return store.SCMConfig{}, wrapUnlessSentinel("scm configuration", err)
	}
	return c, nil
}

// scmConfigExists is the ErrExists of a unique violation on scm_configs.
func scmConfigExists(c store.SCMConfig) error {
	if c.Kind == store.SCMBitbucketServer {
		return store.Errorf(store.ErrExists, "an SCM configuration named %q, or of Bitbucket Server %s with project %s, exists", c.Name, c.WebsiteURL, c.ProjectKey)
	}
	return store.Errorf(store.ErrExists, "an SCM configuration named %q exists", c.Name)
}

// writeSCMConfig writes every field of c into row c.ID (inserted first
// when insert).
func (s *Core) writeSCMConfig(ctx context.Context, tx Q, c *store.SCMConfig, insert bool) error {
	now := micros(s.now())
	if insert {
		err := tx.QueryRowContext(ctx, `INSERT INTO scm_configs (name, kind, mode, website_url, api_url, ssh_url, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`, c.Name, c.Kind, c.Mode, c.WebsiteURL, c.APIURL, c.SSHURL, now, now).Scan(&c.ID)
		if s.e.IsUnique(err) {
			return scmConfigExists(*c)
		}
		if err != nil {
			return fmt.Errorf("store: create scm configuration: %w", err)
		}
	}
	secret, err := s.sealIn("scm_configs", "client_secret", c.ID, c.ClientSecret)
	if err != nil {
		return err
	}
	token, err := s.sealIn("scm_configs", "access_token", c.ID, c.AccessToken)
	if err != nil {
		return err
	}
	res, err := tx.ExecContext(ctx, `UPDATE scm_configs SET name = ?, kind = ?, mode = ?, website_url = ?, api_url = ?, ssh_url = ?,
		client_id = ?, client_secret = ?, project_key = ?, access_token = ?, allowed_owners = ?, known_hosts = ?, host_key_fingerprints = ?,
		updated_at = ? WHERE id = ?`,
		c.Name, c.Kind, c.Mode, c.WebsiteURL, c.APIURL, c.SSHURL, c.ClientID, secret, c.ProjectKey, token,
		strings.Join(c.AllowedOwners, "\n"), c.KnownHosts, strings.Join(c.HostKeyFingerprints, "\n"), now, c.ID)
	if s.e.IsUnique(err) {
		return scmConfigExists(*c)
	}
	if err != nil {
		return fmt.Errorf("store: write scm configuration: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.Errorf(store.ErrNotFound, "no SCM configuration with id %d", c.ID)
	}
	return nil
}

// CreateSCMConfig records a configuration.
func (s *Core) CreateSCMConfig(ctx context.Context, c store.SCMConfig, audit ...store.AuditEntry) (store.SCMConfig, error) {
	return s.saveSCMConfig(ctx, c, true, audit)
}

// UpdateSCMConfig replaces a configuration.
func (s *Core) UpdateSCMConfig(ctx context.Context, c store.SCMConfig, audit ...store.AuditEntry) (store.SCMConfig, error) {
	return s.saveSCMConfig(ctx, c, false, audit)
}

// saveSCMConfig writes c (inserting it first when insert is set), reads it
// back and records audit, all in one transaction.
func (s *Core) saveSCMConfig(ctx context.Context, c store.SCMConfig, insert bool, audit []store.AuditEntry) (store.SCMConfig, error) {
	var out store.SCMConfig
	err := s.tx(ctx, func(tx Q) error {
		cc := c
		if err := s.writeSCMConfig(ctx, tx, &cc, insert); err != nil {
			return err
		}
		var err error
		if out, err = s.scmConfigByID(ctx, tx, cc.ID); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.SCMConfig{}, err
	}
	return out, nil
}

// SCMConfigByID returns one configuration.
func (s *Core) SCMConfigByID(ctx context.Context, id int64) (store.SCMConfig, error) {
	return s.scmConfigByID(ctx, s.r, id)
}

// SCMConfigs lists every configuration.
func (s *Core) SCMConfigs(ctx context.Context) ([]store.SCMConfig, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+scmConfigCols+` FROM scm_configs ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: scm configurations: %w", err)
	}
	defer rows.Close()
	out := []store.SCMConfig{}
	for rows.Next() {
		c, err := s.scanSCMConfig(rows)
		if err != nil {
			return nil, wrapUnlessSentinel("scm configurations", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

type queryer interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func scmConfigRepos(ctx context.Context, q queryer, id int64) ([]store.Repo, error) {
	rows, err := q.QueryContext(ctx, `SELECT `+repoCols+` FROM mirrors m JOIN repos r ON r.id = m.repo_id JOIN accounts a ON a.id = r.owner_id
		WHERE m.scm_config_id = ? ORDER BY r.id`, id)
	if err != nil {
		return nil, fmt.Errorf("store: repositories of scm configuration: %w", err)
	}
	defer rows.Close()
	out := []store.Repo{}
	for rows.Next() {
		r, err := scanRepo(rows)
		if err != nil {
			return nil, fmt.Errorf("store: repositories of scm configuration: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// SCMConfigRepos lists the repositories created through a configuration.
func (s *Core) SCMConfigRepos(ctx context.Context, id int64) ([]store.Repo, error) {
	return scmConfigRepos(ctx, s.r, id)
}

// LinkMirrorSCMConfig links (or unlinks) a mirror and a configuration.
func (s *Core) LinkMirrorSCMConfig(ctx context.Context, repoID, configID int64, audit ...store.AuditEntry) error {
	return s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `UPDATE mirrors SET scm_config_id = ? WHERE repo_id = ?`, nullID(configID), repoID)
		if s.e.IsForeignKey(err) {
			return store.Errorf(store.ErrNotFound, "no SCM configuration with id %d", configID)
		}
		if err != nil {
			return fmt.Errorf("store: link mirror: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.Errorf(store.ErrNotFound, "repository %d is not a mirror", repoID)
		}
		return s.writeAudit(ctx, tx, audit)
	})
}

// SetMirrorRemote records a mirror's remote repository and configuration.
func (s *Core) SetMirrorRemote(ctx context.Context, repoID, configID int64, r store.MirrorRemote, audit ...store.AuditEntry) error {
	return s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `UPDATE mirrors SET scm_config_id = ?, remote_id = ?, remote_full_name = ?, remote_html_url = ?,
			remote_default_branch = ?, remote_user_id = ? WHERE repo_id = ?`,
			configID, truncate(r.ID, 200), truncate(r.FullName, 400), truncate(r.HTMLURL, 2048), truncate(r.DefaultBranch, 255), nullID(r.UserID), repoID)
		if s.e.IsForeignKey(err) {
			return store.Errorf(store.ErrNotFound, "no SCM configuration with id %d or no user with id %d", configID, r.UserID)
		}
		if err != nil {
			return fmt.Errorf("store: set mirror remote: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.Errorf(store.ErrNotFound, "repository %d is not a mirror", repoID)
		}
		return s.writeAudit(ctx, tx, audit)
	})
}

// RelocateMirror records a hosted mirror's moved remote.
func (s *Core) RelocateMirror(ctx context.Context, repoID int64, url string, r store.MirrorRemote, audit ...store.AuditEntry) error {
	if len(url) > 2048 {
		return store.Errorf(store.ErrInvalid, "mirror url is longer than 2048 bytes")
	}
	return s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `UPDATE mirrors SET url = CASE WHEN ? = '' THEN url ELSE ? END, remote_id = ?, remote_full_name = ?,
			remote_html_url = ?, remote_default_branch = ?, remote_user_id = ? WHERE repo_id = ?`,
			url, url, truncate(r.ID, 200), truncate(r.FullName, 400), truncate(r.HTMLURL, 2048), truncate(r.DefaultBranch, 255), nullID(r.UserID), repoID)
		if s.e.IsForeignKey(err) {
			return store.Errorf(store.ErrNotFound, "no user with id %d", r.UserID)
		}
		if err != nil {
			return fmt.Errorf("store: relocate mirror: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.Errorf(store.ErrNotFound, "repository %d is not a mirror", repoID)
		}
		return s.writeAudit(ctx, tx, audit)
	})
}

// DeleteSCMConfig removes a configuration unless repositories use it (or
// force unlinks them).
func (s *Core) DeleteSCMConfig(ctx context.Context, id int64, force bool, audit ...store.AuditEntry) ([]store.Repo, error) {
	var unlinked []store.Repo
	err := s.tx(ctx, func(tx Q) error {
		c, err := s.scmConfigByID(ctx, tx, id)
		if err != nil {
			return err
		}
		repos, err := scmConfigRepos(ctx, tx, id)
		if err != nil {
			return err
		}
		if len(repos) > 0 && !force {
			names := make([]string, len(repos))
			for i, r := range repos {
				names[i] = r.FullName()
			}
			return store.Errorf(store.ErrConflict, "SCM configuration %q is used by %d repositories: %s; delete them first, or delete with force=true to turn them into plain mirrors",
				c.Name, len(repos), strings.Join(names, ", "))
		}
		if force {
			if _, err := tx.ExecContext(ctx, `UPDATE mirrors SET scm_config_id = NULL WHERE scm_config_id = ?`, id); err != nil {
				return fmt.Errorf("store: delete scm configuration: %w", err)
			}
		}
		// The guard is in the statement: a mirror linked since the read
		// keeps the configuration.
		res, err := tx.ExecContext(ctx, `DELETE FROM scm_configs WHERE id = ? AND NOT EXISTS (SELECT 1 FROM mirrors WHERE scm_config_id = ?)`, id, id)
		if err != nil {
			return fmt.Errorf("store: delete scm configuration: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return errRetry
		}
		unlinked = repos
		return s.writeAudit(ctx, tx, audit)
	})
	if errors.Is(err, errRetry) {
		return nil, store.Errorf(store.ErrConflict, "SCM configuration %d changed during its deletion; try again", id)
	}
	if err != nil {
		return nil, err
	}
	return unlinked, nil
}

const scmConnCols = `id, user_id, config_id, login, access_token, refresh_token, token_type, expires_at, version, created_at, updated_at`

func (s *Core) scanSCMConnection(row scanner) (store.SCMConnection, error) {
	var c store.SCMConnection
	var id, expires, created, updated int64
	var access, refresh []byte
	if err := row.Scan(&id, &c.UserID, &c.ConfigID, &c.Login, &access, &refresh, &c.TokenType, &expires, &c.Version, &created, &updated); err != nil {
		return store.SCMConnection{}, err
	}
	var err error
	if c.AccessToken, err = s.openIn("scm_connections", "access_token", id, access); err != nil {
		return store.SCMConnection{}, err
	}
	if c.RefreshToken, err = s.openIn("scm_connections", "refresh_token", id, refresh); err != nil {
		return store.SCMConnection{}, err
	}
	c.Expiry, c.CreatedAt, c.UpdatedAt = fromMicros(expires), fromMicros(created), fromMicros(updated)
	return c, nil
}

func (s *Core) scmConnection(ctx context.Context, q querier, userID, configID int64) (store.SCMConnection, error) {
	c, err := s.scanSCMConnection(q.QueryRowContext(ctx, `SELECT `+scmConnCols+` FROM scm_connections WHERE user_id = ? AND config_id = ?`, userID, configID))
	if errors.Is(err, sql.ErrNoRows) {
		return store.SCMConnection{}, store.Errorf(store.ErrNotFound, "not connected to SCM configuration %d", configID)
	}
	if err != nil {
		return store.SCMConnection{}, wrapUnlessSentinel("scm connection", err)
	}
	return c, nil
}

// writeTokens seals and writes the tokens of connection row id.
func (s *Core) writeTokens(ctx context.Context, tx Q, id int64, tok store.SCMToken) error {
	access, err := s.sealIn("scm_connections", "access_token", id, tok.AccessToken)
	if err != nil {
		return err
	}
	refresh, err := s.sealIn("scm_connections", "refresh_token", id, tok.RefreshToken)
	if err != nil {
		return err
	}
	if access == nil {
		access = []byte{}
	}
	_, err = tx.ExecContext(ctx, `UPDATE scm_connections SET access_token = ?, refresh_token = ?, token_type = ?, expires_at = ? WHERE id = ?`,
		access, refresh, tok.TokenType, micros(tok.Expiry), id)
	if err != nil {
		return fmt.Errorf("store: scm connection tokens: %w", err)
	}
	return nil
}

// PutSCMConnection creates or replaces a connection.
func (s *Core) PutSCMConnection(ctx context.Context, c store.SCMConnection, audit ...store.AuditEntry) (store.SCMConnection, error) {
	if c.AccessToken == "" {
		return store.SCMConnection{}, store.Errorf(store.ErrInvalid, "a connection needs an access token")
	}
	var out store.SCMConnection
	err := s.tx(ctx, func(tx Q) error {
		now := micros(s.now())
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO scm_connections (user_id, config_id, login, access_token, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (user_id, config_id) DO UPDATE SET login = excluded.login, version = scm_connections.version + 1, updated_at = excluded.updated_at
			RETURNING id`, c.UserID, c.ConfigID, truncate(c.Login, 200), emptyBlob, now, now).Scan(&id)
		if s.e.IsForeignKey(err) {
			return store.Errorf(store.ErrNotFound, "no such user or SCM configuration")
		}
		if err != nil {
			return fmt.Errorf("store: put scm connection: %w", err)
		}
		if err := s.writeTokens(ctx, tx, id, store.SCMToken{AccessToken: c.AccessToken, RefreshToken: c.RefreshToken, TokenType: c.TokenType, Expiry: c.Expiry}); err != nil {
			return err
		}
		if out, err = s.scmConnection(ctx, tx, c.UserID, c.ConfigID); err != nil {
			return err
		}
		return s.writeAudit(ctx, tx, audit)
	})
	if err != nil {
		return store.SCMConnection{}, err
	}
	return out, nil
}

// SCMConnection returns one connection.
func (s *Core) SCMConnection(ctx context.Context, userID, configID int64) (store.SCMConnection, error) {
	return s.scmConnection(ctx, s.r, userID, configID)
}

// SCMConnections lists a user's connections.
func (s *Core) SCMConnections(ctx context.Context, userID int64) ([]store.SCMConnection, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+scmConnCols+` FROM scm_connections WHERE user_id = ? ORDER BY config_id`, userID)
	if err != nil {
		return nil, fmt.Errorf("store: scm connections: %w", err)
	}
	defer rows.Close()
	out := []store.SCMConnection{}
	for rows.Next() {
		c, err := s.scanSCMConnection(rows)
		if err != nil {
			return nil, wrapUnlessSentinel("scm connections", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UpdateSCMToken replaces a connection's tokens over the version read.
func (s *Core) UpdateSCMToken(ctx context.Context, userID, configID, version int64, tok store.SCMToken) (store.SCMConnection, error) {
	if tok.AccessToken == "" {
		return store.SCMConnection{}, store.Errorf(store.ErrInvalid, "a connection needs an access token")
	}
	var out store.SCMConnection
	err := s.tx(ctx, func(tx Q) error {
		var id int64
		err := tx.QueryRowContext(ctx, `UPDATE scm_connections SET version = version + 1, updated_at = ?
			WHERE user_id = ? AND config_id = ? AND version = ? RETURNING id`, micros(s.now()), userID, configID, version).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			if _, err := s.scmConnection(ctx, tx, userID, configID); err != nil {
				return err
			}
			return store.Errorf(store.ErrConflict, "the connection's tokens changed meanwhile")
		}
		if err != nil {
			return fmt.Errorf("store: update scm token: %w", err)
		}
		if err := s.writeTokens(ctx, tx, id, tok); err != nil {
			return err
		}
		out, err = s.scmConnection(ctx, tx, userID, configID)
		return err
	})
	if err != nil {
		return store.SCMConnection{}, err
	}
	return out, nil
}

// DeleteSCMConnection removes a connection.
func (s *Core) DeleteSCMConnection(ctx context.Context, userID, configID int64, audit ...store.AuditEntry) error {
	return s.tx(ctx, func(tx Q) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM scm_connections WHERE user_id = ? AND config_id = ?`, userID, configID)
		if err != nil {
			return fmt.Errorf("store: delete scm connection: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return store.Errorf(store.ErrNotFound, "not connected to SCM configuration %d", configID)
		}
		return s.writeAudit(ctx, tx, audit)
	})
}

func stateHash(state string) string {
	h := sha256.Sum256([]byte("gitserver oauth state\x00" + state))
	return hex.EncodeToString(h[:])
}

// CreateOAuthState stores a pending authorization.
func (s *Core) CreateOAuthState(ctx context.Context, st store.OAuthState) error {
	if st.State == "" || st.Verifier == "" {
		return store.Errorf(store.ErrInvalid, "an OAuth state needs a state and a verifier")
	}
	return s.tx(ctx, func(tx Q) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM scm_oauth_states WHERE expires_at < ?`, micros(s.now())); err != nil {
			return fmt.Errorf("store: oauth state: %w", err)
		}
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO scm_oauth_states (state_hash, user_id, config_id, verifier, return_to, expires_at)
			VALUES (?, ?, ?, ?, ?, ?) RETURNING id`, stateHash(st.State), st.UserID, st.ConfigID, emptyBlob, truncate(st.ReturnTo, 2048), micros(st.ExpiresAt)).Scan(&id)
		if s.e.IsForeignKey(err) {
			return store.Errorf(store.ErrNotFound, "no such user or SCM configuration")
		}
		if s.e.IsUnique(err) {
			return store.Errorf(store.ErrExists, "OAuth state exists")
		}
		if err != nil {
			return fmt.Errorf("store: oauth state: %w", err)
		}
		v, err := s.sealIn("scm_oauth_states", "verifier", id, st.Verifier)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE scm_oauth_states SET verifier = ? WHERE id = ?`, v, id); err != nil {
			return fmt.Errorf("store: oauth state: %w", err)
		}
		return nil
	})
}

// ConsumeOAuthState removes and returns a pending authorization, once.
func (s *Core) ConsumeOAuthState(ctx context.Context, state string) (store.OAuthState, error) {
	var out store.OAuthState
	var expired bool
	err := s.tx(ctx, func(tx Q) error {
		expired = false
		var id, expires int64
		var verifier []byte
		// The DELETE is the guard: of any number of consumers, one gets
		// the row.
		err := tx.QueryRowContext(ctx, `DELETE FROM scm_oauth_states WHERE state_hash = ? RETURNING id, user_id, config_id, verifier, return_to, expires_at`,
			stateHash(state)).Scan(&id, &out.UserID, &out.ConfigID, &verifier, &out.ReturnTo, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return store.Errorf(store.ErrNotFound, "unknown or already used OAuth state")
		}
		if err != nil {
			return fmt.Errorf("store: consume oauth state: %w", err)
		}
		out.ExpiresAt = fromMicros(expires)
		if !s.now().Before(out.ExpiresAt) {
			expired = true // deleted all the same
			return nil
		}
		if out.Verifier, err = s.openIn("scm_oauth_states", "verifier", id, verifier); err != nil {
			return err
		}
		out.State = state
		return nil
	})
	if err != nil {
		return store.OAuthState{}, err
	}
	if expired {
		return store.OAuthState{}, store.Errorf(store.ErrNotFound, "the OAuth state expired")
	}
	return out, nil
}
