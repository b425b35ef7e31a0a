-- The database, not the single writer, enforces "one build per commit" (an
-- enqueue inserts with ON CONFLICT DO NOTHING) and "a build is published
-- once" (issue 9: several writers may share the database). Earlier versions
-- checked both before writing under SQLite's single writer, so no existing
-- database holds a duplicate.
CREATE UNIQUE INDEX builds_one_per_commit ON builds (repo_id, commit_id);
CREATE UNIQUE INDEX versions_one_per_build ON versions (build_id);
