package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/jetevents/events/internal/sqldb"
)

// The schema. One row per event published and not yet relayed; the relay
// deletes a row once the stream stored its event. The columns hold what
// the relay needs to publish exactly what a direct publish would have:
// the encoded envelope (payload, validated at Publish) and the relations
// a publish takes from its context (correlation and causation ids, W3C
// trace context), which the relay puts back.
//
//	id              insert order; per subject also commit order (see the package doc)
//	subject         the NATS subject
//	event_id        the envelope's id: the Nats-Msg-Id of the publish
//	event_type      for operators (jetevents outbox status)
//	payload         the envelope's JSON, as the stream will store it
//	correlation_id, causation_id, traceparent, tracestate   '' when none
//	created_at      when Publish wrote the row (lag and age)
const (
	postgresSchema = `CREATE TABLE IF NOT EXISTS {table} (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	subject        text        NOT NULL,
	event_id       text        NOT NULL,
	event_type     text        NOT NULL,
	payload        bytea       NOT NULL,
	correlation_id text        NOT NULL DEFAULT '',
	causation_id   text        NOT NULL DEFAULT '',
	traceparent    text        NOT NULL DEFAULT '',
	tracestate     text        NOT NULL DEFAULT '',
	created_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX IF NOT EXISTS {name}_subject_id ON {table} (subject, id);`

	// SQLite: AUTOINCREMENT so that ids are never reused after the newest
	// rows are deleted (ids only grow, like PostgreSQL's identity);
	// created_at in Unix microseconds. The lease row elects the one relay
	// that publishes at a time.
	sqliteSchema = `CREATE TABLE IF NOT EXISTS {table} (
	id             INTEGER PRIMARY KEY AUTOINCREMENT,
	subject        TEXT    NOT NULL,
	event_id       TEXT    NOT NULL,
	event_type     TEXT    NOT NULL,
	payload        BLOB    NOT NULL,
	correlation_id TEXT    NOT NULL DEFAULT '',
	causation_id   TEXT    NOT NULL DEFAULT '',
	traceparent    TEXT    NOT NULL DEFAULT '',
	tracestate     TEXT    NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS {table}_lease (
	name       TEXT    PRIMARY KEY,
	owner      TEXT    NOT NULL,
	expires_at INTEGER NOT NULL
);`
)

// Schema returns the SQL that creates the outbox's tables for its dialect
// (idempotent: CREATE ... IF NOT EXISTS), for teams that run their own
// migrations. CreateSchema runs it.
func (o *Outbox) Schema() string {
	s := postgresSchema
	if o.dialect == SQLite {
		s = sqliteSchema
	}
	return strings.NewReplacer("{table}", o.table, "{name}", sqldb.Unqualified(o.table)).Replace(s) + "\n"
}

// CreateSchema creates the outbox's tables if they do not exist, in one
// transaction.
func (o *Outbox) CreateSchema(ctx context.Context) error {
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("outbox: create schema: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range strings.Split(o.Schema(), ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("outbox: create schema of %s: %w", o.table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("outbox: create schema of %s: %w", o.table, err)
	}
	return nil
}

// checkSchema returns an error matching ErrNoSchema when a table is missing.
func (o *Outbox) checkSchema(ctx context.Context, db *sql.DB) error {
	tables := []string{o.table}
	if o.dialect == SQLite {
		tables = append(tables, o.table+"_lease")
	}
	for _, t := range tables {
		rows, err := db.QueryContext(ctx, "SELECT 1 FROM "+t+" WHERE 1 = 0")
		if err != nil {
			if missingTable(err) {
				return fmt.Errorf("%w: table %s: call Outbox.CreateSchema or run the SQL of Outbox.Schema (README: Outbox and inbox): %w", ErrNoSchema, t, err)
			}
			return fmt.Errorf("outbox: check table %s: %w", t, err)
		}
		_ = rows.Close()
	}
	return nil
}

// missingTable reports whether err is the database's "no such table":
// PostgreSQL's SQLSTATE 42P01 (undefined_table), SQLite's message.
func missingTable(err error) bool {
	s := err.Error()
	return strings.Contains(s, "42P01") || strings.Contains(s, "no such table") ||
		(strings.Contains(s, "relation") && strings.Contains(s, "does not exist"))
}
