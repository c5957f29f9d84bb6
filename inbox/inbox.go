package inbox

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/internal/sqldb"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// Dialect is the SQL dialect of the service's database (the same type as
// outbox.Dialect).
type Dialect = sqldb.Dialect

// The dialects. The zero value detects the dialect from the *sql.DB's
// driver.
const (
	Detect     = sqldb.Detect
	PostgreSQL = sqldb.PostgreSQL
	SQLite     = sqldb.SQLite
)

// defaultTable is the inbox table's default name.
const defaultTable = "jetevents_inbox"

// Config configures an Inbox. Zero fields take the documented defaults.
type Config struct {
	// Dialect of the database. Default Detect (from the driver).
	Dialect Dialect
	// Table is the inbox table, optionally schema-qualified. Default
	// "jetevents_inbox".
	Table string
	// TxOptions are the options of the handler's transaction. Default nil:
	// the database's default isolation (READ COMMITTED on PostgreSQL). Under
	// REPEATABLE READ or SERIALIZABLE, two deliveries of one event racing
	// (a redelivery after AckWait while the first still runs) end in a
	// serialization failure for one of them, which is retried like any
	// error and then skipped as a duplicate.
	TxOptions *sql.TxOptions
}

// Validate reports a configuration that cannot work; errors match
// envelope.ErrInvalidConfig.
func (c Config) Validate() error {
	switch c.Dialect {
	case Detect, PostgreSQL, SQLite:
	default:
		return fmt.Errorf("%w: dialect %q (PostgreSQL or SQLite)", envelope.ErrInvalidConfig, string(c.Dialect))
	}
	if c.Table != "" {
		if err := sqldb.ValidTable(c.Table); err != nil {
			return fmt.Errorf("%w: %w", envelope.ErrInvalidConfig, err)
		}
	}
	return nil
}

// TxHandlerFunc handles one event inside the inbox's transaction: every
// write it makes through tx commits together with the event's inbox
// record, or not at all. It must not commit or roll back tx. Its error
// means what a router.HandlerFunc's means: retry later, or dead-letter now
// when wrapped with events.Permanent.
type TxHandlerFunc func(ctx context.Context, tx *sql.Tx, e *envelope.Event) error

// Inbox runs router handlers inside a database transaction that also
// records (consumer group, event id): a redelivered event whose record
// committed is acked without running the handler again. Safe for
// concurrent use; one Inbox serves any number of groups and handlers.
type Inbox struct {
	db      *sql.DB
	dialect Dialect
	table   string
	txOpts  *sql.TxOptions
	record  string

	handled, duplicates, failed, commitFailed atomic.Uint64
}

// New returns the Inbox of table cfg.Table in db. It does not create the
// table: call CreateSchema (or run Schema in your migrations). On SQLite
// it refuses a database without a busy timeout (handlers would fail with
// SQLITE_BUSY instead of waiting for each other): add
// _pragma=busy_timeout(5000) to the DSN. Errors match envelope.ErrInvalidConfig.
func New(db *sql.DB, cfg Config) (*Inbox, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil *sql.DB", envelope.ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Table == "" {
		cfg.Table = defaultTable
	}
	d, err := sqldb.Resolve(cfg.Dialect, db)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", envelope.ErrInvalidConfig, err)
	}
	in := &Inbox{db: db, dialect: d, table: cfg.Table, txOpts: cfg.TxOptions}
	if d == SQLite {
		if err := checkBusyTimeout(db); err != nil {
			return nil, err
		}
		in.record = "INSERT OR IGNORE INTO " + in.table + " (consumer_group, event_id, event_type, handled_at) VALUES (?, ?, ?, ?)"
	} else {
		in.record = "INSERT INTO " + in.table + " (consumer_group, event_id, event_type) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING"
	}
	return in, nil
}

// Table is the inbox table's name.
func (in *Inbox) Table() string { return in.table }

