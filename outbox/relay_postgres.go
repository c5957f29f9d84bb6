package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/jetevents/events/internal/sqldb"
)

// pgRelay claims a batch on PostgreSQL: in one transaction, the subjects of
// the oldest rows are try-locked (pg_try_advisory_xact_lock, RelayLockClass);
// the rows of the subjects it got are read in id order, published, deleted,
// and the commit frees the locks.
//
// Why this keeps commit order: Publish holds its subject's writer lock
// until its transaction ends, so a subject's rows are inserted, hence
// numbered, in commit order, and a row is only inserted after every
// earlier row of its subject committed: a relay that sees row n of a
// subject sees every row before it. Reading "the oldest rows" with FOR
// UPDATE SKIP LOCKED alone would not do: two relays could take rows 5 and 6
// of one subject and store 6 first. The subject lock makes one relay at a
// time the publisher of a subject, and a subject's rows are read only after
// its lock is taken (READ COMMITTED: a fresh snapshot per statement), so
// the previous holder's deletes are seen.
type pgRelay struct {
	r *Relay
}

// subjectsScanned bounds the subjects tried when every subject of the
// oldest rows is held by other relays.
const subjectsScanned = 64

func (p *pgRelay) role() string { return "active" }

func (p *pgRelay) release(context.Context) {}

func (p *pgRelay) claim(ctx context.Context, exclude []string) (claim, error) {
	o, cfg := p.r.o, p.r.cfg
	tx, err := o.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	ok := false
	defer func() {
		if !ok {
			_ = tx.Rollback()
		}
	}()
	// The subjects of the oldest rows, oldest first.
	window, err := querySubjects(ctx, tx, "SELECT subject FROM "+o.table+" ORDER BY id LIMIT $1", cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	tried := slices.Clone(exclude)
	locked, err := p.tryLock(ctx, tx, without(window, tried))
	if err != nil {
		return nil, err
	}
	if len(locked) == 0 && len(window) > 0 {
		// Every subject of the oldest rows is held by another relay (or
		// waiting for its retry): look at the other subjects, with a loose
		// index scan of (subject, id), one probe per subject.
		tried = append(tried, window...)
		others, err := querySubjects(ctx, tx, `WITH RECURSIVE s(subject) AS (
	(SELECT subject FROM `+o.table+` ORDER BY subject LIMIT 1)
	UNION ALL
	SELECT (SELECT t.subject FROM `+o.table+` t WHERE t.subject > s.subject ORDER BY t.subject LIMIT 1) FROM s WHERE s.subject IS NOT NULL
) SELECT subject FROM s WHERE subject IS NOT NULL AND NOT (subject = ANY($2::text[])) LIMIT $1`, subjectsScanned, tried)
		if err != nil {
			return nil, err
		}
		if locked, err = p.tryLock(ctx, tx, others); err != nil {
			return nil, err
		}
	}
	if len(locked) == 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT id, subject, event_id, payload, correlation_id, causation_id, traceparent, tracestate,
	EXTRACT(EPOCH FROM clock_timestamp() - created_at)::float8
FROM `+o.table+` WHERE subject = ANY($1::text[]) ORDER BY id LIMIT $2`, locked, cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	c := &pgClaim{o: o, tx: tx}
	now := time.Now()
	for rows.Next() {
		var rw row
		var age float64
		if err := rows.Scan(&rw.id, &rw.subject, &rw.eventID, &rw.payload, &rw.corr, &rw.caus, &rw.tp, &rw.ts, &age); err != nil {
			_ = rows.Close()
			return nil, err
		}
		rw.age, rw.read = time.Duration(age*float64(time.Second)), now
		c.rs = append(c.rs, rw)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	ok = true
	return c, nil
}

// tryLock takes the relay lock of each subject it can and returns those.
func (p *pgRelay) tryLock(ctx context.Context, tx *sql.Tx, subjects []string) ([]string, error) {
	if len(subjects) == 0 {
		return nil, nil
	}
	keys := make([]int32, len(subjects))
	for i, s := range subjects {
		keys[i] = sqldb.LockKey(p.r.o.table, s)
	}
	return querySubjects(ctx, tx, `SELECT s FROM unnest($1::text[], $2::int4[]) AS u(s, k)
WHERE pg_try_advisory_xact_lock($3::int4, k)`, subjects, keys, RelayLockClass)
}

// querySubjects returns the distinct subjects q returns, in order.
func querySubjects(ctx context.Context, tx *sql.Tx, q string, args ...any) ([]string, error) {
	rows, err := tx.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	seen := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out, rows.Err()
}

// without is subjects less those in drop.
func without(subjects, drop []string) []string {
	if len(drop) == 0 {
		return subjects
	}
	out := subjects[:0:0]
	for _, s := range subjects {
		if !slices.Contains(drop, s) {
			out = append(out, s)
		}
	}
	return out
}

type pgClaim struct {
	o  *Outbox
	tx *sql.Tx
	rs []row
}

func (c *pgClaim) rows() []row         { return c.rs }
func (c *pgClaim) deadline() time.Time { return time.Time{} }
func (c *pgClaim) abort()              { _ = c.tx.Rollback() }

func (c *pgClaim) finish(ctx context.Context, ids []int64) error {
	if _, err := c.tx.ExecContext(ctx, "DELETE FROM "+c.o.table+" WHERE id = ANY($1::int8[])", ids); err != nil {
		_ = c.tx.Rollback()
		return err
	}
	if err := c.tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}
