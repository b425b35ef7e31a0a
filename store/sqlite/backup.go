package sqlite

import (
	"context"
	"database/sql"
	"errors"
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
// of its last embedded migration. A restore checks a backup against it
// before it creates anything.
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

// Dump implements store.Dumper: every table read in one transaction of the
// read pool. In WAL mode a read transaction sees the database as of its
// first read, whatever is committed afterwards, and does not block
// writers.
func (s *DB) Dump(ctx context.Context, fn func(table string, row store.Row) error) (int, error) {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("store: dump: %w", err)
	}
	defer tx.Rollback()
	var version int
	// The first read starts the snapshot.
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
		return 0, fmt.Errorf("store: dump: %w", err)
	}
	for _, table := range store.BackupTables {
		if err := sqlcore.DumpTable(ctx, tx, table, "rowid", fn); err != nil {
			return 0, err
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence ORDER BY name`)
	if err != nil {
		return 0, fmt.Errorf("store: dump: sequences: %w", err)
	}
	defer rows.Close()
	var seqs []store.Row
	for rows.Next() {
		var name string
		var seq int64
		if err := rows.Scan(&name, &seq); err != nil {
			return 0, fmt.Errorf("store: dump: sequences: %w", err)
		}
		if slices.Contains(store.BackupTables, name) {
			seqs = append(seqs, store.Row{"table_name": name, "last_id": seq})
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: dump: sequences: %w", err)
	}
	rows.Close()
	for _, r := range seqs {
		if err := fn(store.SequencesTable, r); err != nil {
			return 0, err
		}
	}
	return version, nil
}

// Load implements store.Dumper in one write transaction, foreign keys
// checked at its commit.
func (s *DB) Load(ctx context.Context, schemaVersion int, rows func(insert func(table string, row store.Row) error) error) error {
	if have := SchemaVersion(); schemaVersion > have || schemaVersion < 1 {
		return store.Errorf(store.ErrInvalid, "the dump's schema version %d is not one this gitserver knows (1 to %d); restore it with a newer gitserver", schemaVersion, have)
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, table := range store.BackupTables {
			var exists int
			if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM `+sqlcore.QuoteName(table)+`)`).Scan(&exists); err != nil {
				return fmt.Errorf("store: load: %w", err)
			}
			if exists != 0 {
				return store.Errorf(store.ErrConflict, "the database is not empty (table %s holds rows); restore into a new, empty database", table)
			}
		}
		if _, err := tx.ExecContext(ctx, `PRAGMA defer_foreign_keys = ON`); err != nil {
			return fmt.Errorf("store: load: %w", err)
		}
		l := &loader{ctx: ctx, tx: tx, columns: map[string]map[string]bool{}, stmts: map[string]*sql.Stmt{}}
		defer l.close()
		if err := rows(l.insert); err != nil {
			return err
		}
		if err := l.setSequences(); err != nil {
			return err
		}
		var fkErrors int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pragma_foreign_key_check`).Scan(&fkErrors); err != nil {
			return fmt.Errorf("store: load: %w", err)
		}
		if fkErrors > 0 {
			return store.Errorf(store.ErrInvalid, "the dump holds %d row(s) referencing rows it does not hold", fkErrors)
		}
		return nil
	})
}

type loader struct {
	ctx     context.Context
	tx      *sql.Tx
	columns map[string]map[string]bool // table -> its columns
	stmts   map[string]*sql.Stmt       // INSERT statement -> prepared
	seqs    []store.Row
	rows    int
}

func (l *loader) close() {
	for _, st := range l.stmts {
		st.Close()
	}
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
	rows, err := l.tx.QueryContext(l.ctx, `SELECT name FROM pragma_table_info(?)`, table)
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
		if _, _, err := sqlcore.SequenceRow(row); err != nil {
			return err
		}
		l.seqs = append(l.seqs, row)
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
	st, ok := l.stmts[q]
	if !ok {
		if st, err = l.tx.PrepareContext(l.ctx, q); err != nil {
			return fmt.Errorf("store: load %s: %w", table, err)
		}
		l.stmts[q] = st
	}
	if _, err := st.ExecContext(l.ctx, args...); err != nil {
		if isUniqueErr(err) || isConstraintErr(err) {
			return store.Errorf(store.ErrInvalid, "the dump's row %d of %s breaks a constraint of the schema: %v", l.rows+1, table, err)
		}
		return fmt.Errorf("store: load %s: %w", table, err)
	}
	l.rows++
	return nil
}

// setSequences raises each AUTOINCREMENT table's sequence to the dump's
// value (inserting explicit ids has already raised it to the largest id
// loaded). Tables without AUTOINCREMENT have no sequence: SQLite issues
// their largest rowid + 1, as on the server the dump was taken from.
func (l *loader) setSequences() error {
	for _, r := range l.seqs {
		name, last := r["table_name"].(string), r["last_id"].(int64)
		var auto int
		if err := l.tx.QueryRowContext(l.ctx, `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ? AND sql LIKE '%AUTOINCREMENT%'`, name).Scan(&auto); err != nil {
			return fmt.Errorf("store: load: sequences: %w", err)
		}
		if auto == 0 {
			continue
		}
		res, err := l.tx.ExecContext(l.ctx, `UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?`, last, name)
		if err != nil {
			return fmt.Errorf("store: load: sequences: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			if _, err := l.tx.ExecContext(l.ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)`, name, last); err != nil {
				return fmt.Errorf("store: load: sequences: %w", err)
			}
		}
	}
	return nil
}

// isConstraintErr reports whether err is any constraint violation (NOT
// NULL, CHECK, foreign key...).
func isConstraintErr(err error) bool {
	var e interface{ Code() int }
	return errors.As(err, &e) && e.Code()&0xff == 19 // SQLITE_CONSTRAINT
}
