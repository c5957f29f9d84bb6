package jetstream_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

func TestPublisher_publish_waits_for_the_stream_ack(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, srv.Conn)
	e := pubEvent(t, "user.created")

	ack, err := p.PublishAck(pubCtx(t), "auth.user.created", e)
	require.NoError(t, err)
	assert.Equal(t, "AUTH_EVENTS", ack.Stream)
	assert.Equal(t, uint64(1), ack.Sequence)
	assert.False(t, ack.Duplicate)

	require.NoError(t, p.Publish(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")))

	stored := pubStored(t, srv.JS, "AUTH_EVENTS")
	require.Len(t, stored, 2)
	assert.Equal(t, "auth.user.created", stored[0].Subject)
	assert.Equal(t, e.ID, stored[0].Header.Get(marshaler.HeaderMsgID))
	_, got, err := marshaler.Default().DecodeNATS(stored[0].Header, stored[0].Data)
	require.NoError(t, err)
	assert.Equal(t, e.ID, got.ID)
	assert.Equal(t, e.Type, got.Type)
	assert.JSONEq(t, string(e.Data), string(got.Data))

	st := p.Stats()
	assert.Equal(t, jetstream.PublisherStats{Published: 2, Acked: 2}, st)
}

func TestPublisher_duplicate_event_is_stored_once(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, srv.Conn)
	e := pubEvent(t, "user.created")

	first, err := p.PublishAck(pubCtx(t), "auth.user.created", e)
	require.NoError(t, err)
	second, err := p.PublishAck(pubCtx(t), "auth.user.created", e)
	require.NoError(t, err, "a duplicate is a success")

	assert.False(t, first.Duplicate)
	assert.True(t, second.Duplicate)
	assert.Equal(t, first.Sequence, second.Sequence)
	assert.Equal(t, uint64(1), pubCount(t, srv.JS, "AUTH_EVENTS"))

	// The same through the async path: counted as acked and duplicate.
	require.NoError(t, p.PublishAsync(pubCtx(t), "auth.user.created", e))
	require.NoError(t, p.Flush(pubCtx(t)))
	assert.Equal(t, uint64(1), pubCount(t, srv.JS, "AUTH_EVENTS"))
	st := p.Stats()
	assert.Equal(t, uint64(3), st.Acked)
	assert.Equal(t, uint64(2), st.Duplicates)
	assert.Zero(t, st.Failed)
}

func TestPublisher_no_stream_is_ErrNoStream(t *testing.T) {
	srv := eventstest.NewServer(t)
	var reports pubReports
	p := pubNew(t, srv.Conn, jetstream.PublisherConfig{OnAsyncError: reports.handle})

	err := p.Publish(pubCtx(t), "billing.invoice.paid", pubEvent(t, "invoice.paid"))
	require.Error(t, err)
	assert.ErrorIs(t, err, transport.ErrNoStream)
	assert.ErrorIs(t, err, transport.ErrPublish)
	assert.ErrorIs(t, err, natsjs.ErrNoStreamResponse, "the cause is kept")
	assert.Contains(t, err.Error(), `"billing.invoice.paid"`)
	assert.Contains(t, err.Error(), "setup-nats-streams.sh")
	assert.Contains(t, err.Error(), "jetstream.Ensure")

	e := pubEvent(t, "invoice.paid")
	require.NoError(t, p.PublishAsync(pubCtx(t), "billing.invoice.paid", e), "queued")
	require.NoError(t, p.Flush(pubCtx(t)))
	got := reports.all()
	require.Len(t, got, 1)
	assert.ErrorIs(t, got[0].Err, transport.ErrNoStream)
	assert.ErrorIs(t, got[0], transport.ErrNoStream, "AsyncError unwraps")
	assert.Equal(t, e.ID, got[0].EventID)
	assert.Equal(t, "invoice.paid", got[0].EventType)
	assert.Equal(t, "billing.invoice.paid", got[0].Subject)
	assert.Equal(t, e.ID, got[0].Msg.Header.Get(marshaler.HeaderMsgID))
	assert.Equal(t, uint64(1), p.Stats().AsyncFailed)
}

