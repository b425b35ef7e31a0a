package sqlite

import (
	"io/fs"
	"strconv"
	"strings"
	"testing"
)

// TestMigrationNumbersAreUnique: a migration is applied once per version
// number, so two files with one number (branches merged side by side) would
// leave one of them silently unapplied.
func TestMigrationNumbersAreUnique(t *testing.T) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]string{}
	for i, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			t.Fatalf("migration %q is not NNNN_name.sql", e.Name())
		}
		if prev, dup := seen[v]; dup {
			t.Errorf("migrations %q and %q share version %d", prev, e.Name(), v)
		}
		seen[v] = e.Name()
		if v != i+1 {
			t.Errorf("migration %q has version %d, want %d (no gaps)", e.Name(), v, i+1)
		}
	}
}
