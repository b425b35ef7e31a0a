package postgres

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"gitserver/store"
	"gitserver/store/sqlcore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// notifyChannel is the LISTEN/NOTIFY channel on which every node announces
// that a build became claimable (an enqueue or a lease expiry).
const notifyChannel = "gitserver_builds"

// migrationLock is the key of the advisory lock that serialises
// migrations of several processes starting at once.
const migrationLock = 0x67697473657276 // "gitserv"

// DB is the PostgreSQL implementation of store.Store. It is safe for
// concurrent use, and any number of DB values (processes, nodes) may share
// one database.
type DB struct {
	// Core holds the statements shared with store/sqlite (most of
	// store.Store).
	*sqlcore.Core

	pool  *pgxpool.Pool
	sqldb *sql.DB
	w, r  *dbw // the same pool: the names keep the SQLite implementation's shape
	now   func() time.Time
	// sealer seals secrets at rest; nil stores them as they are (tests).
	sealer store.Sealer

	mu      sync.Mutex
	changed chan struct{} // closed and replaced whenever a build may have become claimable

	listenCancel context.CancelFunc
	listenDone   chan struct{}
	connected    chan struct{} // closed once the listener has listened for the first time
}

var (
	_ store.Store  = (*DB)(nil)
	_ store.Locker = (*DB)(nil)
)

// Options configure Open.
type Options struct {
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Sealer seals secrets before they reach the database. nil stores
	// them unsealed: for tests only.
	Sealer store.Sealer
	// MaxConns is the size of the connection pool (10 when 0). The
	// LISTEN connection is not counted.
	MaxConns int
	// Recheck is how often Changed closes without a notification, so
	// that a notification lost while the listener reconnected delays a
	// claim by at most this long (5 s when 0).
	Recheck time.Duration
}