func TestPublisher_refuses_invalid_subjects(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, srv.Conn)

	for _, subject := range []string{"auth.user.*", "auth.>", "", "auth..created", "auth.user created", ".auth", "auth."} {
		t.Run(subject, func(t *testing.T) {
			e := pubEvent(t, "user.created")
			for name, publish := range map[string]func() error{
				"Publish":      func() error { return p.Publish(pubCtx(t), subject, e) },
				"PublishAsync": func() error { return p.PublishAsync(pubCtx(t), subject, e) },
				"PublishBatch": func() error { return p.PublishBatch(pubCtx(t), subject, e) },
			} {
				err := publish()
				assert.ErrorIs(t, err, envelope.ErrInvalidSubject, name)
				assert.NotErrorIs(t, err, transport.ErrPublish, name)
			}
		})
	}
	require.NoError(t, p.Flush(pubCtx(t)))
	assert.Zero(t, p.Stats().Published, "nothing was sent")
	assert.Zero(t, pubCount(t, srv.JS, "AUTH_EVENTS"))
}

func TestPublisher_refuses_invalid_events(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, srv.Conn)

	tests := []struct {
		name  string
		event func() *envelope.Event
		rule  error
	}{
		{"nil", func() *envelope.Event { return nil }, nil},
		{"no id", func() *envelope.Event { e := pubEvent(t, "user.created"); e.ID = ""; return e }, envelope.ErrMissingID},
		{"bad type", func() *envelope.Event { e := pubEvent(t, "user.created"); e.Type = "user created"; return e }, envelope.ErrInvalidType},
		{"no timestamp", func() *envelope.Event { e := pubEvent(t, "user.created"); e.Timestamp = time.Time{}; return e }, envelope.ErrMissingTimestamp},
		{"bad schema version", func() *envelope.Event { e := pubEvent(t, "user.created"); e.SchemaVersion = "v1"; return e }, envelope.ErrInvalidSchemaVersion},
		{"data not JSON", func() *envelope.Event { e := pubEvent(t, "user.created"); e.Data = []byte("{nope"); return e }, envelope.ErrDataNotJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for name, publish := range map[string]func() error{
				"Publish":      func() error { return p.Publish(pubCtx(t), "auth.user.created", tt.event()) },
				"PublishAsync": func() error { return p.PublishAsync(pubCtx(t), "auth.user.created", tt.event()) },
				"PublishBatch": func() error { return p.PublishBatch(pubCtx(t), "auth.user.created", tt.event()) },
			} {
				err := publish()
				assert.ErrorIs(t, err, envelope.ErrInvalidEvent, name)
				if tt.rule != nil {
					assert.ErrorIs(t, err, tt.rule, name)
				}
				assert.NotErrorIs(t, err, transport.ErrPublish, name)
			}
		})
	}
	assert.Zero(t, p.Stats().Published)
	assert.Zero(t, pubCount(t, srv.JS, "AUTH_EVENTS"))
}

func TestPublisher_too_large_is_ErrTooLarge(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStreamConfig(t, srv.JS, natsjs.StreamConfig{Name: "SMALL", Subjects: []string{"small.>"}, MaxMsgSize: 1024})
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, srv.Conn)

	t.Run("larger than the marshaler's max size: refused before sending", func(t *testing.T) {
		e := pubEvent(t, "user.created")
		e.Data = []byte(`"` + strings.Repeat("x", envelope.DefaultMaxSize) + `"`)
		err := p.Publish(pubCtx(t), "auth.user.created", e)
		assert.ErrorIs(t, err, envelope.ErrTooLarge)
		assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
		assert.NotErrorIs(t, err, transport.ErrPublish)
	})
	t.Run("larger than the stream's max message size: refused by the server", func(t *testing.T) {
		e := pubEvent(t, "user.created")
		e.Data = []byte(`"` + strings.Repeat("x", 2048) + `"`)
		err := p.Publish(pubCtx(t), "small.user.created", e)
		assert.ErrorIs(t, err, envelope.ErrTooLarge)
		assert.ErrorIs(t, err, transport.ErrPublish)
		assert.ErrorIs(t, err, natsjs.ErrStreamMessageExceedsMaximum, "the cause is kept")
		assert.Zero(t, pubCount(t, srv.JS, "SMALL"))
	})
}

