package sqlcore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gitserver/store"
)

// Q runs statements written with ? placeholders: *sql.DB and *sql.Tx for
// SQLite, store/postgres's wrappers (which rebind them to $n) for
// PostgreSQL.
type Q interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Engine is what a store engine gives the shared implementation: its
// transactions (with the engine's isolation and retries), its error
// classification and its build-queue notifications.
type Engine interface {
	// Tx runs fn in a write transaction with the isolation SQLite's single
	// writer gives (serializable), running it again when fn returns
	// ErrRetry (up to three times) and on the engine's own transient
	// failures.
	Tx(ctx context.Context, fn func(tx Q) error) error
	// QueueTx runs fn for the build queue's hot path (claims, heartbeats,
	// completion, lease expiry), whose every update repeats its
	// precondition on the row it changes; it may use a weaker isolation
	// than Tx (PostgreSQL: READ COMMITTED).
	QueueTx(ctx context.Context, fn func(tx Q) error) error
	// BuildsChanged announces, within tx (so at its commit), that a build
	// became claimable to every other process on the database; nil
	// where there is no such channel.
	BuildsChanged(ctx context.Context, tx Q) error
	// Notify closes this process's Changed channel, after a commit that
	// made a build claimable.
	Notify()
	// IsUnique reports whether err is a violation of a UNIQUE constraint
	// or a primary key.
	IsUnique(err error) bool
	// IsForeignKey reports whether err is a FOREIGN KEY violation.
	IsForeignKey(err error) bool
}

// Dialect holds the few spellings no single statement covers on both
// engines.
type Dialect struct {
	// SkipLocked follows the claim's SELECT of the oldest queued build:
	// " FOR UPDATE SKIP LOCKED" where there are row locks, "" on SQLite
	// (whose writer holds the whole database).
	SkipLocked string
	// TableExists is a query, with the table name as its one ?, that
	// returns 1 when the table exists in the store's schema, 0 when not.
	TableExists string
}

// Config configures New.
type Config struct {
	Engine Engine
	// W runs statements outside a transaction that write; R those that
	// only read (both may be the same handle).
	W, R    Q
	Now     func() time.Time
	Sealer  store.Sealer // nil stores secrets unsealed: tests only
	Dialect Dialect
}

// Core implements the statements of store.Store shared by the engines. An
// engine's DB embeds *Core and adds what differs (Open, Close, Ping, Now,
// Changed, backups, locks).
type Core struct {
	e      Engine
	w, r   Q
	now    func() time.Time
	sealer store.Sealer
	d      Dialect
	// Sealed is the registry of sealed columns ResealAll re-seals: a copy
	// of SealedColumns (tests replace it).
	Sealed []SealedColumn
}

// New returns a Core over cfg.
func New(cfg Config) *Core {
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Core{
		e: cfg.Engine, w: cfg.W, r: cfg.R, now: now, sealer: cfg.Sealer, d: cfg.Dialect,
		Sealed: append([]SealedColumn(nil), SealedColumns...),
	}
}

// ErrRetry rolls a transaction back and runs it again: a guard found that
// another writer changed what the transaction read. Engine.Tx and
// Engine.QueueTx run fn up to three times while it returns ErrRetry.
var ErrRetry = errors.New("store: concurrent update; retrying")

var errRetry = ErrRetry

// tx runs fn in the engine's write transaction.
func (s *Core) tx(ctx context.Context, fn func(tx Q) error) error { return s.e.Tx(ctx, fn) }

// emptyBlob is bound where a NOT NULL BLOB/BYTEA column starts empty
// (the empty-blob literal is spelled differently by each engine).
var emptyBlob = []byte{}

// Micros is the stored form of a time: Unix microseconds, 0 for the zero
// time.
func Micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromMicros is the inverse of Micros (in UTC).
func FromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

func micros(t time.Time) int64     { return Micros(t) }
func fromMicros(v int64) time.Time { return FromMicros(v) }

func wrapUnlessSentinel(op string, err error) error {
	if store.IsSentinel(err) {
		return err
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

func truncate(s string, n int) string { return store.Truncate(s, n) }

type scanner interface{ Scan(...any) error }

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// writeAudit appends entries to the audit log within tx: they commit with
// the change tx makes, or not at all.
func (s *Core) writeAudit(ctx context.Context, tx execer, entries []store.AuditEntry) error {
	for _, e := range entries {
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_events (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)`,
			micros(s.now()), e.Actor, e.Action, e.Target, e.Detail); err != nil {
			return fmt.Errorf("store: audit: %w", err)
		}
	}
	return nil
}

// QueueDepth returns the number of queued builds (a metric).
func (s *Core) QueueDepth(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM builds WHERE status = 'queued'`).Scan(&n)
	return n, err
}
