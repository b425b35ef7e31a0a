package postgres

import (
	"context"
	"database/sql"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	_ "modernc.org/sqlite" // the "sqlite" driver, to read store/sqlite's schema

	"gitserver/store/postgres/pgtest"
	"gitserver/store/sqlite"
)

// TestMigrationsMirrorSQLite: store/postgres has exactly store/sqlite's
// migrations (names and numbers), so neither store gains a change the
// other lacks.
func TestMigrationsMirrorSQLite(t *testing.T) {
	names := func(fsys fs.FS, dir string) []string {
		entries, err := fs.ReadDir(fsys, dir)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range entries {
			out = append(out, e.Name())
		}
		return out
	}
	pg := names(migrationFS, "migrations")
	lite := names(os.DirFS(filepath.Join("..", "sqlite")), "migrations")
	if !slices.Equal(pg, lite) {
		t.Fatalf("PostgreSQL migrations %v, SQLite migrations %v", pg, lite)
	}
}

type column struct {
	name    string
	typ     string // normalised: integer, text, blob
	notNull bool
}

// TestSchemaMirrorsSQLite: every table has the same columns in both
// stores, with compatible types (SQLite INTEGER: BIGINT, TEXT: TEXT or
// CITEXT, BLOB: BYTEA) and the same NULLability, so that a generic table
// copy moves rows from one store to the other (backup and restore).
func TestSchemaMirrorsSQLite(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "schema.db")
	ls, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ls.Close()
	lite, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer lite.Close()
	pg, err := Open(ctx, pgtest.Start(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer pg.Close()

	liteTables := map[string][]column{}
	rows, err := lite.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	for _, tbl := range tables {
		rows, err := lite.QueryContext(ctx, `SELECT name, type, "notnull", pk FROM pragma_table_info(?)`, tbl)
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var c column
			var typ string
			var notNull, pk int
			if err := rows.Scan(&c.name, &typ, &notNull, &pk); err != nil {
				t.Fatal(err)
			}
			c.typ = strings.ToLower(typ)
			// A primary key is never NULL in PostgreSQL; in SQLite an
			// INTEGER PRIMARY KEY (the rowid) cannot be either.
			c.notNull = notNull == 1 || pk > 0
			liteTables[tbl] = append(liteTables[tbl], c)
		}
		rows.Close()
	}

	pgTables := map[string][]column{}
	rows, err = pg.r.QueryContext(ctx, `SELECT table_name, column_name, data_type, udt_name, is_nullable
		FROM information_schema.columns WHERE table_schema = current_schema() ORDER BY table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tbl, name, dataType, udt, nullable string
		if err := rows.Scan(&tbl, &name, &dataType, &udt, &nullable); err != nil {
			t.Fatal(err)
		}
		typ := map[string]string{"bigint": "integer", "text": "text", "bytea": "blob"}[dataType]
		if udt == "citext" {
			typ = "text"
		}
		if typ == "" {
			typ = dataType + " (not a mirror of an SQLite type)"
		}
		pgTables[tbl] = append(pgTables[tbl], column{name: name, typ: typ, notNull: nullable == "NO"})
	}
	rows.Close()

	keys := func(m map[string][]column) []string {
		var out []string
		for k := range m {
			out = append(out, k)
		}
		sort.Strings(out)
		return out
	}
	if len(liteTables["builds"]) < 10 || len(liteTables["mirrors"]) < 10 {
		t.Fatalf("SQLite's schema was not read: %v", keys(liteTables))
	}
	if !slices.Equal(keys(liteTables), keys(pgTables)) {
		t.Fatalf("tables: SQLite %v, PostgreSQL %v", keys(liteTables), keys(pgTables))
	}
	for _, tbl := range keys(liteTables) {
		if !slices.Equal(liteTables[tbl], pgTables[tbl]) {
			t.Errorf("%s:\n  SQLite     %v\n  PostgreSQL %v", tbl, liteTables[tbl], pgTables[tbl])
		}
	}
}
