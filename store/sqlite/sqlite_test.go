package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/sqlite"
	"gitserver/store/storetest"
)

// paths maps each DB the factory opened to its file, for Second.
var paths sync.Map

func openAt(t *testing.T, path string, now func() time.Time) store.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, sqlite.Options{Now: now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	paths.Store(s, path)
	t.Cleanup(func() {
		paths.Delete(s)
		s.Close()
	})
	return s
}

// TestContract runs the store contract on SQLite files; Second opens
// another *sqlite.DB (its own connections, as another process would) on
// the same file.
func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T, now func() time.Time) store.Store {
			return openAt(t, filepath.Join(t.TempDir(), "test.db"), now)
		},
		Second: func(t *testing.T, first store.Store, now func() time.Time) store.Store {
			p, ok := paths.Load(first)
			if !ok {
				t.Fatal("Second: store not opened by this factory")
			}
			second := openAt(t, p.(string), now)
			if second == first {
				t.Fatal("Second returned the first handle")
			}
			return second
		},
	})
}
