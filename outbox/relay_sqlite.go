package outbox

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/jetevents/events/envelope"
)

// sqliteRelay claims a batch on SQLite. Write transactions commit one at a
// time there and a row's id is drawn inside its transaction, so id order
// is commit order. One relay publishes at a time: the holder of the lease
// row, renewed by each batch; the others stand by and take it when it
// expires (LeaseTTL). A holder publishes only while its lease has at least
// PublishTimeout left, and deletes its batch in the transaction that
// renews the lease: a relay that lost it deletes nothing (ErrLeaseLost).
type sqliteRelay struct {
	r          *Relay
	leaseUntil time.Time // by this process's monotonic clock
	active     bool
}

const leaseName = "relay"

func (s *sqliteRelay) role() string {
	if s.active {
		return "active"
	}
	return "standby"
}

func (s *sqliteRelay) leaseTable() string { return s.r.o.table + "_lease" }

// acquire takes or renews the lease; it reports whether this relay holds it.
func (s *sqliteRelay) acquire(ctx context.Context, q interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}) (bool, error) {
	now := time.Now()
	res, err := q.ExecContext(ctx, `INSERT INTO `+s.leaseTable()+` (name, owner, expires_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at
WHERE `+s.leaseTable()+`.owner = excluded.owner OR `+s.leaseTable()+`.expires_at < ?`,
		leaseName, s.r.cfg.Name, now.Add(s.r.cfg.LeaseTTL).UnixMicro(), now.UnixMicro())
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	if n == 0 {
		if s.active {
			s.r.log.Info("Outbox relay lease taken by another relay: standing by", nil)
		}
		s.active = false
		return false, nil
	}
	if !s.active {
		s.r.log.Info("Outbox relay holds the lease: publishing", nil)
	}
	s.active, s.leaseUntil = true, now.Add(s.r.cfg.LeaseTTL)
	return true, nil
}

// needsLease reports whether claim must write the lease row: to take it
// (not held, and maybe expired) or to renew it (less than half its TTL
// left). Otherwise a claim is reads only: on SQLite every write waits for
// the database's one write lock, which the service's writers hold most of
// the time under load, and SQLite's busy handler is not fair to a waiter.
// The batch's finish renews the lease anyway, in the transaction that
// deletes the batch.
func (s *sqliteRelay) needsLease(ctx context.Context) (bool, error) {
	if s.active {
		return time.Until(s.leaseUntil) < s.r.cfg.LeaseTTL/2, nil
	}
	var owner string
	var expires int64
	err := s.r.o.db.QueryRowContext(ctx, `SELECT owner, expires_at FROM `+s.leaseTable()+` WHERE name = ?`, leaseName).Scan(&owner, &expires)
	switch {
	case err == sql.ErrNoRows:
		return true, nil
	case err != nil:
		return false, err
	}
	return owner == s.r.cfg.Name || time.Now().UnixMicro() > expires, nil
}

func (s *sqliteRelay) claim(ctx context.Context, exclude []string) (claim, error) {
	ctx, cancel := context.WithTimeout(ctx, dbTimeout)
	defer cancel()
	need, err := s.needsLease(ctx)
	if err != nil {
		return nil, err
	}
	if need {
		if _, err := s.acquire(ctx, s.r.o.db); err != nil {
			return nil, err
		}
	}
	if !s.active {
		return nil, nil
	}
	ex, _ := json.Marshal(exclude)
	if exclude == nil {
		ex = []byte("[]")
	}
	rows, err := s.r.o.db.QueryContext(ctx, `SELECT id, subject, event_id, payload, correlation_id, causation_id, traceparent, tracestate, created_at
FROM `+s.r.o.table+` WHERE subject NOT IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?`, string(ex), s.r.cfg.BatchSize)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	c := &sqliteClaim{s: s, until: s.leaseUntil.Add(-s.r.cfg.PublishTimeout)}
	now := time.Now()
	for rows.Next() {
		var rw row
		var created int64
		if err := rows.Scan(&rw.id, &rw.subject, &rw.eventID, &rw.payload, &rw.corr, &rw.caus, &rw.tp, &rw.ts, &created); err != nil {
			return nil, err
		}
		rw.age, rw.read = now.Sub(time.UnixMicro(created)), now
		c.rs = append(c.rs, rw)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(c.rs) == 0 {
		return nil, nil
	}
	return c, nil
}

func (s *sqliteRelay) release(ctx context.Context) {
	if !s.active {
		return
	}
	s.active = false
	if _, err := s.r.o.db.ExecContext(ctx, `UPDATE `+s.leaseTable()+` SET expires_at = 0 WHERE name = ? AND owner = ?`, leaseName, s.r.cfg.Name); err != nil {
		s.r.log.Info("Outbox relay could not give up its lease: a standby takes over when it expires", watermill.LogFields{"error": err})
	}
}

type sqliteClaim struct {
	s     *sqliteRelay
	until time.Time
	rs    []row
}

func (c *sqliteClaim) rows() []row         { return c.rs }
func (c *sqliteClaim) deadline() time.Time { return c.until }
func (c *sqliteClaim) abort()              {}

func (c *sqliteClaim) finish(ctx context.Context, ids []int64) error {
	tx, err := c.s.r.o.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	held, err := c.s.acquire(ctx, tx)
	if err != nil {
		return err
	}
	if !held {
		return ErrLeaseLost
	}
	js, _ := json.Marshal(ids)
	if _, err := tx.ExecContext(ctx, `DELETE FROM `+c.s.r.o.table+` WHERE id IN (SELECT value FROM json_each(?))`, string(js)); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// checkBusyTimeout refuses a SQLite database whose connections fail at
// once on a lock instead of waiting for it.
func checkBusyTimeout(o *Outbox) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ms int64
	if err := o.db.QueryRowContext(ctx, "PRAGMA busy_timeout").Scan(&ms); err != nil {
		return fmt.Errorf("%w: read PRAGMA busy_timeout: %w", envelope.ErrInvalidConfig, err)
	}
	if ms <= 0 {
		return fmt.Errorf("%w: SQLite connections without a busy timeout fail with SQLITE_BUSY while the relay and the service write: add _pragma=busy_timeout(5000) to the DSN", envelope.ErrInvalidConfig)
	}
	return nil
}
