-- Issue 13: web sign-in sessions, server-side (docs/decisions.md "Web
-- pages"). The cookie holds a random 256-bit id; only its SHA-256 is
-- stored, so a copy of the database signs no one in. csrf is the session's
-- CSRF token. A session ends when idle or too old (store.SessionIdle,
-- store.SessionMaxAge), on sign-out, and when its user's password changes
-- or the user is disabled.
CREATE TABLE sessions (
	id_hash    TEXT PRIMARY KEY,
	user_id    BIGINT  NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
	csrf       TEXT NOT NULL,
	created_at BIGINT  NOT NULL,
	last_seen  BIGINT  NOT NULL
);
CREATE INDEX sessions_user ON sessions (user_id);
