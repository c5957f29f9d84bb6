package outbox_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/outbox"
	"github.com/jetevents/events/transport"
)

// fast is a relay configuration for tests: short polls and retries.
func fast(name string) outbox.RelayConfig {
	return outbox.RelayConfig{
		Name:    name,
		PollMin: time.Millisecond, PollMax: 20 * time.Millisecond,
		Backoff: transport.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Multiplier: 2, Jitter: -1},
	}
}

// TestRelay_holds_a_failing_subject_in_order_and_keeps_the_others_flowing:
// a subject no stream stores cannot be published; its rows wait, in order,
// retried with backoff and reported in Health, while another subject's
// rows flow. Once a stream stores it, its rows are published in order and
// the relay is ready again.
func TestRelay_holds_a_failing_subject_in_order_and_keeps_the_others_flowing(t *testing.T) {
	srv := eventstest.NewServer(t)
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			ctx := ctxT(t)
			ok, held := d.name+"ok.res", d.name+"held.res"
			stream(t, srv.JS, "OK_"+strings.ToUpper(d.name), d.name+"ok.>")
			o := newOutbox(t, d.db, outbox.Config{})
			for i, id := range ids(d.name, 10) {
				subject := ok
				if i%2 == 1 {
					subject = held
				}
				publishTx(t, o, d.db, subject, event(id))
			}
			var lags []time.Duration
			var lagMu sync.Mutex
			cfg := fast("relay")
			cfg.OnRelayed = func(table, subject string, lag time.Duration, err error) {
				lagMu.Lock()
				defer lagMu.Unlock()
				if err == nil {
					lags = append(lags, lag)
				}
			}
			r := newRelay(t, o, publisher(t, srv), cfg)
			runRelay(t, r)

			require.Eventually(t, func() bool { return pending(t, o) == 5 }, wait, 5*time.Millisecond, "the other subject flows")
			var h outbox.RelayHealth
			require.Eventually(t, func() bool {
				h = r.Health(ctx)
				return len(h.Blocked) == 1 && h.Blocked[0].Attempts >= 3
			}, wait, 5*time.Millisecond, "the held subject is retried")
			b := h.Blocked[0]
			assert.Equal(t, held, b.Subject)
			assert.Equal(t, d.name+"-0001", b.EventID, "its oldest row is the one retried")
			assert.ErrorIs(t, b.Err, transport.ErrNoStream)
			assert.False(t, h.Ready)
			assert.EqualValues(t, 5, h.Pending)
			assert.Positive(t, h.OldestAge)

			stream(t, srv.JS, "HELD_"+strings.ToUpper(d.name), d.name+"held.>")
			require.Eventually(t, func() bool { return pending(t, o) == 0 }, wait, 5*time.Millisecond)
			require.Eventually(t, func() bool { return r.Health(ctx).Ready }, wait, 5*time.Millisecond)
			got := storedIDs(t, srv.JS, "HELD_"+strings.ToUpper(d.name))[held]
			assert.Equal(t, []string{d.name + "-0001", d.name + "-0003", d.name + "-0005", d.name + "-0007", d.name + "-0009"}, got)
			lagMu.Lock()
			assert.Len(t, lags, 10, "OnRelayed reported every stored row")
			lagMu.Unlock()
			assert.Positive(t, r.Stats().Failed)
		})
	}
}

// TestRelay_row_it_cannot_decode_holds_its_subject_until_fixed: a row
// written by hand with a payload that is not an envelope is never dropped:
// its subject waits behind it (ErrInvalidRow in Health) until it is
// deleted, and the rows behind it are published then.
func TestRelay_row_it_cannot_decode_holds_its_subject_until_fixed(t *testing.T) {
	srv := eventstest.NewServer(t)
	d := sqliteDB(t)
	ctx := ctxT(t)
	stream(t, srv.JS, "RES", "res.>")
	o := newOutbox(t, d.db, outbox.Config{})
	_, err := d.db.ExecContext(ctx, `INSERT INTO jetevents_outbox (subject, event_id, event_type, payload, created_at) VALUES ('res.a', 'bad', 'x', 'not an envelope', 0)`)
	require.NoError(t, err)
	publishTx(t, o, d.db, "res.a", event("behind"))
	publishTx(t, o, d.db, "res.b", event("other"))
	r := newRelay(t, o, publisher(t, srv), fast("relay"))
	runRelay(t, r)
	var h outbox.RelayHealth
	require.Eventually(t, func() bool { h = r.Health(ctx); return len(h.Blocked) == 1 && pending(t, o) == 2 }, wait, 5*time.Millisecond)
	assert.ErrorIs(t, h.Blocked[0].Err, outbox.ErrInvalidRow)
	assert.Equal(t, "bad", h.Blocked[0].EventID)

	_, err = d.db.ExecContext(ctx, `DELETE FROM jetevents_outbox WHERE event_id = 'bad'`)
	require.NoError(t, err)
	require.Eventually(t, func() bool { return pending(t, o) == 0 }, wait, 5*time.Millisecond)
	assert.Equal(t, map[string][]string{"res.a": {"behind"}, "res.b": {"other"}}, storedIDs(t, srv.JS, "RES"))
}