func TestPublisher_deadline_is_ErrTimeout(t *testing.T) {
	srv := eventstest.NewServer(t)
	// A subscriber that never replies: neither an ack nor "no responders".
	pubBlackHole(t, srv.Conn, "hole.>")

	t.Run("context deadline", func(t *testing.T) {
		p := pubNew(t, srv.Conn)
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		err := p.Publish(ctx, "hole.user.created", pubEvent(t, "user.created"))
		assert.ErrorIs(t, err, transport.ErrTimeout)
		assert.ErrorIs(t, err, transport.ErrPublish)
		assert.ErrorIs(t, err, context.DeadlineExceeded)
	})
	t.Run("PublishTimeout when the context has no deadline", func(t *testing.T) {
		p := pubNew(t, srv.Conn, jetstream.PublisherConfig{PublishTimeout: 100 * time.Millisecond})
		err := p.Publish(context.Background(), "hole.user.created", pubEvent(t, "user.created"))
		assert.ErrorIs(t, err, transport.ErrTimeout)
	})
	t.Run("AckTimeout for an async publish", func(t *testing.T) {
		var reports pubReports
		p := pubNew(t, srv.Conn, jetstream.PublisherConfig{AckTimeout: 100 * time.Millisecond, OnAsyncError: reports.handle})
		require.NoError(t, p.PublishAsync(pubCtx(t), "hole.user.created", pubEvent(t, "user.created")))
		require.NoError(t, p.Flush(pubCtx(t)))
		got := reports.all()
		require.Len(t, got, 1)
		assert.ErrorIs(t, got[0].Err, transport.ErrTimeout)
		assert.ErrorIs(t, got[0].Err, natsjs.ErrAsyncPublishTimeout)
	})
	t.Run("server stopped", func(t *testing.T) {
		srv := eventstest.NewServer(t)
		pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
		p := pubNew(t, srv.Conn)
		srv.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		err := p.Publish(ctx, "auth.user.created", pubEvent(t, "user.created"))
		assert.ErrorIs(t, err, transport.ErrTimeout)
	})
}

func TestPublisher_correlation_headers_from_context(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p := pubNew(t, srv.Conn)
	ctx := envelope.WithCausationID(envelope.WithCorrelationID(pubCtx(t), "corr-1"), "cause-1")

	require.NoError(t, p.Publish(ctx, "auth.user.created", pubEvent(t, "user.created")))
	require.NoError(t, p.PublishAsync(ctx, "auth.user.created", pubEvent(t, "user.created")))
	require.NoError(t, p.PublishBatch(ctx, "auth.user.created", pubEvent(t, "user.created")))
	require.NoError(t, p.Flush(pubCtx(t)))
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")))

	stored := pubStored(t, srv.JS, "AUTH_EVENTS")
	require.Len(t, stored, 4)
	for _, m := range stored[:3] {
		assert.Equal(t, "corr-1", m.Header.Get(marshaler.HeaderCorrelationID))
		assert.Equal(t, "cause-1", m.Header.Get(marshaler.HeaderCausationID))
	}
	assert.Empty(t, stored[3].Header.Get(marshaler.HeaderCorrelationID), "no correlation in the context, no header")
	assert.Empty(t, stored[3].Header.Get(marshaler.HeaderCausationID))
}

