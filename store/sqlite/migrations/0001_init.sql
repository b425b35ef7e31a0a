-- Accounts are users and organisations; they share one case-insensitive namespace.
CREATE TABLE accounts (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    name          TEXT    NOT NULL COLLATE NOCASE UNIQUE,
    kind          TEXT    NOT NULL CHECK (kind IN ('user', 'org')),
    password_hash TEXT    NOT NULL DEFAULT '',
    is_admin      INTEGER NOT NULL DEFAULT 0,
    created_at    INTEGER NOT NULL
);

CREATE TABLE memberships (
    org_id  INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    user_id INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    role    TEXT    NOT NULL CHECK (role IN ('owner', 'member')),
    PRIMARY KEY (org_id, user_id)
);

CREATE TABLE repos (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    owner_id       INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name           TEXT    NOT NULL COLLATE NOCASE,
    visibility     TEXT    NOT NULL CHECK (visibility IN ('public', 'restricted')),
    default_branch TEXT    NOT NULL,
    created_at     INTEGER NOT NULL,
    UNIQUE (owner_id, name)
);

CREATE TABLE tokens (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id      INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    name         TEXT    NOT NULL,
    hash         TEXT    NOT NULL UNIQUE,
    scopes       TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL DEFAULT 0
);

-- User keys have user_id set; deploy keys have repo_id set. A key (by
-- fingerprint) belongs to exactly one of them.
CREATE TABLE ssh_keys (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER REFERENCES accounts(id) ON DELETE CASCADE,
    repo_id     INTEGER REFERENCES repos(id) ON DELETE CASCADE,
    title       TEXT    NOT NULL,
    fingerprint TEXT    NOT NULL UNIQUE,
    public_key  TEXT    NOT NULL,
    read_only   INTEGER NOT NULL DEFAULT 1,
    created_by  INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL,
    CHECK ((user_id IS NULL) <> (repo_id IS NULL))
);

CREATE TABLE audit_events (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,
    actor  TEXT    NOT NULL,
    action TEXT    NOT NULL,
    target TEXT    NOT NULL,
    detail TEXT    NOT NULL DEFAULT ''
);

CREATE TABLE builds (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id          INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    branch           TEXT    NOT NULL,
    commit_id        TEXT    NOT NULL,
    previous_commit  TEXT    NOT NULL DEFAULT '',
    commit_count     INTEGER NOT NULL,
    status           TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'superseded')),
    attempt          INTEGER NOT NULL DEFAULT 1,
    pushed_by        TEXT    NOT NULL DEFAULT '',
    queued_at        INTEGER NOT NULL,
    started_at       INTEGER NOT NULL DEFAULT 0,
    finished_at      INTEGER NOT NULL DEFAULT 0,
    worker           TEXT    NOT NULL DEFAULT '',
    message          TEXT    NOT NULL DEFAULT '',
    log_url          TEXT    NOT NULL DEFAULT '',
    lease_token      TEXT    NOT NULL DEFAULT '',
    lease_expires_at INTEGER NOT NULL DEFAULT 0,
    lease_seconds    INTEGER NOT NULL DEFAULT 0
);
-- At most one queued build per repository.
CREATE UNIQUE INDEX builds_one_queued ON builds (repo_id) WHERE status = 'queued';
CREATE INDEX builds_repo ON builds (repo_id, id);
CREATE INDEX builds_status ON builds (status, id);

CREATE TABLE versions (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    repo_id       INTEGER NOT NULL REFERENCES repos(id) ON DELETE CASCADE,
    major         INTEGER NOT NULL,
    minor         INTEGER NOT NULL,
    patch         INTEGER NOT NULL,
    commit_id     TEXT    NOT NULL,
    build_id      INTEGER NOT NULL REFERENCES builds(id),
    release_notes TEXT    NOT NULL DEFAULT '',
    published_by  TEXT    NOT NULL,
    published_at  INTEGER NOT NULL,
    UNIQUE (repo_id, major, minor, patch)
);
