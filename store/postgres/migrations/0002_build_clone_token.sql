-- A claim hands the worker a clone token: a read-only credential for the
-- build's repository that lives as long as the lease. Only its SHA-256 is
-- kept; it is written by the claim's UPDATE and cleared when the build
-- leaves 'running'.
ALTER TABLE builds ADD COLUMN clone_token_hash TEXT NOT NULL DEFAULT '';
CREATE INDEX builds_clone_token ON builds (clone_token_hash) WHERE clone_token_hash <> '';
