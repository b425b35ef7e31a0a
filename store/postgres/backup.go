package postgres

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"slices"
	"strconv"
	"strings"

	"gitserver/store"
	"gitserver/store/sqlcore"
)

var _ store.Dumper = (*DB)(nil)

// SchemaVersion is the schema version this binary migrates to: the number
// of its last embedded migration (the same as store/sqlite's: the schemas
// mirror each other).
func SchemaVersion() int {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		panic(err) // embedded at build time
	}
	v := 0
	for _, e := range entries {
		num, _, _ := strings.Cut(e.Name(), "_")
		if n, err := strconv.Atoi(num); err == nil && n > v {
			v = n
		}
	}
	return v
}

// Dump implements store.Dumper: every table read in one REPEATABLE READ,
// read-only transaction, whose snapshot is taken at its first read and
// does not block writers.
func (s *DB) Dump(ctx context.Context, fn func(table string, row store.Row) error) (int, error) {
	tx, err := s.sqldb.BeginTx(ctx, &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true})
	if err != nil {
		return 0, fmt.Errorf("store: dump: %w", err)
	}
	defer tx.Rollback()
	t := &txw{tx}
	var version int
	// The first read starts the snapshot.
	if err := t.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, fmt.Errorf("store: dump: %w", err)
	}
	for _, table := range store.BackupTables {
		// The first column is the id (or the key) of every table.
		if err := sqlcore.DumpTable(ctx, t, table, "1", fn); err != nil {
			return 0, err
		}
	}
	// Sequences are not transactional: a value read now may be past the
	// snapshot's, which only skips ids.
	var seqs []store.Row
	for _, table := range store.BackupTables {
		last, ok, err := lastID(ctx, t, table)
		if err != nil {
			return 0, fmt.Errorf("store: dump: sequences: %w", err)
		}
		if ok {
			seqs = append(seqs, store.Row{"table_name": table, "last_id": last})
		}
	}
	for _, r := range seqs {
		if err := fn(store.SequencesTable, r); err != nil {
			return 0, err
		}
	}
	return version, nil
}

// lastID is the last id the identity of table issued (ok false when it
// has none, or issued none).
func lastID(ctx context.Context, t *txw, table string) (int64, bool, error) {
	var seq sql.NullString
	if err := t.QueryRowContext(ctx, `SELECT pg_get_serial_sequence(?, 'id') FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ? AND column_name = 'id'`, table, table).Scan(&seq); err != nil {
		if err == sql.ErrNoRows { // a table without an id column
			return 0, false, nil
		}
		return 0, false, err
	}
	if !seq.Valid {
		return 0, false, nil
	}
	var last int64
	var called bool
	if err := t.QueryRowContext(ctx, `SELECT last_value, is_called FROM `+seq.String).Scan(&last, &called); err != nil {
		return 0, false, err
	}
	return last, called, nil
}

// Load implements store.Dumper in one transaction. Rows come in
// store.BackupTables' order, which satisfies every foreign key as it is
// inserted; a row referencing one the dump lacks is ErrInvalid.
func (s *DB) Load(ctx context.Context, schemaVersion int, rows func(insert func(table string, row store.Row) error) error) error {
	if have := SchemaVersion(); schemaVersion > have || schemaVersion < 1 {
		return store.Errorf(store.ErrInvalid, "the dump's schema version %d is not one this gitserver knows (1 to %d); restore it with a newer gitserver", schemaVersion, have)
	}
	tx, err := s.sqldb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: load: %w", err)
	}
	defer tx.Rollback()
	t := &txw{tx}
	for _, table := range store.BackupTables {
		var exists bool
		if err := t.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+sqlcore.QuoteName(table)+`)`).Scan(&exists); err != nil {
			return fmt.Errorf("store: load: %w", err)
		}
		if exists {
			return store.Errorf(store.ErrConflict, "the database is not empty (table %s holds rows); restore into a new, empty database", table)
		}
	}
	l := &loader{ctx: ctx, tx: t, columns: map[string]map[string]bool{}}
	if err := rows(l.insert); err != nil {
		return err
	}
	if err := l.setSequences(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: load: %w", err)
	}
	return nil
}

