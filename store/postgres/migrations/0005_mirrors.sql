-- Mirrored repositories (issue 11, docs/api.md §9). private_key and
-- webhook_secret hold sealed values (store.Sealer, with the row and column
-- as associated data); times are Unix microseconds, 0 for never.
CREATE TABLE mirrors (
    repo_id               BIGINT PRIMARY KEY REFERENCES repos(id),
    url                   TEXT    NOT NULL,
    public_key            TEXT    NOT NULL,
    private_key           BYTEA    NOT NULL,
    known_hosts           TEXT    NOT NULL,
    host_key_fingerprints TEXT    NOT NULL, -- newline-separated
    hook_id               TEXT    NOT NULL UNIQUE,
    webhook_secret        BYTEA    NOT NULL,
    provider              TEXT    NOT NULL DEFAULT '',
    interval_seconds      BIGINT  NOT NULL,
    status                TEXT    NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'syncing', 'error')),
    last_sync_at          BIGINT  NOT NULL DEFAULT 0,
    last_error_code       TEXT    NOT NULL DEFAULT '',
    last_error_message    TEXT    NOT NULL DEFAULT '',
    last_rewrite          TEXT    NOT NULL DEFAULT '',
    last_delivery_at      BIGINT  NOT NULL DEFAULT 0,
    next_sync_at          BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX mirrors_next_sync ON mirrors (next_sync_at);

-- Inbound webhook deliveries seen, for replay deduplication; pruned after
-- store.MirrorDeliveryRetention.
CREATE TABLE mirror_deliveries (
    hook_id     TEXT    NOT NULL,
    delivery_id TEXT    NOT NULL,
    received_at BIGINT  NOT NULL,
    UNIQUE (hook_id, delivery_id)
);
CREATE INDEX mirror_deliveries_received ON mirror_deliveries (received_at);
