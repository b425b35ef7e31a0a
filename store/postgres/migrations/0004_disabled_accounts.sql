-- Issue 10: an admin disables an account; its password, tokens and SSH keys
-- stop working on the next request (every credential check reads it).
ALTER TABLE accounts ADD COLUMN disabled BIGINT  NOT NULL DEFAULT 0;
