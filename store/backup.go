package store

import "context"

// BackupTables are the tables of the store's schema, in dependency order:
// a table comes after every table it references, so loading rows in this
// order satisfies every foreign key. Every implementation has exactly
// these tables (besides its own bookkeeping: migrations, sequences), with
// the same column names; its tests check that the list is complete.
var BackupTables = []string{
	"accounts",
	"scm_configs",
	"repos",
	"memberships",
	"tokens",
	"ssh_keys",
	"builds",
	"versions",
	"mirrors",
	"mirror_deliveries",
	"scm_connections",
	"scm_oauth_states",
	"sessions",
	"oidc_links",
	"oidc_states",
	"audit_events",
}

// SequencesTable is the pseudo-table of a dump that carries, after every
// real table, the last id each table's id sequence issued (SQLite's
// sqlite_sequence, PostgreSQL's sequences): one row per table, with the
// columns "table_name" (string) and "last_id" (int64). Load sets each
// sequence to at least that value, so that ids of rows deleted before the
// backup are not issued again (a repository's directory is named by its
// id).
const SequencesTable = "_sequences"

// Row is one row of a table: column name to value. A value is an int64
// (INTEGER, BIGINT and booleans stored as integers), a string (TEXT), a
// []byte (BLOB, BYTEA: sealed secrets stay sealed) or nil (NULL) — the
// same types whatever the implementation, which is what makes a dump of
// one store load into another.
type Row map[string]any

// Dumper is implemented by stores that can be backed up and restored
// (every implementation of this module): a store-neutral copy of every
// row, used by `gitserver admin backup` and `restore`.
type Dumper interface {
	// Dump calls fn with every row of every table of BackupTables, table
	// by table in that order, then the rows of SequencesTable; all are
	// read in one read transaction, so the dump is one point in time
	// (taken before Dump reads the first row) while writers go on. It
	// returns the schema version of that snapshot (the number of the last
	// migration applied). An error of fn stops the dump and is returned.
	Dump(ctx context.Context, fn func(table string, row Row) error) (schemaVersion int, err error)
	// Load fills a freshly migrated, empty store with the rows of a dump
	// of schema version schemaVersion: rows is called with insert, which
	// it calls for each row, in the order of a dump. Everything is written
	// in one transaction: when rows or an insert fails, nothing is
	// written. A schema version newer than the store's, an unknown table
	// or column, or a value of another type than Row's is ErrInvalid; a
	// store that holds any row already is ErrConflict. Ids are kept (sealed
	// values are bound to their row's id), and sequences are set past
	// every id loaded and every SequencesTable value.
	Load(ctx context.Context, schemaVersion int, rows func(insert func(table string, row Row) error) error) error
}