// TestRelay_row_published_before_a_crash_is_stored_once: rows whose events
// the stream already holds (a relay published them and died before
// deleting them) are published again by the next relay; the stream drops
// the copies (Nats-Msg-Id = event id) and the relay counts them.
func TestRelay_row_published_before_a_crash_is_stored_once(t *testing.T) {
	srv := eventstest.NewServer(t)
	d := sqliteDB(t)
	stream(t, srv.JS, "RES", "res.>")
	o := newOutbox(t, d.db, outbox.Config{})
	pub := publisher(t, srv)
	for _, id := range ids("dup", 5) {
		publishTx(t, o, d.db, "res.created", event(id))
		require.NoError(t, pub.Publish(ctxT(t), "res.created", event(id))) // what the dead relay stored
	}
	r := newRelay(t, o, pub, fast("relay"))
	runRelay(t, r)
	require.Eventually(t, func() bool { return pending(t, o) == 0 }, wait, 5*time.Millisecond)
	assert.Equal(t, outbox.RelayStats{Relayed: 5, Duplicates: 5}, r.Stats())
	assert.Equal(t, 5, count(t, srv.JS, "RES"))
}

// TestRelay_PostgreSQL_is_woken_by_NOTIFY: with polling set to a minute,
// an event committed while the relay idles is stored well before: the
// commit's notification woke it.
func TestRelay_PostgreSQL_is_woken_by_NOTIFY(t *testing.T) {
	srv := eventstest.NewServer(t)
	d := postgresDB(t, eventstest.NewPostgres(t).DSN)
	stream(t, srv.JS, "RES", "res.>")
	o := newOutbox(t, d.db, outbox.Config{})
	cfg := fast("relay")
	cfg.PollMin, cfg.PollMax = time.Minute, time.Minute
	r := newRelay(t, o, publisher(t, srv), cfg)
	runRelay(t, r)
	require.Eventually(t, func() bool { h := r.Health(ctxT(t)); return h.Listening && h.Ready }, wait, 5*time.Millisecond)
	for i, id := range ids("wake", 3) {
		publishTx(t, o, d.db, "res.created", event(id))
		require.Eventually(t, func() bool { return count(t, srv.JS, "RES") == i+1 }, wait, 5*time.Millisecond,
			"stored within %s although the relay polls every minute", wait)
	}

}

