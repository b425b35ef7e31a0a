// Package sqlite implements store.Store on one SQLite file (the pure-Go
// modernc.org/sqlite driver, so the binary stays static).
//
// Open applies the embedded migrations (migrations/*.sql) in order. Writes
// go through one connection per DB value with BEGIN IMMEDIATE transactions
// and a busy timeout; reads use a separate read-only pool. Correctness does
// not rest on that single writer: two DB values on one file (two
// processes) are as safe as one, because every guard is in the SQL (status
// and lease token in the WHERE clause of each update, unique indexes for
// "one build per commit" and "one queued build per repository", INSERT ...
// ON CONFLICT and RETURNING, constraint errors recognised by their SQLite
// extended code).
//
// The statements themselves are store/sqlcore's, shared with
// store/postgres: DB embeds *sqlcore.Core and gives it the writer's
// transactions and SQLite's constraint errors (engine, db.go).
//
// Secrets (deploy private keys, webhook secrets, OAuth tokens) are stored
// sealed with Options.Sealer, each for the aad "table.column:id"; the
// sealed columns are registered in sqlcore.SealedColumns, which
// ResealAll, the key rotation, walks.
//
// Nothing but cmd/ (and benchmarks and tests) imports it; everything else
// uses store.Store.
//
// Imports: gitserver/store, gitserver/store/sqlcore
// Test imports: gitserver/store/sqlcore, gitserver/store/storetest
package sqlite