// Open connects to the PostgreSQL database at url (postgres://...),
// applies pending migrations and starts listening for build
// notifications.
func Open(ctx context.Context, dbURL string, opt Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		// pgx's parse errors may quote the URL, password included.
		return nil, fmt.Errorf("store: open: the database URL %s cannot be parsed", Redact(dbURL))
	}
	if opt.MaxConns < 0 {
		return nil, fmt.Errorf("store: open: %w: the pool size must be positive", store.ErrInvalid)
	}
	cfg.MaxConns = 10
	if opt.MaxConns > 0 {
		cfg.MaxConns = int32(opt.MaxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", Redact(dbURL), redactErr(err, dbURL))
	}
	sqldb := stdlib.OpenDBFromPool(pool)
	s := &DB{pool: pool, sqldb: sqldb, now: opt.Now, sealer: opt.Sealer, changed: make(chan struct{})}
	s.w = &dbw{sqldb}
	s.r = s.w
	if s.now == nil {
		s.now = time.Now
	}
	s.Core = sqlcore.New(sqlcore.Config{
		Engine: engine{s}, W: s.w, R: s.r, Now: s.now, Sealer: s.sealer,
		Dialect: sqlcore.Dialect{
			// A build another claimer is taking is not waited for; the
			// next one is taken instead.
			SkipLocked:  ` FOR UPDATE SKIP LOCKED`,
			TableExists: `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = ?`,
		},
	})
	if err := s.migrate(ctx); err != nil {
		sqldb.Close()
		pool.Close()
		return nil, fmt.Errorf("%w", redactErr(err, dbURL))
	}
	recheck := opt.Recheck
	if recheck <= 0 {
		recheck = 5 * time.Second
	}
	lctx, cancel := context.WithCancel(context.Background())
	s.listenCancel, s.listenDone, s.connected = cancel, make(chan struct{}), make(chan struct{})
	go s.listen(lctx, cfg.ConnConfig.Copy(), recheck)
	// Wait (briefly) for the first LISTEN, so that an enqueue on another
	// node right after Open is not missed by a claimer of this one.
	select {
	case <-s.connected:
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	return s, nil
}

// Redact returns the URL with its password replaced by "xxxxx", for
// messages and logs; a string that does not parse as a URL is replaced
// entirely.
func Redact(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil || u.Scheme == "" {
		if strings.Contains(dbURL, "password") || strings.Contains(dbURL, "@") {
			return "(unparsable database URL)"
		}
		return dbURL
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// redactErr removes the URL's password from err's text, should a driver
// error quote it.
func redactErr(err error, dbURL string) error {
	if err == nil {
		return nil
	}
	u, perr := url.Parse(dbURL)
	if perr != nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok {
		pw = u.Query().Get("password")
	}
	if pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

// Close stops the listener and releases the pool.
func (s *DB) Close() error {
	s.listenCancel()
	<-s.listenDone
	err := s.sqldb.Close()
	s.pool.Close()
	return err
}

// Ping checks that the database answers.
func (s *DB) Ping(ctx context.Context) error {
	var one int
	return s.r.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// Now returns the store's clock reading.
func (s *DB) Now() time.Time { return s.now() }

// PoolStats reports the connection pool's use: connections in use, idle,
// and the pool's size.
func (s *DB) PoolStats() (inUse, idle, max int) {
	st := s.pool.Stat()
	return int(st.AcquiredConns()), int(st.IdleConns()), int(st.MaxConns())
}

func (s *DB) migrate(ctx context.Context) error {
	conn, err := s.sqldb.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Close()
	// Several nodes may start at once: one migrates, the others wait and
	// then find every version applied.
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, int64(migrationLock)); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.ExecContext(context.Background(), `SELECT pg_advisory_unlock($1)`, int64(migrationLock))
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
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
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2) ON CONFLICT (version) DO NOTHING`, v, s.now().UnixMicro())
		if err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			tx.Rollback()
			continue
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: migrate: migration %s: %w", e.Name(), err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("store: migrate: %w", err)
		}
	}
	return nil
}

// errRetry rolls a transaction back and runs it again: a guard found that
// another writer changed what the transaction read.
var errRetry = sqlcore.ErrRetry

// tx runs fn in a SERIALIZABLE transaction: what SQLite's single writer
// gives the guards written for it (a guard that reads other rows, such as
// "another owner remains", cannot be outrun by a concurrent writer).
// PostgreSQL aborts one of two conflicting transactions
// (serialization_failure, deadlock_detected); tx runs it again, as it does
// up to three times while fn returns errRetry.
func (s *DB) tx(ctx context.Context, fn func(*txw) error) error {
	return s.txIso(ctx, sql.LevelSerializable, fn)
}

// txRC runs fn in a READ COMMITTED transaction, for the build queue's hot
// path (claims, heartbeats, lease expiry), whose every update repeats its
// precondition on the row it changes: PostgreSQL re-evaluates that WHERE
// clause on the newest row version after waiting for a concurrent writer,
// so two claimers or two expiring nodes cannot both apply.
func (s *DB) txRC(ctx context.Context, fn func(*txw) error) error {
	return s.txIso(ctx, sql.LevelReadCommitted, fn)
}

func (s *DB) txIso(ctx context.Context, iso sql.IsolationLevel, fn func(*txw) error) error {
	retries, broken := 0, 0
	for attempt := 1; ; attempt++ {
		committing, err := s.tx1(ctx, iso, fn)
		switch {
		case !committing && isConnErr(err) && ctx.Err() == nil:
			// The connection broke (a database restart, a failover)
			// before the commit, so nothing was written: run again on
			// another connection, for a few seconds (a restart takes
			// about one). A break during the commit is not retried: it
			// may have committed.
			broken++
			if broken == 8 {
				return err
			}
			select {
			case <-time.After(min(50*time.Millisecond<<(broken-1), time.Second)):
			case <-ctx.Done():
				return err
			}
		case errors.Is(err, errRetry):
			retries++
			if retries == 3 {
				return err
			}
		case isSerializationErr(err):
			if attempt >= 50 {
				return err
			}
			// Back off a little, randomly, so that the same
			// transactions do not collide again.
			d := time.Duration(rand.IntN(1+attempt*2)) * time.Millisecond
			select {
			case <-time.After(d):
			case <-ctx.Done():
				return ctx.Err()
			}
		default:
			return err
		}
	}
}

func (s *DB) tx1(ctx context.Context, iso sql.IsolationLevel, fn func(*txw) error) (committing bool, err error) {
	tx, err := s.sqldb.BeginTx(ctx, &sql.TxOptions{Isolation: iso})
	if err != nil {
		return false, err
	}
	if err := fn(&txw{tx}); err != nil {
		tx.Rollback()
		return false, err
	}
	return true, tx.Commit()
}

// isConnErr reports whether err says the connection is gone: the server
// shut down or terminated it (class 57P), the connection failed (class
// 08), or the driver found it closed.
func isConnErr(err error) bool {
	if err == nil {
		return false
	}
	c := pgCode(err)
	if strings.HasPrefix(c, "57P") || strings.HasPrefix(c, "08") {
		return true
	}
	if c != "" {
		return false
	}
	var ce *pgconn.ConnectError
	return errors.Is(err, driver.ErrBadConn) || errors.As(err, &ce) || pgconn.SafeToRetry(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		strings.Contains(err.Error(), "conn closed")
}

// Changed returns a channel that is closed the next time a build may have
// become claimable: through this DB, through any other node (a
// notification on the database), or when the re-check timer fires.
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

// listen holds a dedicated connection that LISTENs on notifyChannel and
// closes Changed on every notification, after every (re)connection (a
// notification may have been missed meanwhile) and every recheck.
// Notifications are best effort; claimers re-read the table each time.
func (s *DB) listen(ctx context.Context, cfg *pgx.ConnConfig, recheck time.Duration) {
	defer close(s.listenDone)
	first := true
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err == nil {
			_, err = conn.Exec(ctx, `LISTEN `+notifyChannel)
		}
		if err != nil {
			if conn != nil {
				conn.Close(context.Background())
			}
			if first {
				first = false
				close(s.connected)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
			s.notify()
			continue
		}
		backoff = 100 * time.Millisecond
		s.notify() // a notification may have been missed while not listening
		if first {
			first = false
			close(s.connected)
		}
		for {
			wctx, cancel := context.WithTimeout(ctx, recheck)
			_, err := conn.WaitForNotification(wctx)
			cancel()
			if err == nil {
				s.notify()
				continue
			}
			if ctx.Err() != nil {
				break
			}
			if errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
				s.notify() // the fallback re-check
				continue
			}
			break // the connection broke: reconnect
		}
		conn.Close(context.Background())
	}
}

// pgCode returns err's PostgreSQL SQLSTATE, or "".
func pgCode(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// isUniqueErr reports whether err is a unique_violation (a UNIQUE
// constraint or a primary key).
func isUniqueErr(err error) bool { return pgCode(err) == "23505" }

// isForeignKeyErr reports whether err is a foreign_key_violation.
func isForeignKeyErr(err error) bool { return pgCode(err) == "23503" }

// isSerializationErr reports whether err is a serialization_failure or a
// deadlock_detected: the transaction can run again.
func isSerializationErr(err error) bool {
	c := pgCode(err)
	return c == "40001" || c == "40P01"
}

func micros(t time.Time) int64 { return sqlcore.Micros(t) }

// engine gives sqlcore.Core PostgreSQL's transactions, errors and
// notifications.
type engine struct{ s *DB }

// Tx runs fn SERIALIZABLE (DB.tx).
func (e engine) Tx(ctx context.Context, fn func(sqlcore.Q) error) error {
	return e.s.tx(ctx, func(tx *txw) error { return fn(tx) })
}

// QueueTx runs fn READ COMMITTED (DB.txRC).
func (e engine) QueueTx(ctx context.Context, fn func(sqlcore.Q) error) error {
	return e.s.txRC(ctx, func(tx *txw) error { return fn(tx) })
}

// BuildsChanged runs pg_notify in tx: delivered at commit to every node's
// listener.
func (engine) BuildsChanged(ctx context.Context, tx sqlcore.Q) error {
	_, err := tx.ExecContext(ctx, `SELECT pg_notify('`+notifyChannel+`', '')`)
	return err
}

func (e engine) Notify()                   { e.s.notify() }
func (engine) IsUnique(err error) bool     { return isUniqueErr(err) }
func (engine) IsForeignKey(err error) bool { return isForeignKeyErr(err) }

// dbw and txw run the statements, written with ? placeholders as in
// store/sqlite, with PostgreSQL's $n (rebind) and Go bools as the 0/1 the
// schema stores (the columns are BIGINT, as SQLite's INTEGER, so that rows
// move between the two stores unchanged).
type dbw struct{ db *sql.DB }

func (d *dbw) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return d.db.ExecContext(ctx, rebind(q), convArgs(args)...)
}

func (d *dbw) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return d.db.QueryContext(ctx, rebind(q), convArgs(args)...)
}

func (d *dbw) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return d.db.QueryRowContext(ctx, rebind(q), convArgs(args)...)
}

type txw struct{ tx *sql.Tx }

func (t *txw) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return t.tx.ExecContext(ctx, rebind(q), convArgs(args)...)
}

func (t *txw) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return t.tx.QueryContext(ctx, rebind(q), convArgs(args)...)
}

func (t *txw) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return t.tx.QueryRowContext(ctx, rebind(q), convArgs(args)...)
}

func convArgs(args []any) []any {
	for i, a := range args {
		if b, ok := a.(bool); ok {
			if b {
				args[i] = int64(1)
			} else {
				args[i] = int64(0)
			}
		}
	}
	return args
}

var rebound sync.Map // string -> string

// rebind turns the ? placeholders of q (outside quoted literals and
// identifiers) into $1, $2, ...
func rebind(q string) string {
	if v, ok := rebound.Load(q); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	var quote byte
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == '?':
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	rebound.Store(q, out)
	return out
}

// TryLock implements store.Locker with a session-level advisory lock
// (pg_try_advisory_lock on a 64-bit hash of key) held on a connection of
// its own, outside the pool: the lock lasts as long as the work (a mirror
// sync, a repack) without taking a pool connection, and ends with the
// connection should this process die.
func (s *DB) TryLock(ctx context.Context, key string) (release func(), ok bool, err error) {
	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return nil, false, fmt.Errorf("store: lock: %w", err)
	}
	var got bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, "gitserver:"+key).Scan(&got); err != nil || !got {
		conn.Close(context.Background())
		if err != nil {
			return nil, false, fmt.Errorf("store: lock: %w", err)
		}
		return nil, false, nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			// Unlock first: the lock is free when this statement returns.
			// Closing the session frees it too, but only once the server
			// has processed the disconnect, after Close has returned: a
			// TryLock right after release could still find it held.
			// (If the unlock fails, the close still frees it.)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, "gitserver:"+key)
			conn.Close(ctx)
		})
	}, true, nil
}
