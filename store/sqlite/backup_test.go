package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"slices"
	"testing"

	"gitserver/store"
	"gitserver/store/sqlite"
	"gitserver/store/storetest"
)

// TestBackupContract runs the backup contract (store.Dumper) on SQLite
// files.
func TestBackupContract(t *testing.T) {
	storetest.RunBackup(t, BackupFactory)
	t.Run("Between", func(t *testing.T) { storetest.RunBackupBetween(t, BackupFactory, BackupFactory) })
}

// BackupFactory opens SQLite stores for the backup contract.
var BackupFactory = storetest.BackupFactory{
	Open: func(t *testing.T, sealer store.Sealer) store.Store {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"), sqlite.Options{Sealer: sealer})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
	SchemaVersion: sqlite.SchemaVersion(),
}

// TestBackupTablesAreTheSchema: store.BackupTables names every table the
// migrations create (besides SQLite's and the migrations' bookkeeping), so
// a table added by a new migration cannot be left out of backups.
func TestBackupTablesAreTheSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "t.db")
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := openRaw(t, path)
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('schema_migrations', 'sqlite_sequence') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var tables []string
	for rows.Next() {
		var n string
		rows.Scan(&n)
		tables = append(tables, n)
	}
	want := slices.Sorted(slices.Values(store.BackupTables))
	if !slices.Equal(tables, want) {
		t.Fatalf("schema tables %v, store.BackupTables %v", tables, want)
	}
	var n int
	if err := db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&n); err != nil || n != sqlite.SchemaVersion() {
		t.Fatalf("last migration %d, SchemaVersion %d (%v)", n, sqlite.SchemaVersion(), err)
	}
}

func openRaw(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
