-- Issue 16: single sign-on with OpenID Connect (docs/decisions.md "Single
-- sign-on"). A user account linked to a provider's identity (the ID token's
-- issuer and subject; one link per account, one account per identity). The
-- latest refresh token is sealed (aad "oidc_links.refresh_token:<user_id>");
-- generation counts its writes and refreshed_at is the last sign-in or
-- refresh claim (microseconds, as every timestamp here).
CREATE TABLE oidc_links (
    user_id       INTEGER PRIMARY KEY REFERENCES accounts(id) ON DELETE CASCADE,
    issuer        TEXT    NOT NULL,
    subject       TEXT    NOT NULL,
    refresh_token BLOB,
    generation    INTEGER NOT NULL DEFAULT 0,
    refreshed_at  INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    UNIQUE (issuer, subject)
);

-- Pending sign-ins: single-use (consumed by DELETE ... RETURNING),
-- short-lived. state_hash is the SHA-256 of the state sent to the provider;
-- the PKCE verifier is sealed (aad "oidc_states.verifier:<id>").
CREATE TABLE oidc_states (
    id         INTEGER PRIMARY KEY,
    state_hash TEXT    NOT NULL UNIQUE,
    nonce      TEXT    NOT NULL,
    verifier   BLOB    NOT NULL,
    return_to  TEXT    NOT NULL DEFAULT '',
    expires_at INTEGER NOT NULL
);
CREATE INDEX oidc_states_expires ON oidc_states (expires_at);
