package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	sqlite "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"

	"gitserver/store"
	"gitserver/store/sqlcore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// DB is the SQLite implementation of store.Store. It is safe for concurrent
// use, and several DB values (processes) may share one file.
type DB struct {
	// Core holds the statements shared with store/postgres (most of
	// store.Store).
	*sqlcore.Core

	w   *sql.DB // single writer connection
	r   *sql.DB // read-only pool
	now func() time.Time
	// sealer seals secrets at rest; nil stores them as they are (tests).
	sealer store.Sealer

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever a build becomes claimable
}

var _ store.Store = (*DB)(nil)

// Options configure Open.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Sealer seals secrets (deploy private keys, webhook secrets) before
	// they reach the database. nil stores them unsealed: for tests only.
	Sealer store.Sealer
}

// Open opens (creating if needed) the SQLite database at path and applies
// pending migrations.
//
// The database holds password hashes and token digests, so it and its
// -wal and -shm files are made owner-only (0600, or narrower) whatever the
// umask, including a database created by an earlier version.
func Open(ctx context.Context, path string, opt Options) (*DB, error) {
	// SQLite would create the file 0644 (less the umask); it creates -wal
	// and -shm with the database file's mode.
	if err := ownerOnly(path, true); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	base := "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(1)"
	w, err := sql.Open("sqlite", base+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	s := &DB{w: w, now: opt.Now, sealer: opt.Sealer, changed: make(chan struct{})}
	if s.now == nil {
		s.now = time.Now
	}
	if err := s.migrate(ctx); err != nil {
		w.Close()
		return nil, err
	}
	r, err := sql.Open("sqlite", base+"&_pragma=query_only(1)")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("store: open reader: %w", err)
	}
	r.SetMaxOpenConns(8)
	s.r = r
	s.Core = sqlcore.New(sqlcore.Config{
		Engine: engine{s}, W: w, R: r, Now: s.now, Sealer: s.sealer,
		Dialect: sqlcore.Dialect{
			// The single writer holds the database: no row locks.
			SkipLocked:  "",
			TableExists: `SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = ?`,
		},
	})
	// Files of an earlier version, created before the database was
	// owner-only.
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := ownerOnly(path+suffix, false); err != nil {
			s.Close()
			return nil, fmt.Errorf("store: open: %w", err)
		}
	}
	return s, nil
}

// ownerOnly takes the group and other permission bits off path, creating
// it (empty, 0600) first if create is set. A missing file is no error
// without create.
func ownerOnly(path string, create bool) error {
	if create {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return err
		}
		f.Close()
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) && !create {
		return nil
	}
	if err != nil {
		return err
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return os.Chmod(path, perm&^0o077)
	}
	return nil
}

// Close releases the database.
func (s *DB) Close() error {
	err1 := s.r.Close()
	err2 := s.w.Close()
	return errors.Join(err1, err2)
}

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error {
	var one int
	return s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Now returns the store's clock reading.
func (s *DB) Now() time.Time { return s.now() }

func (s *DB) migrate(ctx context.Context) error {
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("store: migrate: bad migration name %q", e.Name())
		}
		body, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		err = s.tx(ctx, func(tx *sql.Tx) error {
			// Two processes may migrate at once: the version row is
			// claimed first (the loser inserts nothing and skips).
			res, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?) ON CONFLICT (version) DO NOTHING`, v, s.now().UnixMicro())
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 0 {
				return nil
			}
			if _, err := tx.ExecContext(ctx, string(body)); err != nil {
				return fmt.Errorf("migration %s: %w", e.Name(), err)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	}
	return nil
}

// errRetry rolls a transaction back and runs it again: a guard found that
// another writer changed what the transaction read (it cannot happen while
// SQLite serialises writers, but the SQL does not rely on that).
var errRetry = sqlcore.ErrRetry

// tx runs fn in an immediate (write-locked) transaction on the writer, up to
// three times while fn returns errRetry.
func (s *DB) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := s.tx1(ctx, fn)
		if !errors.Is(err, errRetry) || attempt == 3 {
			return err
		}
	}
}

func (s *DB) tx1(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// Changed returns a channel that is closed the next time a build becomes
// claimable through this DB. Long-polling claimers wait on it.
func (s *DB) Changed() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.changed
}

func (s *DB) notify() {
	s.mu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
}

func micros(t time.Time) int64 { return sqlcore.Micros(t) }

// isUniqueErr reports whether err is a violation of a UNIQUE constraint or
// a primary key, by SQLite's extended result code.
func isUniqueErr(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return true
	}
	return false
}

// isForeignKeyErr reports whether err is a FOREIGN KEY violation.
func isForeignKeyErr(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code() == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// engine gives sqlcore.Core SQLite's transactions and errors.
type engine struct{ s *DB }

// Tx runs fn in an immediate (write-locked) transaction on the writer.
func (e engine) Tx(ctx context.Context, fn func(sqlcore.Q) error) error {
	return e.s.tx(ctx, func(tx *sql.Tx) error { return fn(tx) })
}

// QueueTx is Tx: SQLite has one isolation, serialisable writers.
func (e engine) QueueTx(ctx context.Context, fn func(sqlcore.Q) error) error {
	return e.Tx(ctx, fn)
}

// BuildsChanged does nothing: a file has no channel between processes;
// claimers of another process re-read the table on their timer.
func (engine) BuildsChanged(context.Context, sqlcore.Q) error { return nil }

func (e engine) Notify()                   { e.s.notify() }
func (engine) IsUnique(err error) bool     { return isUniqueErr(err) }
func (engine) IsForeignKey(err error) bool { return isForeignKeyErr(err) }