type loader struct {
	ctx     context.Context
	tx      *txw
	columns map[string]map[string]bool // table -> its columns
	seqs    map[string]int64
	rows    int
}

// tableColumns returns the columns of a table of store.BackupTables, or
// ErrInvalid for any other name.
func (l *loader) tableColumns(table string) (map[string]bool, error) {
	if cols, ok := l.columns[table]; ok {
		return cols, nil
	}
	if !slices.Contains(store.BackupTables, table) {
		return nil, store.Errorf(store.ErrInvalid, "the dump holds an unknown table %q", store.Truncate(table, 64))
	}
	rows, err := l.tx.QueryContext(l.ctx, `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ?`, table)
	if err != nil {
		return nil, fmt.Errorf("store: load: %w", err)
	}
	defer rows.Close()
	cols := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("store: load: %w", err)
		}
		cols[c] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: load: %w", err)
	}
	l.columns[table] = cols
	return cols, nil
}

func (l *loader) insert(table string, row store.Row) error {
	if table == store.SequencesTable {
		name, last, err := sqlcore.SequenceRow(row)
		if err != nil {
			return err
		}
		if l.seqs == nil {
			l.seqs = map[string]int64{}
		}
		l.seqs[name] = max(l.seqs[name], last)
		return nil
	}
	cols, err := l.tableColumns(table)
	if err != nil {
		return err
	}
	q, args, err := sqlcore.InsertRow(table, cols, row)
	if err != nil {
		return err
	}
	if _, err := l.tx.ExecContext(l.ctx, q, args...); err != nil {
		if c := pgCode(err); strings.HasPrefix(c, "23") || strings.HasPrefix(c, "22") {
			// Integrity (unique, foreign key, not null, check) and data
			// (a value of the wrong type) errors: a bad dump.
			return store.Errorf(store.ErrInvalid, "the dump's row %d of %s breaks a constraint of the schema: %v", l.rows+1, table, err)
		}
		return fmt.Errorf("store: load %s: %w", table, err)
	}
	l.rows++
	return nil
}

// setSequences moves each identity past the largest id loaded and the
// dump's own sequence value, so that ids of rows deleted before the backup
// are not issued again.
func (l *loader) setSequences() error {
	for _, table := range store.BackupTables {
		var seq sql.NullString
		if !l.hasID(table) {
			continue
		}
		if err := l.tx.QueryRowContext(l.ctx, `SELECT pg_get_serial_sequence(?, 'id')`, table).Scan(&seq); err != nil {
			return fmt.Errorf("store: load: sequences: %w", err)
		}
		if !seq.Valid {
			continue
		}
		var maxID int64
		if err := l.tx.QueryRowContext(l.ctx, `SELECT COALESCE(MAX(id), 0) FROM `+sqlcore.QuoteName(table)).Scan(&maxID); err != nil {
			return fmt.Errorf("store: load: sequences: %w", err)
		}
		if v := max(maxID, l.seqs[table]); v > 0 {
			if _, err := l.tx.ExecContext(l.ctx, `SELECT setval(?, ?, true)`, seq.String, v); err != nil {
				return fmt.Errorf("store: load: sequences: %w", err)
			}
		}
	}
	return nil
}

func (l *loader) hasID(table string) bool {
	cols, err := l.tableColumns(table)
	return err == nil && cols["id"]
}

// Unload empties every table that Load fills (TRUNCATE, identities
// restarted), to take back a Load whose restore failed later on (a
// damaged bundle): the database is then empty again and can take the next
// attempt. It deletes every row of those tables; nothing else calls it.
func (s *DB) Unload(ctx context.Context) error {
	names := make([]string, len(store.BackupTables))
	for i, t := range store.BackupTables {
		names[i] = sqlcore.QuoteName(t)
	}
	if _, err := s.w.ExecContext(ctx, `TRUNCATE `+strings.Join(names, ", ")+` RESTART IDENTITY CASCADE`); err != nil {
		return fmt.Errorf("store: unload: %w", err)
	}
	return nil
}