func TestPublisher_async_publish_while_server_stops_reports_every_failure(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	var reports pubReports
	p := pubNew(t, srv.Conn, jetstream.PublisherConfig{AckTimeout: 300 * time.Millisecond, OnAsyncError: reports.handle})

	const n = 200
	ids := make([]string, 0, n)
	syncFailed := map[string]bool{}
	publish := func() {
		e := pubEvent(t, "user.created")
		ids = append(ids, e.ID)
		// Queued, or refused at once (a write on the broken socket fails
		// before nats.go notices the disconnect): both are reported outcomes.
		if err := p.PublishAsync(pubCtx(t), "auth.user.created", e); err != nil {
			assert.ErrorIs(t, err, transport.ErrPublish)
			syncFailed[e.ID] = true
		}
	}
	for range n / 2 {
		publish()
	}
	srv.Stop()
	for range n / 2 {
		publish() // into the reconnect buffer: the server never acks them
	}
	require.NoError(t, p.Flush(pubCtx(t)))

	st := p.Stats()
	failed := reports.all()
	assert.EqualValues(t, n, st.Published)
	assert.EqualValues(t, n, st.Acked+st.Failed, "every publish has exactly one outcome: no silent loss")
	assert.EqualValues(t, len(failed), st.AsyncFailed)
	assert.EqualValues(t, len(syncFailed), st.Failed-st.AsyncFailed)
	assert.GreaterOrEqual(t, len(failed)+len(syncFailed), n/2, "those sent while the server was down cannot be acked")
	assert.Zero(t, st.Pending)

	failedIDs := make(map[string]bool, len(failed))
	for _, f := range failed {
		assert.False(t, failedIDs[f.EventID], "reported once: %s", f.EventID)
		assert.False(t, syncFailed[f.EventID], "not both returned and reported: %s", f.EventID)
		failedIDs[f.EventID] = true
		assert.ErrorIs(t, f.Err, transport.ErrPublish)
	}
	for id := range syncFailed {
		failedIDs[id] = true
	}

	// Every acked event is really stored.
	require.NoError(t, srv.Restart())
	var stored map[string]bool
	require.Eventually(t, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := srv.JS.Stream(ctx, "AUTH_EVENTS"); err != nil {
			return false
		}
		stored = map[string]bool{}
		for _, m := range pubStored(t, srv.JS, "AUTH_EVENTS") {
			stored[m.Header.Get(marshaler.HeaderMsgID)] = true
		}
		return true
	}, pubWait, 20*time.Millisecond)
	for _, id := range ids {
		if !failedIDs[id] {
			assert.True(t, stored[id], "acked event %s is stored", id)
		}
	}
}

