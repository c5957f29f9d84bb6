package outbox

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"go.opentelemetry.io/otel/propagation"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// Publisher is what a Relay publishes with: *jetstream.Publisher (whose
// Nats-Msg-Id is the event id, so that the stream de-duplicates a row
// published twice), the in-memory bus's memory.Publisher in tests, or any
// events.Publisher. When it also has PublishAck (jetstream.Publisher does),
// the relay counts the publishes the stream reported as duplicates.
type Publisher interface {
	Publish(ctx context.Context, subject string, e *envelope.Event, opts ...transport.PublishOption) error
}

type acker interface {
	PublishAck(ctx context.Context, subject string, e *envelope.Event, opts ...transport.PublishOption) (jetstream.PubAck, error)
}

// dbTimeout bounds each database step of a batch (claim, delete), so that a
// hung database delays Run's return by at most that much.
const dbTimeout = 30 * time.Second

// Relay publishes the committed rows of an Outbox and deletes them once
// the stream stored them. Run it in every process that writes the outbox
// (or in a few of them): relays share the work safely.
//
// What it guarantees, per subject: every committed row is published at
// least once, in commit order, each row only once its predecessor on the
// subject is stored; a row is deleted only after the stream's ack. A relay
// that dies mid-batch leaves its rows; the next relay to take the subject
// publishes them again, and the stream drops those it already stored as
// duplicates (Nats-Msg-Id = event id) as long as that happens inside its
// duplicates window (RelayConfig.DuplicateWindow).
//
// How relays share a table. PostgreSQL: each batch, in one transaction,
// takes a transaction-level advisory lock per subject (try-lock: a subject
// another relay is publishing is skipped), reads the locked subjects'
// oldest rows, publishes, deletes them and commits, which frees the locks.
// Two relays never publish one subject at once, and a relay's locks die
// with its connection: no timeout to wait for after a crash. SQLite: one
// relay at a time holds a lease row (renewed by every batch, LeaseTTL);
// the others stand by and take over when it expires.
type Relay struct {
	o   *Outbox
	pub Publisher
	ack acker
	cfg RelayConfig
	d   dialectRelay
	log watermill.LoggerAdapter

	running   atomic.Bool
	listening atomic.Bool
	wake      chan struct{}

	relayed, duplicates, failed atomic.Uint64

	mu        sync.Mutex
	blocked   map[string]*BlockedSubject // subjects whose head row failed
	stored    map[int64]struct{}         // published, not yet deleted (a failed delete)
	lastBatch time.Time                  // the last batch that reached the database
	lastErr   error                      // the last batch's database error, nil once one succeeds
	errStreak uint64
	role      string
}

// dialectRelay is how one dialect claims rows for a batch.
type dialectRelay interface {
	// claim returns the rows of the next batch (nil: none to publish now,
	// or standing by), skipping the subjects in exclude. A transaction it
	// opens lives on ctx (which is not cancelled while the batch runs);
	// each statement is bounded by dbTimeout.
	claim(ctx context.Context, exclude []string) (claim, error)
	// release gives up what the relay holds (the SQLite lease) at the end
	// of Run.
	release(ctx context.Context)
	// role is "active" or "standby".
	role() string
}

// claim is one batch's rows and how to end it.
type claim interface {
	rows() []row
	// deadline is when publishing must stop (zero: none).
	deadline() time.Time
	// finish deletes ids (rows stored by the stream) and ends the batch.
	finish(ctx context.Context, ids []int64) error
	// abort ends the batch without deleting anything.
	abort()
}

// row is one outbox row as the relay reads it.
type row struct {
	id                 int64
	subject, eventID   string
	payload            []byte
	corr, caus, tp, ts string
	age                time.Duration // since Publish, when read
	read               time.Time
}

// BlockedSubject is a subject whose oldest row could not be published: it
// and the rows behind it wait (in order) and are retried with backoff.
type BlockedSubject struct {
	Subject  string
	RowID    int64
	EventID  string
	Err      error
	Since    time.Time
	Attempts uint64
	RetryAt  time.Time
}