// Handler returns a router.HandlerFunc that runs fn inside a transaction
// with the event's inbox record:
//
//  1. begin a transaction (Config.TxOptions);
//  2. insert (group, event id), the group being the delivering durable
//     (router.DeliveryFrom(ctx).Consumer). Already there: the event was
//     handled and committed before (its ack was lost, or it was published
//     twice beyond the stream's duplicates window): roll back and return
//     nil, so the router acks it, and mark the delivery skipped as a
//     duplicate (the router's Outcome, logs and metrics say so). On
//     PostgreSQL a second delivery of an event being handled waits here for
//     the first one's transaction, then skips or runs;
//  3. run fn; an error (or a panic) rolls everything back, record
//     included, and is returned as it is: the router retries the event, or
//     dead-letters it when the error is events.Permanent;
//  4. commit. A commit that fails (fn returned nil) is returned as an
//     error matching ErrCommit: nothing of fn happened, and the router
//     retries it. A commit that succeeded but whose answer was lost is
//     found by the redelivery's step 2.
//
// The transaction lives on the handler's context: a handler cut off at the
// router's close deadline or HandlerTimeout rolls back and is redelivered.
func (in *Inbox) Handler(fn TxHandlerFunc) router.HandlerFunc {
	return func(ctx context.Context, e *envelope.Event) error {
		return in.handle(ctx, e, fn)
	}
}

// On registers fn on g for eventType, run by Handler.
func (in *Inbox) On(g *router.Group, eventType string, fn TxHandlerFunc, opts ...router.HandlerOption) *router.Group {
	if fn == nil {
		return g.On(eventType, nil, opts...) // reports the nil handler
	}
	return g.On(eventType, in.Handler(fn), opts...)
}

// Handle registers a typed handler on g for eventType: the event's data is
// decoded into a T (router.Handle: data that does not fit T is
// dead-lettered with reason "unmarshal", no transaction begun), then fn
// runs inside the inbox's transaction (see Inbox.Handler).
func Handle[T any](in *Inbox, g *router.Group, eventType string, fn func(ctx context.Context, tx *sql.Tx, e *envelope.Event, data T) error, opts ...router.HandlerOption) *router.Group {
	if fn == nil {
		return g.On(eventType, nil, opts...) // reports the nil handler
	}
	return router.Handle(g, eventType, func(ctx context.Context, e *envelope.Event, data T) error {
		return in.handle(ctx, e, func(ctx context.Context, tx *sql.Tx, e *envelope.Event) error {
			return fn(ctx, tx, e, data)
		})
	}, opts...)
}