func TestPublisher_close_flushes_pending_async_and_keeps_the_connection(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)

	const n = 500
	for range n {
		require.NoError(t, p.PublishAsync(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")))
	}
	require.NoError(t, p.Close())

	assert.EqualValues(t, n, pubCount(t, srv.JS, "AUTH_EVENTS"), "Close waited for every ack")
	assert.EqualValues(t, n, p.Stats().Acked)
	assert.True(t, srv.Conn.IsConnected(), "the caller's connection stays open")

	e := pubEvent(t, "user.created")
	assert.ErrorIs(t, p.Publish(pubCtx(t), "auth.user.created", e), transport.ErrClosed)
	assert.ErrorIs(t, p.PublishAsync(pubCtx(t), "auth.user.created", e), transport.ErrClosed)
	assert.ErrorIs(t, p.PublishBatch(pubCtx(t), "auth.user.created", e), transport.ErrClosed)
	assert.NoError(t, p.Close(), "Close is idempotent")

	// The connection still works for others.
	other := pubNew(t, srv.Conn)
	require.NoError(t, other.Publish(pubCtx(t), "auth.user.created", e))
}

func TestPublisher_close_deadline_lists_unconfirmed_publishes(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	var reports pubReports
	p, err := jetstream.NewPublisher(srv.Conn,
		jetstream.PublisherConfig{AckTimeout: time.Minute, CloseTimeout: 100 * time.Millisecond, OnAsyncError: reports.handle})
	require.NoError(t, err)

	srv.Stop()
	// Wait until the client knows: publishes then go to the reconnect buffer
	// and nothing settles them before the (long) ack timeout.
	require.Eventually(t, func() bool { return !srv.Conn.IsConnected() }, pubWait, time.Millisecond)
	const n = 5
	ids := map[string]bool{}
	for range n {
		e := pubEvent(t, "user.created")
		ids[e.ID] = true
		require.NoError(t, p.PublishAsync(pubCtx(t), "auth.user.created", e))
	}
	err = p.Close()
	var ce *jetstream.CloseError
	require.ErrorAs(t, err, &ce)
	assert.ErrorIs(t, err, transport.ErrTimeout)
	require.Len(t, ce.Unconfirmed, n)
	for _, u := range ce.Unconfirmed {
		assert.True(t, ids[u.EventID], u.EventID)
		assert.Contains(t, err.Error(), u.EventID)
		assert.NotNil(t, u.Msg, "the message can be published again")
	}
	assert.Empty(t, reports.all(), "listed by Close, not reported twice")
	assert.Equal(t, err, p.Close(), "a second Close returns the same result")
	assert.Zero(t, p.Stats().Pending)
}

func TestPublisher_batch_reports_per_event_errors(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStreamConfig(t, srv.JS, natsjs.StreamConfig{Name: "SMALL", Subjects: []string{"small.>"}, MaxMsgSize: 1024})
	p := pubNew(t, srv.Conn)
	big := func() *envelope.Event {
		e := pubEvent(t, "user.created")
		e.Data = []byte(`"` + strings.Repeat("x", 2048) + `"`)
		return e
	}

	t.Run("all stored", func(t *testing.T) {
		require.NoError(t, p.PublishBatch(pubCtx(t), "small.user.created",
			pubEvent(t, "user.created"), pubEvent(t, "user.created"), pubEvent(t, "user.created")))
		assert.EqualValues(t, 3, pubCount(t, srv.JS, "SMALL"))
	})
	t.Run("one refused by the server", func(t *testing.T) {
		before := pubCount(t, srv.JS, "SMALL")
		err := p.PublishBatch(pubCtx(t), "small.user.created", pubEvent(t, "user.created"), big(), pubEvent(t, "user.created"))
		var be *jetstream.BatchError
		require.ErrorAs(t, err, &be)
		require.Len(t, be.Errs, 3)
		assert.NoError(t, be.Errs[0])
		assert.ErrorIs(t, be.Errs[1], envelope.ErrTooLarge)
		assert.NoError(t, be.Errs[2])
		assert.Equal(t, 1, be.Failed())
		assert.ErrorIs(t, err, envelope.ErrTooLarge, "errors.Is works through the BatchError")
		assert.NotErrorIs(t, err, transport.ErrNoStream)
		assert.Equal(t, before+2, pubCount(t, srv.JS, "SMALL"))
	})
	t.Run("one invalid: nothing sent", func(t *testing.T) {
		before := pubCount(t, srv.JS, "SMALL")
		bad := pubEvent(t, "user.created")
		bad.Source = ""
		err := p.PublishBatch(pubCtx(t), "small.user.created", pubEvent(t, "user.created"), bad, pubEvent(t, "user.created"))
		var be *jetstream.BatchError
		require.ErrorAs(t, err, &be)
		assert.ErrorIs(t, be.Errs[0], transport.ErrNotSent)
		assert.ErrorIs(t, be.Errs[1], envelope.ErrMissingSource)
		assert.ErrorIs(t, be.Errs[2], transport.ErrNotSent)
		assert.ErrorIs(t, err, envelope.ErrInvalidEvent)
		assert.Equal(t, before, pubCount(t, srv.JS, "SMALL"))
	})
	t.Run("no stream", func(t *testing.T) {
		err := p.PublishBatch(pubCtx(t), "nowhere.user.created", pubEvent(t, "user.created"), pubEvent(t, "user.created"))
		var be *jetstream.BatchError
		require.ErrorAs(t, err, &be)
		assert.Equal(t, 2, be.Failed())
		for _, e := range be.Errs {
			assert.ErrorIs(t, e, transport.ErrNoStream)
		}
	})
	t.Run("empty", func(t *testing.T) {
		assert.NoError(t, p.PublishBatch(pubCtx(t), "small.user.created"))
	})
}

func TestPublisher_async_blocks_when_pending_is_full(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubBlackHole(t, srv.Conn, "hole.>")
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	var reports pubReports
	p := pubNew(t, srv.Conn,
		jetstream.PublisherConfig{MaxPending: 1, AckTimeout: 500 * time.Millisecond, OnAsyncError: reports.handle})

	// The only slot is taken by a publish whose ack never comes.
	require.NoError(t, p.PublishAsync(pubCtx(t), "hole.user.created", pubEvent(t, "user.created")))
	assert.Equal(t, 1, p.Stats().Pending)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := p.PublishAsync(ctx, "auth.user.created", pubEvent(t, "user.created"))
	assert.ErrorIs(t, err, transport.ErrTooManyPending)
	assert.ErrorIs(t, err, transport.ErrTimeout)
	assert.NotErrorIs(t, err, transport.ErrPublish, "not sent")

	canceled, cancelNow := context.WithCancel(context.Background())
	cancelNow()
	err = p.PublishAsync(canceled, "auth.user.created", pubEvent(t, "user.created"))
	assert.ErrorIs(t, err, transport.ErrTooManyPending)
	assert.ErrorIs(t, err, context.Canceled)

	// Once the first times out, its slot frees and the next publish goes through.
	require.NoError(t, p.PublishAsync(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")))
	require.NoError(t, p.Flush(pubCtx(t)))
	require.Len(t, reports.all(), 1)
	assert.ErrorIs(t, reports.all()[0].Err, transport.ErrTimeout)
	assert.EqualValues(t, 1, pubCount(t, srv.JS, "AUTH_EVENTS"))
	st := p.Stats()
	assert.EqualValues(t, 2, st.Published, "the refused publishes were never sent")
	assert.EqualValues(t, 1, st.Acked)
	assert.EqualValues(t, 1, st.AsyncFailed)
}

func TestPublisher_close_wakes_publishers_blocked_on_pending(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubBlackHole(t, srv.Conn, "hole.>")
	var reports pubReports
	p, err := jetstream.NewPublisher(srv.Conn, jetstream.PublisherConfig{MaxPending: 1, AckTimeout: 200 * time.Millisecond, OnAsyncError: reports.handle})
	require.NoError(t, err)
	require.NoError(t, p.PublishAsync(pubCtx(t), "hole.a", pubEvent(t, "user.created")))

	blocked := make(chan error, 1)
	go func() { blocked <- p.PublishAsync(context.Background(), "hole.b", pubEvent(t, "user.created")) }()
	require.Eventually(t, func() bool { return p.Stats().Pending == 1 }, pubWait, time.Millisecond)
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()

	select {
	case err := <-blocked:
		// Either Close woke it (ErrClosed) or the first publish timed out
		// first and it went through before Close: both are outcomes, never a hang.
		if err != nil {
			assert.ErrorIs(t, err, transport.ErrClosed)
		}
	case <-time.After(pubWait):
		t.Fatal("PublishAsync still blocked after Close")
	}
	select {
	case err := <-closed:
		assert.NoError(t, err)
	case <-time.After(pubWait):
		t.Fatal("Close did not return")
	}
}

func TestNewPublisher_refuses_invalid_config(t *testing.T) {
	srv := eventstest.NewServer(t)
	tests := []struct {
		name string
		nc   *nats.Conn
		cfgs []jetstream.PublisherConfig
	}{
		{"nil conn", nil, nil},
		{"negative max pending", srv.Conn, []jetstream.PublisherConfig{{MaxPending: -1}}},
		{"huge max pending", srv.Conn, []jetstream.PublisherConfig{{MaxPending: 1 << 30}}},
		{"negative publish timeout", srv.Conn, []jetstream.PublisherConfig{{PublishTimeout: -time.Second}}},
		{"negative ack timeout", srv.Conn, []jetstream.PublisherConfig{{AckTimeout: -time.Second}}},
		{"negative close timeout", srv.Conn, []jetstream.PublisherConfig{{CloseTimeout: -time.Second}}},
		{"two configs", srv.Conn, []jetstream.PublisherConfig{{}, {}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := jetstream.NewPublisher(tt.nc, tt.cfgs...)
			assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
			assert.Nil(t, p)
		})
	}
}

func TestPublisher_default_async_error_handler_logs(t *testing.T) {
	srv := eventstest.NewServer(t)
	var logger pubLogger
	p := pubNew(t, srv.Conn, jetstream.PublisherConfig{Logger: &logger})
	e := pubEvent(t, "user.created")
	require.NoError(t, p.PublishAsync(pubCtx(t), "nowhere.user.created", e))
	require.NoError(t, p.Flush(pubCtx(t)))
	entries := logger.find("jetstream async publish failed")
	require.Len(t, entries, 1)
	assert.Equal(t, "error", entries[0].level)
	assert.ErrorIs(t, entries[0].err, transport.ErrNoStream)
	assert.Equal(t, e.ID, entries[0].fields["event_id"])
}

func TestPublisher_flush_returns_once_what_was_queued_before_it_is_acked_while_others_keep_publishing(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	p, err := jetstream.NewPublisher(srv.Conn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })

	const before = 200
	for range before {
		require.NoError(t, p.PublishAsync(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")))
	}
	// Concurrent callers keep the publisher busy for as long as Flush runs:
	// it must not wait for them.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = p.PublishAsync(pubCtx(t), "auth.user.created", pubEvent(t, "user.created"))
			}
		}()
	}
	defer func() { close(stop); wg.Wait() }()

	ctx, cancel := context.WithTimeout(context.Background(), pubWait)
	defer cancel()
	require.NoError(t, p.Flush(ctx), "Flush waits for what was queued before it, not for an idle publisher")
	assert.GreaterOrEqual(t, p.Stats().Acked, uint64(before))
}
