// Package sqldb holds what the outbox and inbox packages share about the
// service's database: the SQL dialects they speak (PostgreSQL and SQLite),
// the detection of a dialect from a *sql.DB's driver, identifier checks for
// configurable table names, and the lock keys derived from names.
//
// It is internal: users see its Dialect through the aliases outbox.Dialect
// and inbox.Dialect, which are the same type.
package sqldb

import (
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"regexp"
	"strings"
)

// Dialect is the SQL dialect of the service's database.
type Dialect string

// The dialects spoken. The zero value means "detect it from the driver".
const (
	// Detect: read the dialect from the *sql.DB's driver: jackc/pgx's
	// stdlib driver and lib/pq are PostgreSQL, modernc.org/sqlite and
	// mattn/go-sqlite3 are SQLite. Any other driver is refused: set the
	// dialect explicitly.
	Detect Dialect = ""
	// PostgreSQL 12 or later (tested on 15).
	PostgreSQL Dialect = "postgres"
	// SQLite 3.35 or later (modernc.org/sqlite, pure Go, is the tested one).
	SQLite Dialect = "sqlite"
)

// ErrUnknownDialect: the dialect could not be detected or is not one of ours.
var ErrUnknownDialect = errors.New("unknown SQL dialect")

// Resolve returns d, or the dialect of db's driver when d is Detect.
func Resolve(d Dialect, db *sql.DB) (Dialect, error) {
	switch d {
	case PostgreSQL, SQLite:
		return d, nil
	case Detect:
	default:
		return "", fmt.Errorf("%w: %q (use PostgreSQL or SQLite)", ErrUnknownDialect, string(d))
	}
	if db == nil {
		return "", fmt.Errorf("%w: no *sql.DB to detect it from", ErrUnknownDialect)
	}
	// By the driver's type name, so that this package links neither driver.
	name := fmt.Sprintf("%T", db.Driver())
	switch name {
	case "*stdlib.Driver", "*pq.Driver":
		return PostgreSQL, nil
	case "*sqlite.Driver", "*sqlite3.SQLiteDriver":
		return SQLite, nil
	}
	return "", fmt.Errorf("%w: driver %s: set the Dialect (PostgreSQL or SQLite)", ErrUnknownDialect, name)
}

var ident = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,62}$`)

// ValidTable reports whether name can be used as a table name unquoted:
// an identifier, optionally schema-qualified (schema.table), each part
// [A-Za-z_][A-Za-z0-9_]* of at most 63 bytes (PostgreSQL's limit).
// Table names are spliced into SQL text, so nothing else is accepted.
func ValidTable(name string) error {
	parts := strings.Split(name, ".")
	if len(parts) > 2 {
		return fmt.Errorf("table name %q: at most schema.table", name)
	}
	for _, p := range parts {
		if !ident.MatchString(p) {
			return fmt.Errorf("table name %q: each part must match [A-Za-z_][A-Za-z0-9_]* (at most 63 bytes)", name)
		}
	}
	return nil
}

// Unqualified is name without its schema: the base of index and channel names.
func Unqualified(name string) string {
	if i := strings.LastIndexByte(name, '.'); i >= 0 {
		return name[i+1:]
	}
	return name
}

// LockKey is a 32-bit key for PostgreSQL's two-key advisory locks, derived
// from parts (FNV-1a over them, separated by NUL). Two names that collide
// only share a lock: they are serialised together, never wrongly let
// through.
func LockKey(parts ...string) int32 {
	h := fnv.New32a()
	for i, p := range parts {
		if i > 0 {
			_, _ = h.Write([]byte{0})
		}
		_, _ = h.Write([]byte(p))
	}
	return int32(h.Sum32())
}