// TestRelay_SQLite_one_relay_holds_the_lease_and_a_standby_takes_over: of
// two relays on one database, one publishes and the other stands by; when
// the first stops, the standby takes the lease and publishes. A relay
// whose lease was taken stops publishing.
func TestRelay_SQLite_one_relay_holds_the_lease_and_a_standby_takes_over(t *testing.T) {
	srv := eventstest.NewServer(t)
	d := sqliteDB(t)
	ctx := ctxT(t)
	stream(t, srv.JS, "RES", "res.>")
	o := newOutbox(t, d.db, outbox.Config{})
	pub := publisher(t, srv)
	leased := func(name string) outbox.RelayConfig {
		cfg := fast(name)
		cfg.PublishTimeout, cfg.LeaseTTL = 500*time.Millisecond, time.Second // renewed every half second
		return cfg
	}
	a, b := newRelay(t, o, pub, leased("relay-a")), newRelay(t, o, pub, leased("relay-b"))
	stopA := runRelay(t, a)
	require.Eventually(t, func() bool { return a.Health(ctx).Role == "active" }, wait, time.Millisecond)
	runRelay(t, b)
	require.Eventually(t, func() bool { return b.Health(ctx).Role == "standby" }, wait, time.Millisecond)

	for _, id := range ids("first", 5) {
		publishTx(t, o, d.db, "res.created", event(id))
	}
	require.Eventually(t, func() bool { return pending(t, o) == 0 }, wait, 5*time.Millisecond)
	assert.EqualValues(t, 5, a.Stats().Relayed)
	assert.Zero(t, b.Stats().Relayed, "the standby publishes nothing")
	st, err := o.Status(ctx)
	require.NoError(t, err)
	require.NotNil(t, st.Lease)
	assert.Equal(t, "relay-a", st.Lease.Owner)

	stopA() // gives the lease up
	require.Eventually(t, func() bool { return b.Health(ctx).Role == "active" }, wait, time.Millisecond)
	for _, id := range ids("second", 5) {
		publishTx(t, o, d.db, "res.created", event(id))
	}
	require.Eventually(t, func() bool { return pending(t, o) == 0 }, wait, 5*time.Millisecond)
	assert.EqualValues(t, 5, b.Stats().Relayed)

	// The lease taken from under b (as by a relay whose clock says b's
	// expired): b stands by and publishes nothing more.
	_, err = d.db.ExecContext(ctx, `UPDATE jetevents_outbox_lease SET owner = 'intruder', expires_at = ?`, time.Now().Add(time.Hour).UnixMicro())
	require.NoError(t, err)
	require.Eventually(t, func() bool { return b.Health(ctx).Role == "standby" }, wait, time.Millisecond)
	publishTx(t, o, d.db, "res.created", event("while-intruded"))
	committed := time.Now()
	require.Eventually(t, func() bool { return b.Health(ctx).LastBatch.After(committed.Add(50 * time.Millisecond)) }, wait, time.Millisecond,
		"b looked at the table again since the row committed")
	assert.EqualValues(t, 1, pending(t, o), "and left the row to the lease's holder")
	assert.EqualValues(t, 5, b.Stats().Relayed)
}

// TestRelay_stops_on_context_end_and_leaves_unpublished_rows: a relay
// whose publisher cannot reach a stream keeps the rows; Run returns when
// its context ends; the rows are there for the next relay.
func TestRelay_stops_on_context_end_and_leaves_unpublished_rows(t *testing.T) {
	d := sqliteDB(t)
	o := newOutbox(t, d.db, outbox.Config{})
	publishTx(t, o, d.db, "res.created", event("kept"))
	failing := publisherFunc(func(ctx context.Context, subject string, e *envelope.Event) error {
		return fmt.Errorf("publish %s: %w", subject, transport.ErrTimeout)
	})
	r := newRelay(t, o, failing, fast("relay"))
	stop := runRelay(t, r)
	require.Eventually(t, func() bool { return r.Stats().Failed >= 2 }, wait, time.Millisecond)
	stop()
	assert.EqualValues(t, 1, pending(t, o))
	h := r.Health(ctxT(t))
	assert.False(t, h.Running)
	assert.Empty(t, h.Role)
	require.Len(t, h.Blocked, 1)
	assert.True(t, errors.Is(h.Blocked[0].Err, transport.ErrTimeout))
}

type publisherFunc func(ctx context.Context, subject string, e *envelope.Event) error

func (f publisherFunc) Publish(ctx context.Context, subject string, e *envelope.Event, _ ...transport.PublishOption) error {
	return f(ctx, subject, e)
}

// TestStatus_reports_pending_rows_by_subject_oldest_first.
func TestStatus_reports_pending_rows_by_subject_oldest_first(t *testing.T) {
	for _, d := range databases(t) {
		t.Run(d.name, func(t *testing.T) {
			o := newOutbox(t, d.db, outbox.Config{})
			st, err := o.Status(ctxT(t))
			require.NoError(t, err)
			assert.Zero(t, st.Pending)
			assert.Zero(t, st.OldestAge)
			publishTx(t, o, d.db, "res.b", event("b1"))
			publishTx(t, o, d.db, "res.a", event("a1"))
			publishTx(t, o, d.db, "res.b", event("b2"))
			st, err = o.Status(ctxT(t))
			require.NoError(t, err)
			assert.EqualValues(t, 3, st.Pending)
			assert.Positive(t, st.OldestAge)
			require.Len(t, st.Subjects, 2)
			assert.Equal(t, "res.b", st.Subjects[0].Subject)
			assert.EqualValues(t, 2, st.Subjects[0].Pending)
			assert.Equal(t, "b1", st.Subjects[0].OldestEventID)
			assert.Equal(t, "res.a", st.Subjects[1].Subject)
			assert.Equal(t, "a1", st.Subjects[1].OldestEventID)
		})
	}
}
