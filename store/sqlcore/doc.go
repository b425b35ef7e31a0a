// Package sqlcore is the SQL layer store/sqlite and store/postgres share:
// the statements of store.Store (accounts, tokens, sessions, keys, orgs,
// repositories, builds, versions, mirrors, webhooks, SCM and OIDC links,
// the audit log, ResealAll), written once with ? placeholders in a
// spelling both SQLite and PostgreSQL accept (x = 0 and x <> 0 for the
// 0/1 flag columns, CAST(? AS TEXT) where a parameter's type must be
// known, empty blobs bound as parameters).
//
// Core holds them; each engine's DB embeds *Core, so its methods are the
// DB's, and gives it an Engine: its write transaction (Tx: SQLite's
// BEGIN IMMEDIATE writer, PostgreSQL's SERIALIZABLE with retries), the
// build queue's transaction (QueueTx: READ COMMITTED on PostgreSQL), the
// notification that a build became claimable (BuildsChanged within the
// transaction, pg_notify; Notify after it, the local Changed channel) and
// its constraint-error classification. The two spellings that differ,
// FOR UPDATE SKIP LOCKED and the "does this table exist" query, are the
// Dialect's. Everything else engine-specific (Open, migrations,
// placeholder rebinding, LISTEN, advisory locks, Dump and Load) stays in
// the engine.
//
// Secrets are sealed with the engine's store.Sealer, each for the aad
// "table.column:id" (sealAAD). Every sealed column is registered in
// SealedColumns (secrets.go), which ResealAll, the key rotation, walks; a
// column that is not registered would stop opening after a rotation.
//
// Imports: gitserver/store
package sqlcore