// NewRelay returns a Relay publishing o's rows with pub. Errors match
// envelope.ErrInvalidConfig. On SQLite it refuses a database whose connections have
// no busy timeout (the relay and the service's writers would fail with
// SQLITE_BUSY instead of waiting for each other): set it in the DSN,
// `_pragma=busy_timeout(5000)`.
func NewRelay(o *Outbox, pub Publisher, cfg RelayConfig) (*Relay, error) {
	if o == nil || pub == nil {
		return nil, fmt.Errorf("%w: nil Outbox or Publisher", envelope.ErrInvalidConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if cfg.Name == "" {
		cfg.Name = defaultName()
	}
	r := &Relay{
		o: o, pub: pub, cfg: cfg,
		log:     cfg.Logger.With(watermill.LogFields{"outbox": o.table, "relay": cfg.Name}),
		wake:    make(chan struct{}, 1),
		blocked: map[string]*BlockedSubject{},
		stored:  map[int64]struct{}{},
	}
	r.ack, _ = pub.(acker)
	if o.dialect == SQLite {
		if err := checkBusyTimeout(o); err != nil {
			return nil, err
		}
		r.d = &sqliteRelay{r: r}
	} else {
		r.d = &pgRelay{r: r}
	}
	return r, nil
}

func defaultName() string {
	host, _ := os.Hostname()
	var b [3]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
}

// Name is the relay's name (RelayConfig.Name).
func (r *Relay) Name() string { return r.cfg.Name }

// Run publishes committed rows until ctx ends, then finishes the batch in
// hand (bounded by PublishTimeout per row and 30 s per database step),
// gives up the SQLite lease so that a standby takes over at once, and
// returns nil. It does not give up on a failing (or not yet reachable)
// database or publisher: it retries with backoff and reports in Health. It
// returns an error only at start: ErrRelayRunning, or ErrNoSchema when the
// tables are missing (a misconfiguration, not a failure to wait out).
func (r *Relay) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return ErrRelayRunning
	}
	defer r.running.Store(false)
	if err := r.o.checkSchema(ctx, r.o.db); errors.Is(err, ErrNoSchema) {
		return err
	} else if err != nil {
		// The database is not reachable yet: the batches retry it.
		r.batchFailed(err)
	}
	lctx, stopListen := context.WithCancel(ctx)
	var listener sync.WaitGroup
	if r.o.dialect == PostgreSQL {
		listener.Go(func() { r.listen(lctx) })
	}
	defer func() {
		stopListen()
		listener.Wait()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		r.d.release(rctx)
		cancel()
		r.setRole("")
	}()

	idle := r.cfg.PollMin
	timer := time.NewTimer(0)
	defer timer.Stop()
	<-timer.C
	for ctx.Err() == nil {
		n, full, err := r.batch(context.WithoutCancel(ctx))
		var wait time.Duration
		switch {
		case err != nil:
			wait = r.cfg.Backoff.Delay(r.errStreak)
		case full, n > 0:
			idle = r.cfg.PollMin
			if full {
				continue
			}
			wait = 0
		case r.listening.Load():
			wait = r.cfg.PollMax // NOTIFY wakes it; polling is the safety net
		default:
			wait, idle = idle, min(2*idle, r.cfg.PollMax)
		}
		if at, ok := r.nextRetry(); ok {
			wait = min(wait, max(time.Until(at), 0))
		}
		if wait <= 0 {
			continue
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-r.wake:
			idle = r.cfg.PollMin
		case <-timer.C:
			continue
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
	return nil
}

// poke wakes Run (a notification arrived, or listening started).
func (r *Relay) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// batch claims, publishes and deletes one batch. n is the number of rows
// stored by the stream; full says the claim was a whole BatchSize (more
// may be waiting).
func (r *Relay) batch(ctx context.Context) (n int, full bool, err error) {
	c, err := r.d.claim(ctx, r.excluded())
	r.setRole(r.d.role())
	if err != nil {
		r.batchFailed(fmt.Errorf("claim: %w", err))
		return 0, false, err
	}
	if c == nil {
		r.batchDone()
		return 0, false, nil
	}
	rows := c.rows()
	published := r.publishRows(ctx, rows, c.deadline())

	r.mu.Lock()
	ids := make([]int64, 0, len(published)+len(r.stored))
	ids = append(ids, published...)
	for id := range r.stored {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	if len(ids) == 0 {
		c.abort()
		r.batchDone()
		return 0, false, nil
	}
	fctx, cancel := context.WithTimeout(ctx, dbTimeout)
	err = c.finish(fctx, ids)
	cancel()
	r.mu.Lock()
	if err != nil {
		// Stored by the stream, not deleted: remembered, so that this
		// relay deletes them with its next batch instead of publishing
		// them again.
		for _, id := range published {
			r.stored[id] = struct{}{}
		}
	} else {
		clear(r.stored)
	}
	r.mu.Unlock()
	if err != nil {
		r.batchFailed(fmt.Errorf("delete relayed rows: %w", err))
		return 0, false, err
	}
	r.batchDone()
	return len(published), len(rows) >= r.cfg.BatchSize, nil
}

// publishRows publishes rows (in id order) subject by subject, up to
// Concurrency subjects at once, each subject's rows one after the other,
// and returns the ids the stream stored. A subject stops at its first
// failure: its later rows wait for the next batch, so that the stream never
// holds a row before its predecessor.
func (r *Relay) publishRows(ctx context.Context, rows []row, deadline time.Time) []int64 {
	var order []string
	bySubject := map[string][]row{}
	for _, rw := range rows {
		if _, ok := bySubject[rw.subject]; !ok {
			order = append(order, rw.subject)
		}
		bySubject[rw.subject] = append(bySubject[rw.subject], rw)
	}
	var mu sync.Mutex
	var published []int64
	sem := make(chan struct{}, r.cfg.Concurrency)
	var wg sync.WaitGroup
	for _, subject := range order {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			ids := r.publishSubject(ctx, bySubject[subject], deadline)
			mu.Lock()
			published = append(published, ids...)
			mu.Unlock()
		})
	}
	wg.Wait()
	return published
}

func (r *Relay) publishSubject(ctx context.Context, rows []row, deadline time.Time) []int64 {
	var ids []int64
	for _, rw := range rows {
		r.mu.Lock()
		_, done := r.stored[rw.id]
		r.mu.Unlock()
		if done {
			ids = append(ids, rw.id)
			continue
		}
		if !deadline.IsZero() && time.Now().After(deadline) {
			break // the SQLite lease may not outlast this publish
		}
		e, err := envelope.Decode(rw.payload, r.o.m.Config().MaxSize)
		if err != nil {
			r.block(rw, fmt.Errorf("%w: row %d (event %s): %w", ErrInvalidRow, rw.id, rw.eventID, err))
			break
		}
		pctx, cancel := context.WithTimeout(relationsContext(ctx, rw), r.cfg.PublishTimeout)
		dup := false
		if r.ack != nil {
			var ack jetstream.PubAck
			ack, err = r.ack.PublishAck(pctx, rw.subject, e)
			dup = ack.Duplicate
		} else {
			err = r.pub.Publish(pctx, rw.subject, e)
		}
		cancel()
		if r.cfg.OnRelayed != nil {
			r.cfg.OnRelayed(r.o.table, rw.subject, rw.age+time.Since(rw.read), err)
		}
		if err != nil {
			r.failed.Add(1)
			r.block(rw, err)
			break
		}
		r.relayed.Add(1)
		if dup {
			r.duplicates.Add(1)
		}
		r.unblock(rw.subject)
		ids = append(ids, rw.id)
	}
	return ids
}

// relationsContext is ctx with the row's correlation and causation ids
// and trace context: what the publish of a direct Publish would have
// taken from the caller's context.
func relationsContext(ctx context.Context, rw row) context.Context {
	if rw.corr != "" || rw.caus != "" {
		ctx = envelope.WithRelations(ctx, rw.corr, rw.caus)
	}
	if rw.tp != "" {
		carrier := propagation.MapCarrier{"traceparent": rw.tp}
		if rw.ts != "" {
			carrier["tracestate"] = rw.ts
		}
		ctx = propagation.TraceContext{}.Extract(ctx, carrier)
	}
	return ctx
}

func (r *Relay) block(rw row, err error) {
	r.mu.Lock()
	b := r.blocked[rw.subject]
	if b == nil || b.RowID != rw.id {
		b = &BlockedSubject{Subject: rw.subject, RowID: rw.id, EventID: rw.eventID, Since: time.Now()}
		r.blocked[rw.subject] = b
	}
	b.Err = err
	b.Attempts++
	delay := r.cfg.Backoff.Delay(b.Attempts)
	b.RetryAt = time.Now().Add(delay)
	attempts := b.Attempts
	r.mu.Unlock()
	fields := watermill.LogFields{"subject": rw.subject, "row": rw.id, "event_id": rw.eventID, "attempt": attempts, "retry_in": delay.String()}
	if delay >= r.cfg.Backoff.Max || errors.Is(err, ErrInvalidRow) {
		r.log.Error("Outbox subject held: its oldest row cannot be published; the rows behind it wait", err, fields)
		return
	}
	if w, ok := r.log.(middleware.WarnLogger); ok {
		w.Warn("Outbox publish failed, retrying; the subject's later rows wait", err, fields)
		return
	}
	r.log.Info("Outbox publish failed, retrying; the subject's later rows wait", fields.Add(watermill.LogFields{"error": err}))
}

func (r *Relay) unblock(subject string) {
	r.mu.Lock()
	b := r.blocked[subject]
	delete(r.blocked, subject)
	r.mu.Unlock()
	if b != nil {
		r.log.Info("Outbox subject flowing again", watermill.LogFields{"subject": subject, "after": time.Since(b.Since).Round(time.Millisecond).String(), "attempts": b.Attempts})
	}
}

// excluded are the subjects waiting for their retry time.
func (r *Relay) excluded() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	var out []string
	for s, b := range r.blocked {
		if now.Before(b.RetryAt) {
			out = append(out, s)
		}
	}
	return out
}

