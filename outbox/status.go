package outbox

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Status is what the outbox table holds now: the rows not yet relayed.
type Status struct {
	// Table is the outbox table.
	Table string
	// Pending is the number of rows waiting to be published (committed,
	// not yet deleted by a relay).
	Pending int64
	// OldestAge is the age of the oldest pending row (0 when none): the
	// relay's lag, or how long a held subject has been stuck.
	OldestAge time.Duration
	// Subjects are the pending rows by subject, oldest first (at most
	// StatusSubjects of them).
	Subjects []SubjectStatus
	// Lease is the SQLite relays' lease (nil on PostgreSQL, or when no
	// relay ever ran).
	Lease *Lease
}

// SubjectStatus is one subject's pending rows.
type SubjectStatus struct {
	Subject   string
	Pending   int64
	OldestAge time.Duration
	// OldestID and OldestEventID name the subject's oldest row, the one
	// the relay publishes next.
	OldestID      int64
	OldestEventID string
}

// Lease is the SQLite relays' lease row.
type Lease struct {
	Owner string
	// ExpiresIn is the time left (negative: expired, a standby takes over
	// at its next look).
	ExpiresIn time.Duration
}

// StatusSubjects bounds Status.Subjects.
const StatusSubjects = 20

// Status reads the outbox table: pending rows, the oldest's age, the
// subjects with pending rows and the SQLite lease. Errors match
// ErrNoSchema when the table is missing.
func (o *Outbox) Status(ctx context.Context) (Status, error) {
	st := Status{Table: o.table}
	var err error
	st.Pending, st.OldestAge, err = o.backlog(ctx)
	if err != nil {
		return st, err
	}
	if st.Pending == 0 {
		return st, o.lease(ctx, &st)
	}
	q := `SELECT subject, count(*), min(id), EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8 FROM ` + o.table +
		` GROUP BY subject ORDER BY min(id) LIMIT $1`
	if o.dialect == SQLite {
		q = `SELECT subject, count(*), min(id), min(created_at) FROM ` + o.table + ` GROUP BY subject ORDER BY min(id) LIMIT ?`
	}
	rows, err := o.db.QueryContext(ctx, q, StatusSubjects)
	if err != nil {
		return st, fmt.Errorf("outbox: status of %s: %w", o.table, err)
	}
	defer rows.Close()
	now := time.Now()
	for rows.Next() {
		var s SubjectStatus
		if o.dialect == SQLite {
			var created int64
			err = rows.Scan(&s.Subject, &s.Pending, &s.OldestID, &created)
			s.OldestAge = now.Sub(time.UnixMicro(created))
		} else {
			var age float64
			err = rows.Scan(&s.Subject, &s.Pending, &s.OldestID, &age)
			s.OldestAge = seconds(age)
		}
		if err != nil {
			return st, fmt.Errorf("outbox: status of %s: %w", o.table, err)
		}
		st.Subjects = append(st.Subjects, s)
	}
	if err := rows.Err(); err != nil {
		return st, fmt.Errorf("outbox: status of %s: %w", o.table, err)
	}
	for i := range st.Subjects {
		q := "SELECT event_id FROM " + o.table + " WHERE id = $1"
		if o.dialect == SQLite {
			q = "SELECT event_id FROM " + o.table + " WHERE id = ?"
		}
		if err := o.db.QueryRowContext(ctx, q, st.Subjects[i].OldestID).Scan(&st.Subjects[i].OldestEventID); err != nil && err != sql.ErrNoRows {
			return st, fmt.Errorf("outbox: status of %s: %w", o.table, err)
		}
	}
	return st, o.lease(ctx, &st)
}

func (o *Outbox) lease(ctx context.Context, st *Status) error {
	if o.dialect != SQLite {
		return nil
	}
	var owner string
	var expires int64
	err := o.db.QueryRowContext(ctx, "SELECT owner, expires_at FROM "+o.table+"_lease WHERE name = ?", leaseName).Scan(&owner, &expires)
	switch {
	case err == sql.ErrNoRows:
		return nil
	case err != nil:
		return fmt.Errorf("outbox: lease of %s: %w", o.table, err)
	}
	st.Lease = &Lease{Owner: owner, ExpiresIn: time.Until(time.UnixMicro(expires))}
	return nil
}

