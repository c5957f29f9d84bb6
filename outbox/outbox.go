package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/internal/sqldb"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// Lock classes of PostgreSQL's two-key advisory locks (the first key; the
// second is a hash of the table and subject). Publish takes the writer
// lock of its subject until its transaction ends; a relay takes the relay
// lock of each subject it publishes until its batch ends. Both key spaces
// are apart from the one-key (bigint) advisory locks applications use;
// another application's two-key locks would have to pick these very
// classes to meet them.
const (
	WriterLockClass int32 = 0x6a650001
	RelayLockClass  int32 = 0x6a650002
)

// Outbox writes events into the outbox table inside the caller's
// transaction; a Relay publishes them once committed. Safe for concurrent
// use.
type Outbox struct {
	db      *sql.DB
	dialect Dialect
	table   string
	m       *marshaler.Marshaler
	notify  bool
	insert  string
}

// New returns the Outbox of table cfg.Table in db. It does not create the
// table: call CreateSchema (or run Schema in your migrations). Errors match
// envelope.ErrInvalidConfig.
func New(db *sql.DB, cfg Config) (*Outbox, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: nil *sql.DB", envelope.ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	d, err := sqldb.Resolve(cfg.Dialect, db)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", envelope.ErrInvalidConfig, err)
	}
	o := &Outbox{db: db, dialect: d, table: cfg.Table, m: cfg.Marshaler, notify: !cfg.DisableNotify && d == PostgreSQL}
	cols := "subject, event_id, event_type, payload, correlation_id, causation_id, traceparent, tracestate"
	switch {
	case d == SQLite:
		o.insert = "INSERT INTO " + o.table + " (" + cols + ", created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
	case o.notify:
		// One round trip: the lock first (the row's id is drawn when the
		// row is inserted, after it), the notification queued for commit.
		o.insert = "WITH l AS (SELECT pg_advisory_xact_lock($1::int4, $2::int4)), n AS (SELECT pg_notify($11, '')) " +
			"INSERT INTO " + o.table + " (" + cols + ") SELECT $3, $4, $5, $6, $7, $8, $9, $10 FROM l, n"
	default:
		o.insert = "WITH l AS (SELECT pg_advisory_xact_lock($1::int4, $2::int4)) " +
			"INSERT INTO " + o.table + " (" + cols + ") SELECT $3, $4, $5, $6, $7, $8, $9, $10 FROM l"
	}
	return o, nil
}

// Table is the outbox table's name.
func (o *Outbox) Table() string { return o.table }

// Dialect is the database's dialect.
func (o *Outbox) Dialect() Dialect { return o.dialect }

// channel is the PostgreSQL notification channel of the table.
func (o *Outbox) channel() string { return sqldb.Unqualified(o.table) }

// Publish writes e into the outbox inside tx: it is published on subject
// by a Relay once tx commits, and never if tx rolls back. It validates and
// encodes e as a direct publish would (envelope.ErrInvalidSubject,
// ErrInvalidEvent, ErrTooLarge: nothing written), and keeps the correlation
// and causation ids and the trace context of ctx, which the relay puts
// back when it publishes.
//
// Order: events published on the same subject reach the stream in the
// order their transactions committed. On PostgreSQL, Publish takes a lock
// on its subject that tx holds until it ends, so that two transactions
// publishing on one subject commit one after the other from there on: call
// Publish as the last statement before Commit, and publish on several
// subjects in one order (two transactions taking two subjects' locks in
// opposite orders deadlock; PostgreSQL aborts one with SQLSTATE 40P01, to
// be retried like any deadlock). On SQLite, write transactions already
// commit one at a time.
//
// A failed Publish leaves tx as the database left it: on PostgreSQL a
// failed statement aborts the transaction; roll it back.
func (o *Outbox) Publish(ctx context.Context, tx *sql.Tx, subject string, e *envelope.Event) error {
	if tx == nil {
		return fmt.Errorf("outbox: publish %s: %w", subject, ErrNoTransaction)
	}
	msg, err := o.m.PublishMsg(ctx, subject, e, 0) // the relay's publisher checks the server's max payload
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	rel := marshaler.RelationsFromContext(ctx)
	switch {
	case o.dialect == SQLite:
		_, err = tx.ExecContext(ctx, o.insert, subject, e.ID, e.Type, msg.Data, rel.CorrelationID, rel.CausationID,
			rel.TraceParent, rel.TraceState, time.Now().UnixMicro())
	case o.notify:
		_, err = tx.ExecContext(ctx, o.insert, WriterLockClass, sqldb.LockKey(o.table, subject), subject, e.ID, e.Type, msg.Data,
			rel.CorrelationID, rel.CausationID, rel.TraceParent, rel.TraceState, o.channel())
	default:
		_, err = tx.ExecContext(ctx, o.insert, WriterLockClass, sqldb.LockKey(o.table, subject), subject, e.ID, e.Type, msg.Data,
			rel.CorrelationID, rel.CausationID, rel.TraceParent, rel.TraceState)
	}
	if err != nil {
		return fmt.Errorf("outbox: publish %s event %s into %s: %w", subject, e.ID, o.table, err)
	}
	return nil
}

// Publisher returns an events.Publisher whose publishes go into the outbox
// inside tx, so that code written against events.Publisher (the seed's
// CreateResource) changes only where its publisher comes from.
func (o *Outbox) Publisher(tx *sql.Tx) *TxPublisher { return &TxPublisher{o: o, tx: tx} }

// TxPublisher is an events.Publisher bound to one transaction: see
// Outbox.Publisher. It lives as long as the transaction.
type TxPublisher struct {
	o  *Outbox
	tx *sql.Tx
}

// Publish is Outbox.Publish in the publisher's transaction: the event is
// stored by the stream after the transaction commits (by a Relay), never
// if it rolls back.
// Publish options (schedules, TTL, expected sequence) are not stored in the
// outbox: a publish with any is refused with ErrUnsupported, and nothing is
// written.
func (p *TxPublisher) Publish(ctx context.Context, subject string, e *envelope.Event, opts ...transport.PublishOption) error {
	if len(opts) > 0 {
		return fmt.Errorf("outbox: publish %s: %w: publish options (schedules, TTL, expected sequence) are not kept in the outbox; publish such events directly", subject, transport.ErrUnsupported)
	}
	return p.o.Publish(ctx, p.tx, subject, e)
}

// PublishAsync is Publish: writing the row is the transaction's own work,
// there is nothing to queue. Its errors are Publish's, returned here.
func (p *TxPublisher) PublishAsync(ctx context.Context, subject string, e *envelope.Event, opts ...transport.PublishOption) error {
	return p.Publish(ctx, subject, e, opts...)
}

// CancelSchedule is refused with ErrUnsupported: the outbox keeps no
// schedules (see Publish).
func (p *TxPublisher) CancelSchedule(_ context.Context, subject, eventID string) error {
	return fmt.Errorf("outbox: cancel schedule %s %s: %w", subject, eventID, transport.ErrUnsupported)
}

// Close returns nil: a TxPublisher holds nothing of its own; the
// transaction's Commit or Rollback is what ends it.
func (p *TxPublisher) Close() error { return nil }
