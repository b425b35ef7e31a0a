package postgres_test

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"gitserver/store"
	"gitserver/store/postgres"
	"gitserver/store/postgres/pgtest"
	"gitserver/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// urls maps each DB the factory opened to its database URL, for Second.
var urls sync.Map

func openAt(t *testing.T, url string, now func() time.Time) store.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, postgres.Options{Now: now, MaxConns: 8})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	urls.Store(s, url)
	t.Cleanup(func() {
		urls.Delete(s)
		s.Close()
	})
	return s
}

// TestContract runs the store contract on a fresh PostgreSQL database per
// test; Second opens another *postgres.DB (its own pool and listener, as
// another node would) on the same database.
func TestContract(t *testing.T) {
	storetest.Run(t, storetest.Factory{
		Open: func(t *testing.T, now func() time.Time) store.Store {
			return openAt(t, pgtest.Start(t), now)
		},
		Second: func(t *testing.T, first store.Store, now func() time.Time) store.Store {
			u, ok := urls.Load(first)
			if !ok {
				t.Fatal("Second: store not opened by this factory")
			}
			second := openAt(t, u.(string), now)
			if second == first {
				t.Fatal("Second returned the first handle")
			}
			return second
		},
	})
}
