// Package store holds gitserver's domain types (accounts, organisations,
// repositories, tokens, SSH keys, builds, versions, audit events) and their
// persistence in a single SQLite file.
//
// The store knows nothing about transports or git processes: it imports no
// other package of this module. Every other package may import it. Errors
// returned by the store wrap one of the sentinels ErrNotFound, ErrExists,
// ErrConflict or ErrInvalid so that each boundary (HTTP API, git transport,
// CLI) can map them to a status without string matching.
//
// Writes go through one connection (SQLite allows one writer at a time) with
// BEGIN IMMEDIATE transactions; reads use a separate read-only pool. The
// migrations in migrations/*.sql are embedded and applied in order by Open.
//
// Imports: none
package store