func (in *Inbox) handle(ctx context.Context, e *envelope.Event, fn TxHandlerFunc) (err error) {
	d, ok := router.DeliveryFrom(ctx)
	if !ok || d.Consumer == "" {
		return fmt.Errorf("%w: event %s (register the handler on a router group)", ErrNoDelivery, e.ID)
	}
	tx, err := in.db.BeginTx(ctx, in.txOpts)
	if err != nil {
		return fmt.Errorf("%w: begin for event %s: %w", ErrRecord, e.ID, err)
	}
	done := false
	defer func() {
		if !done { // an error, or a panic on its way to the router's Recoverer
			_ = tx.Rollback()
		}
	}()
	args := []any{d.Consumer, e.ID, e.Type}
	if in.dialect == SQLite {
		args = append(args, time.Now().UnixMicro())
	}
	res, err := tx.ExecContext(ctx, in.record, args...)
	if err != nil {
		if missingTable(err) {
			return fmt.Errorf("%w: table %s: call Inbox.CreateSchema or run the SQL of Inbox.Schema: %w", ErrNoSchema, in.table, err)
		}
		return fmt.Errorf("%w: event %s group %s: %w", ErrRecord, e.ID, d.Consumer, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%w: event %s group %s: %w", ErrRecord, e.ID, d.Consumer, err)
	}
	if n == 0 {
		in.duplicates.Add(1)
		if dv := transport.FromContext(ctx); dv != nil {
			// Acked as a skipped duplicate, as Idempotency reports one.
			dv.Verdict = transport.Skip(transport.SkipDuplicate)
		}
		return nil // the deferred rollback ends the transaction
	}
	if err := in.call(ctx, tx, e, fn); err != nil {
		in.failed.Add(1)
		return err
	}
	done = true
	if err := tx.Commit(); err != nil {
		in.commitFailed.Add(1)
		return fmt.Errorf("%w: event %s group %s: %w", ErrCommit, e.ID, d.Consumer, err)
	}
	in.handled.Add(1)
	return nil
}

// call runs fn, counting a panic as a failure on its way to the router's
// Recoverer (the deferred rollback of handle ends the transaction).
func (in *Inbox) call(ctx context.Context, tx *sql.Tx, e *envelope.Event, fn TxHandlerFunc) error {
	defer func() {
		if r := recover(); r != nil {
			in.failed.Add(1)
			panic(r)
		}
	}()
	return fn(ctx, tx, e)
}

// Stats are an Inbox's counters since New.
type Stats struct {
	// Handled counts events whose handler ran and whose transaction
	// committed.
	Handled uint64
	// Duplicates counts deliveries skipped because the event's record had
	// committed before.
	Duplicates uint64
	// Failed counts handler errors and panics (rolled back, retried or
	// dead-lettered by the router).
	Failed uint64
	// CommitFailed counts transactions whose handler returned nil and
	// whose commit failed (retried).
	CommitFailed uint64
}

// Stats returns the counters.
func (in *Inbox) Stats() Stats {
	return Stats{Handled: in.handled.Load(), Duplicates: in.duplicates.Load(), Failed: in.failed.Load(), CommitFailed: in.commitFailed.Load()}
}

// Handled reports whether group's record of eventID committed.
func (in *Inbox) Handled(ctx context.Context, group, eventID string) (bool, error) {
	q := "SELECT count(*) FROM " + in.table + " WHERE consumer_group = $1 AND event_id = $2"
	if in.dialect == SQLite {
		q = "SELECT count(*) FROM " + in.table + " WHERE consumer_group = ? AND event_id = ?"
	}
	var n int
	if err := in.db.QueryRowContext(ctx, q, group, eventID).Scan(&n); err != nil {
		return false, fmt.Errorf("inbox: read %s: %w", in.table, err)
	}
	return n > 0, nil
}

// Prune deletes the records older than olderThan and returns how many. A
// record must outlive every redelivery and every re-publish of its event:
// keep it longer than the streams' MaxAge (a replay from the stream start)
// and than any dead-letter replay you may run. Call it from a periodic
// job; nothing prunes by itself.
func (in *Inbox) Prune(ctx context.Context, olderThan time.Duration) (int64, error) {
	if olderThan <= 0 {
		return 0, fmt.Errorf("%w: Prune olderThan %s must be positive", envelope.ErrInvalidConfig, olderThan)
	}
	var res sql.Result
	var err error
	if in.dialect == SQLite {
		res, err = in.db.ExecContext(ctx, "DELETE FROM "+in.table+" WHERE handled_at < ?", time.Now().Add(-olderThan).UnixMicro())
	} else {
		res, err = in.db.ExecContext(ctx, "DELETE FROM "+in.table+" WHERE handled_at < clock_timestamp() - make_interval(secs => $1)", olderThan.Seconds())
	}
	if err != nil {
		return 0, fmt.Errorf("inbox: prune %s: %w", in.table, err)
	}
	return res.RowsAffected()
}

func missingTable(err error) bool {
	s := err.Error()
	return strings.Contains(s, "42P01") || strings.Contains(s, "no such table") ||
		(strings.Contains(s, "relation") && strings.Contains(s, "does not exist"))
}

func checkBusyTimeout(db *sql.DB) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ms int64
	if err := db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&ms); err != nil {
		return fmt.Errorf("%w: read PRAGMA busy_timeout: %w", envelope.ErrInvalidConfig, err)
	}
	if ms <= 0 {
		return fmt.Errorf("%w: SQLite connections without a busy timeout fail with SQLITE_BUSY while handlers write: add _pragma=busy_timeout(5000) to the DSN", envelope.ErrInvalidConfig)
	}
	return nil
}