// nextRetry is the earliest retry time of a blocked subject.
func (r *Relay) nextRetry() (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var at time.Time
	for _, b := range r.blocked {
		if at.IsZero() || b.RetryAt.Before(at) {
			at = b.RetryAt
		}
	}
	return at, !at.IsZero()
}

func (r *Relay) batchFailed(err error) {
	r.mu.Lock()
	r.errStreak++
	streak := r.errStreak
	r.lastErr = err
	r.mu.Unlock()
	fields := watermill.LogFields{"attempt": streak, "retry_in": r.cfg.Backoff.Delay(streak).String()}
	if w, ok := r.log.(middleware.WarnLogger); ok && r.cfg.Backoff.Delay(streak) < r.cfg.Backoff.Max {
		w.Warn("Outbox relay batch failed, retrying", err, fields)
		return
	}
	r.log.Error("Outbox relay batch failed, retrying", err, fields)
}

func (r *Relay) batchDone() {
	r.mu.Lock()
	recovered := r.errStreak > 0
	r.errStreak, r.lastErr, r.lastBatch = 0, nil, time.Now()
	r.mu.Unlock()
	if recovered {
		r.log.Info("Outbox relay batches succeed again", nil)
	}
}

func (r *Relay) setRole(role string) {
	r.mu.Lock()
	prev := r.role
	r.role = role
	r.mu.Unlock()
	if prev != role && role != "" && prev != "" {
		r.log.Info("Outbox relay role changed", watermill.LogFields{"from": prev, "to": role})
	}
}
