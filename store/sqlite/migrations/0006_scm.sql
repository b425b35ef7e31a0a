-- SCM configurations, users' connections and OAuth states (issue 12,
-- docs/api.md §10). client_secret, access_token (configurations and
-- connections), refresh_token and verifier hold sealed values
-- (store.Sealer, with the row and column as associated data); times are
-- Unix microseconds, 0 for never.
CREATE TABLE scm_configs (
    id                    INTEGER PRIMARY KEY,
    name                  TEXT    NOT NULL UNIQUE COLLATE NOCASE,
    kind                  TEXT    NOT NULL,
    mode                  TEXT    NOT NULL DEFAULT 'webhook',
    website_url           TEXT    NOT NULL,
    api_url               TEXT    NOT NULL,
    ssh_url               TEXT    NOT NULL,
    client_id             TEXT    NOT NULL DEFAULT '',
    client_secret         BLOB,
    project_key           TEXT    NOT NULL DEFAULT '',
    access_token          BLOB,
    allowed_owners        TEXT    NOT NULL DEFAULT '', -- newline-separated
    known_hosts           TEXT    NOT NULL DEFAULT '',
    host_key_fingerprints TEXT    NOT NULL DEFAULT '', -- newline-separated
    created_at            INTEGER NOT NULL,
    updated_at            INTEGER NOT NULL
);
-- One Bitbucket Server configuration per (website_url, project_key).
CREATE UNIQUE INDEX scm_configs_bitbucket_project ON scm_configs (website_url, project_key) WHERE kind = 'bitbucket-server';

CREATE TABLE scm_connections (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    config_id     INTEGER NOT NULL REFERENCES scm_configs(id) ON DELETE CASCADE,
    login         TEXT    NOT NULL DEFAULT '',
    access_token  BLOB    NOT NULL,
    refresh_token BLOB,
    token_type    TEXT    NOT NULL DEFAULT '',
    expires_at    INTEGER NOT NULL DEFAULT 0,
    version       INTEGER NOT NULL DEFAULT 1, -- guards token refreshes
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL,
    UNIQUE (user_id, config_id)
);

-- Pending OAuth authorizations: single-use (consumed by DELETE ...
-- RETURNING), bound to a user and a configuration, short-lived. state_hash
-- is the SHA-256 of the state sent to the provider.
CREATE TABLE scm_oauth_states (
    id         INTEGER PRIMARY KEY,
    state_hash TEXT    NOT NULL UNIQUE,
    user_id    INTEGER NOT NULL REFERENCES accounts(id) ON DELETE CASCADE,
    config_id  INTEGER NOT NULL REFERENCES scm_configs(id) ON DELETE CASCADE,
    verifier   BLOB    NOT NULL,
    return_to  TEXT    NOT NULL DEFAULT '',
    expires_at INTEGER NOT NULL
);
CREATE INDEX scm_oauth_states_expires ON scm_oauth_states (expires_at);

-- The configuration a provider-hosted repository was created through
-- (NULL: a plain mirror).
ALTER TABLE mirrors ADD COLUMN scm_config_id INTEGER REFERENCES scm_configs(id);
CREATE INDEX mirrors_scm_config ON mirrors (scm_config_id);
