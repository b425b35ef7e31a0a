-- The remote repository of a provider-hosted repository (issue 12,
-- docs/api.md §10): its stable id on the provider (renames and transfers
-- keep it), full name, web page and default branch as last seen, and the
-- user whose connection created it (deletion and repair act with it when
-- the acting user has no connection). All '' / NULL for a plain mirror.
ALTER TABLE mirrors ADD COLUMN remote_id TEXT NOT NULL DEFAULT '';
ALTER TABLE mirrors ADD COLUMN remote_full_name TEXT NOT NULL DEFAULT '';
ALTER TABLE mirrors ADD COLUMN remote_html_url TEXT NOT NULL DEFAULT '';
ALTER TABLE mirrors ADD COLUMN remote_default_branch TEXT NOT NULL DEFAULT '';
ALTER TABLE mirrors ADD COLUMN remote_user_id BIGINT  REFERENCES accounts(id) ON DELETE SET NULL;
