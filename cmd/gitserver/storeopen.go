package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"gitserver/store"
	"gitserver/store/postgres"
	"gitserver/store/sqlite"
)

// storeConfig says which store to open: PostgreSQL when DatabaseURL is set
// (--database-url), else the SQLite file of the data directory.
type storeConfig struct {
	DatabaseURL string
	MaxConns    int
}

func (c storeConfig) postgres() bool { return c.DatabaseURL != "" }

// kind names the store in a backup's manifest.
func (c storeConfig) kind() string {
	if c.postgres() {
		return "postgres"
	}
	return "sqlite"
}

// describe names the store for logs and messages, without the password.
func (c storeConfig) describe(d dataPaths) string {
	if c.postgres() {
		return postgres.Redact(c.DatabaseURL)
	}
	return d.db()
}

// validateDatabaseURL checks the form of --database-url (the server says
// whether it can connect).
func validateDatabaseURL(u string) error {
	if u == "" {
		return nil
	}
	if !strings.HasPrefix(u, "postgres://") && !strings.HasPrefix(u, "postgresql://") {
		return fmt.Errorf("--database-url %s: want postgres://USER:PASSWORD@HOST:PORT/DATABASE", postgres.Redact(u))
	}
	return nil
}

// openDatabase opens the configured store with sealer.
func openDatabase(ctx context.Context, c storeConfig, d dataPaths, sealer store.Sealer) (store.Store, error) {
	if c.postgres() {
		return postgres.Open(ctx, c.DatabaseURL, postgres.Options{Sealer: sealer, MaxConns: c.MaxConns})
	}
	return sqlite.Open(ctx, d.db(), sqlite.Options{Sealer: sealer})
}

// storeExists reports whether the admin CLI has a database to work on: a
// PostgreSQL URL, or the data directory's SQLite file.
func storeExists(c storeConfig, d dataPaths) bool {
	if c.postgres() {
		return true
	}
	_, err := os.Stat(d.db())
	return err == nil
}

// registerStoreMetrics exports the PostgreSQL pool's use and the build
// queue's depth.
func registerStoreMetrics(reg prometheus.Registerer, s store.Store) {
	type pooled interface {
		PoolStats() (inUse, idle, max int)
	}
	type queued interface {
		QueueDepth(ctx context.Context) (int, error)
	}
	if p, ok := s.(pooled); ok {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gitserver_db_pool_in_use_connections", Help: "Database connections in use (PostgreSQL pool).",
		}, func() float64 { n, _, _ := p.PoolStats(); return float64(n) }))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gitserver_db_pool_idle_connections", Help: "Idle database connections (PostgreSQL pool).",
		}, func() float64 { _, n, _ := p.PoolStats(); return float64(n) }))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gitserver_db_pool_max_connections", Help: "Size of the database connection pool (--database-max-conns).",
		}, func() float64 { _, _, n := p.PoolStats(); return float64(n) }))
	}
	if q, ok := s.(queued); ok {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "gitserver_build_queue_depth", Help: "Builds queued and not yet claimed (across all nodes).",
		}, func() float64 {
			ctx, cancel := context.WithTimeout(context.Background(), 2e9)
			defer cancel()
			n, err := q.QueueDepth(ctx)
			if err != nil {
				return -1
			}
			return float64(n)
		}))
	}
}

// redactedOrEmpty is the redacted URL ("" for none): it contains "xxxxx"
// when the URL carries a password.
func redactedOrEmpty(u string) string {
	if u == "" {
		return ""
	}
	return postgres.Redact(u)
}
