package inbox_test

import (
	"context"
	"database/sql"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	events "github.com/jetevents/events"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/inbox"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// TestInbox_event_redelivered_after_its_commit_is_acked_without_the_handler:
// the handler's transaction commits, then the delivery fails after it (the
// ack lost in a crash is the real case: here an outer wrapper returns an
// error once). The redelivery finds the record: the handler does not run
// again, the event is acked, and the router reports a skipped duplicate.
func TestInbox_event_redelivered_after_its_commit_is_acked_without_the_handler(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			in := newInbox(t, d)
			b := newBench(t, 5)
			var calls atomic.Int32
			h := in.Handler(func(ctx context.Context, tx *sql.Tx, e *envelope.Event) error {
				calls.Add(1)
				return insertEffect(ctx, d, tx, e, "once")
			})
			b.router.Group("effects", "res.>").On("resource.created", func(ctx context.Context, e *envelope.Event) error {
				if err := h(ctx, e); err != nil {
					return err
				}
				if del, _ := router.DeliveryFrom(ctx); del.Attempt == 1 {
					return errors.New("ack lost after the commit")
				}
				return nil
			})
			b.run(t)
			require.NoError(t, b.pub.Publish(ctxT(t), "res.created", event("e1")))
			out := b.settled(t, 2)
			assert.Equal(t, router.ResultRetried, out[0].Result)
			assert.Equal(t, router.ResultSkipped, out[1].Result, "the router reports the skip")
			assert.Equal(t, transport.SkipDuplicate, out[1].Reason)
			assert.EqualValues(t, 1, calls.Load(), "the handler ran once")
			assert.Equal(t, 1, effects(t, d, "e1"))
			assert.Equal(t, inbox.Stats{Handled: 1, Duplicates: 1}, in.Stats())
			ok, err := in.Handled(ctxT(t), "effects", "e1")
			require.NoError(t, err)
			assert.True(t, ok)
		})
	}
}

// TestInbox_failures_roll_back_the_handlers_writes_and_the_record: an
// error, a panic and a commit that fails after the handler returned nil
// each leave nothing (no effect, no record) and are retried; the attempt
// that succeeds commits its effect and the record once. A Permanent error
// dead-letters the event with nothing committed.
func TestInbox_failures_roll_back_the_handlers_writes_and_the_record(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := ctxT(t)
			in := newInbox(t, d)
			// A deferred constraint: checked at commit, so that the
			// handler's statements succeed and its commit fails.
			for _, q := range []string{
				"CREATE TABLE parents (id text PRIMARY KEY)",
				"CREATE TABLE children (parent text REFERENCES parents (id) DEFERRABLE INITIALLY DEFERRED)",
			} {
				_, err := d.db.ExecContext(ctx, q)
				require.NoError(t, err)
			}
			b := newBench(t, 5)
			var mu sync.Mutex
			attempts := map[string]int{}
			inbox.Handle(in, b.router.Group("effects", "res.>"), "resource.created",
				func(ctx context.Context, tx *sql.Tx, e *envelope.Event, data struct {
					ResourceID string `json:"resource_id"`
				}) error {
					mu.Lock()
					attempts[e.ID]++
					n := attempts[e.ID]
					mu.Unlock()
					if err := insertEffect(ctx, d, tx, e, data.ResourceID); err != nil {
						return err
					}
					switch {
					case e.ID == "error" && n == 1:
						return errors.New("downstream busy")
					case e.ID == "panic" && n == 1:
						panic("handler bug")
					case e.ID == "commit" && n == 1:
						_, err := tx.ExecContext(ctx, d.q("INSERT INTO children (parent) VALUES ($1)"), "no such parent")
						return err // nil: the commit fails on the constraint
					case e.ID == "permanent":
						return events.Permanent(errors.New("refused"))
					}
					return nil
				})
			b.run(t)
			for _, id := range []string{"error", "panic", "commit", "permanent"} {
				require.NoError(t, b.pub.Publish(ctx, "res.created", event(id)))
			}
			out := b.settled(t, 7) // 3 retried + 3 handled + 1 dead-lettered
			results := map[router.Result]int{}
			for _, o := range out {
				results[o.Result]++
			}
			assert.Equal(t, map[router.Result]int{router.ResultRetried: 3, router.ResultHandled: 3, router.ResultDeadLettered: 1}, results)
			for _, id := range []string{"error", "panic", "commit"} {
				assert.Equal(t, 1, effects(t, d, id), "%s: the effect of the attempt that committed only", id)
				mu.Lock()
				assert.Equal(t, 2, attempts[id], id)
				mu.Unlock()
			}
			assert.Zero(t, effects(t, d, "permanent"))
			ok, err := in.Handled(ctx, "effects", "permanent")
			require.NoError(t, err)
			assert.False(t, ok, "a dead-lettered event leaves no record: replayed from the DLQ, it runs")
			require.Len(t, b.bus.Messages("dlq.>"), 1)
			st := in.Stats()
			assert.EqualValues(t, 3, st.Handled)
			assert.EqualValues(t, 1, st.CommitFailed)
			assert.EqualValues(t, 3, st.Failed, "error, panic, permanent")
			var failedCommit error
			for _, o := range out {
				if o.Result == router.ResultRetried && errors.Is(o.Err, inbox.ErrCommit) {
					failedCommit = o.Err
				}
			}
			assert.ErrorIs(t, failedCommit, inbox.ErrCommit, "the commit failure is the delivery's error")
		})
	}
}

