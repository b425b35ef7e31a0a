// Package postgres implements store.Store on PostgreSQL (15 or newer),
// through github.com/jackc/pgx/v5: a pgxpool connection pool (Options.MaxConns)
// behind database/sql (pgx's stdlib), so that the statements are those of
// store/sqlcore, shared with store/sqlite, written with ? placeholders and
// rebound to $n. DB embeds *sqlcore.Core and gives it the transactions,
// notifications and error classification below (engine, db.go).
//
// The schema (migrations/*.sql) mirrors store/sqlite's, table for table and
// column for column (BIGINT, TEXT, BYTEA; CITEXT where SQLite says COLLATE
// NOCASE), so that a generic dump moves rows between the two. Open applies
// pending migrations under an advisory lock, so nodes may start together.
//
// Transactions are SERIALIZABLE, the isolation SQLite's single writer
// gives, and are run again on serialization_failure or deadlock_detected;
// the build queue's hot path (claims, heartbeats, completion, lease expiry)
// runs READ COMMITTED, because each of its updates repeats its
// precondition on the row it changes (and claims take the oldest queued
// build FOR UPDATE SKIP LOCKED). Constraint errors are recognised by
// SQLSTATE once (isUniqueErr: 23505, isForeignKeyErr: 23503).
//
// Changed closes when a build becomes claimable through any node: every
// enqueue and lease expiry runs pg_notify in its transaction, and each DB
// holds a dedicated LISTEN connection (reconnected when it drops), which
// also closes Changed after every reconnection and on a fallback timer
// (Options.Recheck), because notifications are best effort.
//
// DB also implements store.Locker (TryLock): a session-level advisory
// lock on a connection of its own, which dies with its holder, so that a
// repository's maintenance and a mirror's sync run on one node at a time.
//
// Dump and Load (store.Dumper, backup.go) read every table in one
// REPEATABLE READ, read-only transaction, and load a dump of either store
// in one transaction, moving each identity past the ids loaded.
//
// Secrets are sealed with Options.Sealer exactly as in store/sqlite
// (sqlcore.SealedColumns). Nothing but cmd/ (and benchmarks and tests)
// imports it.
//
// Imports: gitserver/store, gitserver/store/sqlcore
// Test imports: gitserver/store/postgres/pgtest, gitserver/store/sqlcore, gitserver/store/sqlite, gitserver/store/storetest
package postgres