// Backlog reports the table, its pending rows and the age of the oldest
// (0 when none). Its signature is what metrics.Metrics.WatchOutbox takes,
// read at every scrape. It counts rows: on a large backlog that is a scan
// of the table's primary key.
func (o *Outbox) Backlog(ctx context.Context) (table string, pending int64, oldest time.Duration, err error) {
	pending, oldest, err = o.backlog(ctx)
	return o.table, pending, oldest, err
}

func (o *Outbox) backlog(ctx context.Context) (int64, time.Duration, error) {
	var n int64
	var oldest time.Duration
	var err error
	if o.dialect == SQLite {
		var created sql.NullInt64
		err = o.db.QueryRowContext(ctx, "SELECT count(*), min(created_at) FROM "+o.table).Scan(&n, &created)
		if created.Valid {
			oldest = time.Since(time.UnixMicro(created.Int64))
		}
	} else {
		var age sql.NullFloat64
		err = o.db.QueryRowContext(ctx, "SELECT count(*), EXTRACT(EPOCH FROM clock_timestamp() - min(created_at))::float8 FROM "+o.table).Scan(&n, &age)
		if age.Valid {
			oldest = seconds(age.Float64)
		}
	}
	if err != nil {
		if missingTable(err) {
			return 0, 0, fmt.Errorf("%w: table %s: %w", ErrNoSchema, o.table, err)
		}
		return 0, 0, fmt.Errorf("outbox: backlog of %s: %w", o.table, err)
	}
	return n, max(oldest, 0), nil
}

func seconds(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }

// RelayStats are a relay's counters since NewRelay.
type RelayStats struct {
	// Relayed counts rows the stream acked (duplicates included).
	Relayed uint64
	// Duplicates counts acks saying the stream already held the event: a
	// row published again after a relay died before deleting it (known
	// only with a publisher that has PublishAck).
	Duplicates uint64
	// Failed counts publishes that failed (each retried).
	Failed uint64
}

// Stats returns the relay's counters.
func (r *Relay) Stats() RelayStats {
	return RelayStats{Relayed: r.relayed.Load(), Duplicates: r.duplicates.Load(), Failed: r.failed.Load()}
}

// RelayHealth is a relay's state, for a readiness or liveness probe.
type RelayHealth struct {
	// Running is true between Run's start and its return.
	Running bool
	// Role is "active" (publishing), "standby" (SQLite: another relay
	// holds the lease) or "" (not running).
	Role string
	// Listening is true while PostgreSQL notifications wake the relay.
	Listening bool
	// LastBatch is when a batch last reached the database successfully.
	LastBatch time.Time
	// Err is the last batch's database error; nil once a batch succeeds.
	Err error
	// Blocked are the subjects whose oldest row failed to publish and
	// wait for their retry, the rows behind them waiting too.
	Blocked []BlockedSubject
	// Pending and OldestAge are the table's backlog (Outbox.Backlog);
	// BacklogErr is set when it could not be read.
	Pending    int64
	OldestAge  time.Duration
	BacklogErr error
	RelayStats
	// Ready: running, its last batch succeeded and no subject is blocked.
	Ready bool
}

// Health reports the relay's state, reading the backlog from the database
// (bounded by ctx). Safe to call at any time from any goroutine.
func (r *Relay) Health(ctx context.Context) RelayHealth {
	h := RelayHealth{Running: r.running.Load(), Listening: r.listening.Load(), RelayStats: r.Stats()}
	r.mu.Lock()
	h.Role, h.LastBatch, h.Err = r.role, r.lastBatch, r.lastErr
	for _, b := range r.blocked {
		h.Blocked = append(h.Blocked, *b)
	}
	r.mu.Unlock()
	h.Pending, h.OldestAge, h.BacklogErr = r.o.backlog(ctx)
	h.Ready = h.Running && h.Err == nil && len(h.Blocked) == 0 && !h.LastBatch.IsZero()
	return h
}