// TestInbox_concurrent_deliveries_of_one_event_run_the_handler_once: two
// deliveries of one event at the same time (a redelivery while the first
// still runs, in another process): one runs the handler, the other waits
// for its transaction and skips. On SQLite the second waits for the
// database's one writer.
func TestInbox_concurrent_deliveries_of_one_event_run_the_handler_once(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			in := newInbox(t, d)
			release := make(chan struct{})
			var calls atomic.Int32
			h := in.Handler(func(ctx context.Context, tx *sql.Tx, e *envelope.Event) error {
				calls.Add(1)
				<-release
				return insertEffect(ctx, d, tx, e, "x")
			})
			ctx := transport.NewContext(ctxT(t), &transport.Delivery{Consumer: "effects", Subject: "res.created"})
			errs := make(chan error, 2)
			go func() { errs <- h(ctx, event("race")) }()
			require.Eventually(t, func() bool { return calls.Load() == 1 }, wait, time.Millisecond)
			go func() { errs <- h(ctx, event("race")) }()
			close(release)
			require.NoError(t, <-errs)
			require.NoError(t, <-errs)
			assert.EqualValues(t, 1, calls.Load())
			assert.Equal(t, 1, effects(t, d, "race"))
			assert.Equal(t, inbox.Stats{Handled: 1, Duplicates: 1}, in.Stats())
		})
	}
}

// TestInbox_records_per_group: two groups handling one event each run
// their handler once.
func TestInbox_records_per_group(t *testing.T) {
	d := sqliteDB(t)
	in := newInbox(t, d)
	b := newBench(t, 5)
	for _, g := range []string{"mail", "audit"} {
		in.On(b.router.Group(g, "res.>"), "resource.created", func(ctx context.Context, tx *sql.Tx, e *envelope.Event) error {
			return insertEffect(ctx, d, tx, e, g)
		})
	}
	b.run(t)
	require.NoError(t, b.pub.Publish(ctxT(t), "res.created", event("e1")))
	b.settled(t, 2)
	assert.Equal(t, 2, effects(t, d, "e1"))
	for _, g := range []string{"mail", "audit"} {
		ok, err := in.Handled(ctxT(t), g, "e1")
		require.NoError(t, err)
		assert.True(t, ok, g)
	}
}

// TestInbox_outside_a_router_is_ErrNoDelivery.
func TestInbox_outside_a_router_is_ErrNoDelivery(t *testing.T) {
	d := sqliteDB(t)
	in := newInbox(t, d)
	err := in.Handler(func(context.Context, *sql.Tx, *envelope.Event) error { return nil })(ctxT(t), event("x"))
	assert.ErrorIs(t, err, inbox.ErrNoDelivery)
}

// TestInbox_without_schema_is_ErrNoSchema_and_retried.
func TestInbox_without_schema_is_ErrNoSchema_and_retried(t *testing.T) {
	d := sqliteDB(t)
	in, err := inbox.New(d.db, inbox.Config{})
	require.NoError(t, err)
	ctx := transport.NewContext(ctxT(t), &transport.Delivery{Consumer: "g"})
	err = in.Handler(func(context.Context, *sql.Tx, *envelope.Event) error { return nil })(ctx, event("x"))
	assert.ErrorIs(t, err, inbox.ErrNoSchema)
	assert.NotErrorIs(t, err, middleware.ErrPermanent, "retried: the schema may be migrated meanwhile")
}

// TestNew_refuses_bad_config.
func TestNew_refuses_bad_config(t *testing.T) {
	d := sqliteDB(t)
	for _, cfg := range []inbox.Config{{Table: "x;y"}, {Dialect: "oracle"}} {
		_, err := inbox.New(d.db, cfg)
		assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
	}
	_, err := inbox.New(nil, inbox.Config{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
	nobusy, err := sql.Open("sqlite", "file:"+t.TempDir()+"/x.db")
	require.NoError(t, err)
	defer nobusy.Close()
	_, err = inbox.New(nobusy, inbox.Config{})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
}

// TestPrune_deletes_old_records.
func TestPrune_deletes_old_records(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			in := newInbox(t, d)
			ctx := transport.NewContext(ctxT(t), &transport.Delivery{Consumer: "g"})
			noop := in.Handler(func(context.Context, *sql.Tx, *envelope.Event) error { return nil })
			require.NoError(t, noop(ctx, event("old")))
			n, err := in.Prune(ctx, time.Hour)
			require.NoError(t, err)
			assert.Zero(t, n, "an hour has not passed")
			require.Eventually(t, func() bool {
				n, err = in.Prune(ctx, time.Millisecond)
				return err == nil && n == 1
			}, wait, time.Millisecond)
			ok, err := in.Handled(ctx, "g", "old")
			require.NoError(t, err)
			assert.False(t, ok)
			_, err = in.Prune(ctx, 0)
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
		})
	}
}
