package postgres_test

import (
	"context"
	"path/filepath"
	"testing"

	"gitserver/store"
	"gitserver/store/postgres"
	"gitserver/store/postgres/pgtest"
	"gitserver/store/sqlite"
	"gitserver/store/storetest"
)

// pgBackupFactory opens PostgreSQL stores for the backup contract.
var pgBackupFactory = storetest.BackupFactory{
	Open: func(t *testing.T, sealer store.Sealer) store.Store {
		s, err := postgres.Open(context.Background(), pgtest.Start(t), postgres.Options{Sealer: sealer})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	},
	SchemaVersion: postgres.SchemaVersion(),
}

var sqliteBackupFactory = storetest.BackupFactory{
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

// TestBackupContract runs the backup contract on PostgreSQL, and moves a
// dump from SQLite to PostgreSQL and back.
func TestBackupContract(t *testing.T) {
	storetest.RunBackup(t, pgBackupFactory)
	t.Run("Between", func(t *testing.T) { storetest.RunBackupBetween(t, pgBackupFactory, pgBackupFactory) })
	t.Run("SQLiteToPostgreSQL", func(t *testing.T) { storetest.RunBackupBetween(t, sqliteBackupFactory, pgBackupFactory) })
	t.Run("PostgreSQLToSQLite", func(t *testing.T) { storetest.RunBackupBetween(t, pgBackupFactory, sqliteBackupFactory) })
	if postgres.SchemaVersion() != sqlite.SchemaVersion() {
		t.Errorf("schema versions: PostgreSQL %d, SQLite %d", postgres.SchemaVersion(), sqlite.SchemaVersion())
	}
}
