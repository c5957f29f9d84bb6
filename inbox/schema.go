package inbox

import (
	"context"
	"fmt"
	"strings"

	"github.com/jetevents/events/internal/sqldb"
)

// The schema: one row per (consumer group, event id) whose handler
// committed. The primary key is the whole guarantee: a second record of
// the same event for the same group cannot commit.
const (
	postgresSchema = `CREATE TABLE IF NOT EXISTS {table} (
	consumer_group text        NOT NULL,
	event_id       text        NOT NULL,
	event_type     text        NOT NULL,
	handled_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
	PRIMARY KEY (consumer_group, event_id)
);
CREATE INDEX IF NOT EXISTS {name}_handled_at ON {table} (handled_at);`

	// handled_at in Unix microseconds.
	sqliteSchema = `CREATE TABLE IF NOT EXISTS {table} (
	consumer_group TEXT    NOT NULL,
	event_id       TEXT    NOT NULL,
	event_type     TEXT    NOT NULL,
	handled_at     INTEGER NOT NULL,
	PRIMARY KEY (consumer_group, event_id)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS {name}_handled_at ON {table} (handled_at);`
)

// Schema returns the SQL that creates the inbox table for its dialect
// (idempotent), for teams that run their own migrations. CreateSchema runs
// it.
func (in *Inbox) Schema() string {
	s := postgresSchema
	if in.dialect == SQLite {
		s = sqliteSchema
	}
	return strings.NewReplacer("{table}", in.table, "{name}", sqldb.Unqualified(in.table)).Replace(s) + "\n"
}

// CreateSchema creates the inbox table if it does not exist, in one
// transaction.
func (in *Inbox) CreateSchema(ctx context.Context) error {
	tx, err := in.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("inbox: create schema: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	for _, stmt := range strings.Split(in.Schema(), ";\n") {
		if strings.TrimSpace(stmt) == "" {
			continue
		}
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("inbox: create schema of %s: %w", in.table, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("inbox: create schema of %s: %w", in.table, err)
	}
	return nil
}
