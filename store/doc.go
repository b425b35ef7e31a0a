// Package store holds gitserver's domain types (accounts, organisations,
// repositories, tokens, SSH keys, builds, versions, audit events, web
// sessions), the sentinel errors, and the persistence contract: the role
// interfaces Accounts, Credentials, Orgs, Repos, BuildQueue, Versions,
// Audit, Secrets and Sessions, and Store, which embeds them all; Sealer, which an
// implementation uses to keep secrets encrypted at rest; Locker, the
// optional cross-node locks of a store several nodes share. Dumper (optional,
// implemented by every store of this module) dumps every table in one
// snapshot as store-neutral rows and loads such a dump into an empty store:
// backups, and the move between stores.
//
// The store knows nothing about transports, git processes or databases: it
// imports no other package of this module and no database driver. Every
// other package may import it and depends on the Store interface only;
// implementations live in sub-packages (store/sqlite, store/postgres), which only cmd/ (and
// benchmarks and tests) import, and are held to the contract by
// store/storetest. Errors returned by a Store wrap one of the sentinels
// ErrNotFound, ErrExists, ErrConflict, ErrInvalid, ErrForbidden or
// ErrBadCredentials (each method's doc says which) so that each boundary
// (HTTP API, git transport, CLI) can map them to a status without string
// matching.
//
// A Store must be correct when several Store values (processes, nodes)
// share one database: uniqueness is a constraint of the database, every
// state change re-checks its precondition in the statement itself, and no
// transaction waits for anything but the database (no subprocess, no
// callback).
//
// Imports: none
package store
