package jetstream_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// obsRecord is what an observer saw of one publish.
type obsRecord struct {
	info    jetstream.PublishInfo
	results []jetstream.PublishResult
}

// recorder is a PublishObserver that records every call, by event id.
type recorder struct {
	mu    sync.Mutex
	order []string
	byID  map[string]*obsRecord
	// ctx, when set, replaces the context the event is encoded with.
	ctx func(context.Context) context.Context
}

func newRecorder() *recorder { return &recorder{byID: map[string]*obsRecord{}} }

func (r *recorder) observe(ctx context.Context, info jetstream.PublishInfo) (context.Context, func(jetstream.PublishResult)) {
	r.mu.Lock()
	rec := &obsRecord{info: info}
	r.byID[info.EventID] = rec
	r.order = append(r.order, info.EventID)
	r.mu.Unlock()
	if r.ctx != nil {
		ctx = r.ctx(ctx)
	}
	return ctx, func(res jetstream.PublishResult) {
		r.mu.Lock()
		rec.results = append(rec.results, res)
		r.mu.Unlock()
	}
}

func (r *recorder) get(id string) obsRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	if rec := r.byID[id]; rec != nil {
		return obsRecord{info: rec.info, results: append([]jetstream.PublishResult(nil), rec.results...)}
	}
	return obsRecord{}
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.order)
}

// once asserts that the publish of id was observed with mode and reported
// exactly once, and returns that report.
func (r *recorder) once(t *testing.T, id string, mode jetstream.PublishMode) jetstream.PublishResult {
	t.Helper()
	rec := r.get(id)
	require.Equal(t, id, rec.info.EventID, "publish of %s not observed", id)
	assert.Equal(t, mode, rec.info.Mode)
	require.Len(t, rec.results, 1, "outcome of %s reported %d times", id, len(rec.results))
	return rec.results[0]
}

func TestPublishObserver_reports_each_path_once_with_its_outcome(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	rec := newRecorder()
	var reports pubReports
	p := pubNew(t, srv.Conn, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{rec.observe}, OnAsyncError: reports.handle})

	t.Run("sync stored", func(t *testing.T) {
		e := pubEvent(t, "user.created")
		require.NoError(t, p.Publish(pubCtx(t), "auth.user.created", e))
		res := rec.once(t, e.ID, jetstream.ModeSync)
		assert.NoError(t, res.Err)
		assert.False(t, res.Duplicate)
		assert.Equal(t, "AUTH_EVENTS", res.Stream)
		assert.NotZero(t, res.Sequence)
		info := rec.get(e.ID).info
		assert.Equal(t, jetstream.PublishInfo{Subject: "auth.user.created", EventID: e.ID, EventType: "user.created", OrganizationID: "org-123", Mode: jetstream.ModeSync}, info)
	})
	t.Run("sync duplicate", func(t *testing.T) {
		e := pubEvent(t, "user.created")
		require.NoError(t, p.Publish(pubCtx(t), "auth.user.created", e))
		rec2 := newRecorder()
		p2 := pubNew(t, srv.Conn, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{rec2.observe}})
		require.NoError(t, p2.Publish(pubCtx(t), "auth.user.created", e))
		res := rec2.once(t, e.ID, jetstream.ModeSync)
		assert.NoError(t, res.Err)
		assert.True(t, res.Duplicate)
	})
	t.Run("sync without stream", func(t *testing.T) {
		e := pubEvent(t, "order.placed")
		require.ErrorIs(t, p.Publish(pubCtx(t), "orders.placed", e), transport.ErrNoStream)
		assert.ErrorIs(t, rec.once(t, e.ID, jetstream.ModeSync).Err, transport.ErrNoStream)
	})
	t.Run("invalid event refused before sending", func(t *testing.T) {
		e := pubEvent(t, "user.created")
		e.Source = ""
		require.ErrorIs(t, p.Publish(pubCtx(t), "auth.user.created", e), envelope.ErrInvalidEvent)
		assert.ErrorIs(t, rec.once(t, e.ID, jetstream.ModeSync).Err, envelope.ErrInvalidEvent)
	})
	t.Run("async stored, reported by Flush's return", func(t *testing.T) {
		e := pubEvent(t, "user.created")
		require.NoError(t, p.PublishAsync(pubCtx(t), "auth.user.created", e))
		require.NoError(t, p.Flush(pubCtx(t)))
		res := rec.once(t, e.ID, jetstream.ModeAsync)
		assert.NoError(t, res.Err)
		assert.Equal(t, "AUTH_EVENTS", res.Stream)
	})
	t.Run("async failure reported to the observer and to OnAsyncError", func(t *testing.T) {
		e := pubEvent(t, "order.placed")
		require.NoError(t, p.PublishAsync(pubCtx(t), "orders.placed", e))
		require.NoError(t, p.Flush(pubCtx(t)))
		assert.ErrorIs(t, rec.once(t, e.ID, jetstream.ModeAsync).Err, transport.ErrNoStream)
		require.NotEmpty(t, reports.all())
		assert.Equal(t, e.ID, reports.all()[len(reports.all())-1].EventID)
	})
	t.Run("batch", func(t *testing.T) {
		a, b := pubEvent(t, "user.created"), pubEvent(t, "user.created")
		require.NoError(t, p.PublishBatch(pubCtx(t), "auth.user.created", a, b))
		for _, e := range []*envelope.Event{a, b} {
			res := rec.once(t, e.ID, jetstream.ModeBatch)
			assert.NoError(t, res.Err)
			assert.NotZero(t, res.Sequence)
		}
	})
	t.Run("batch with an invalid event sends nothing and reports all", func(t *testing.T) {
		good, bad := pubEvent(t, "user.created"), pubEvent(t, "user.created")
		bad.Type = ""
		require.Error(t, p.PublishBatch(pubCtx(t), "auth.user.created", good, bad))
		assert.ErrorIs(t, rec.once(t, good.ID, jetstream.ModeBatch).Err, transport.ErrNotSent)
		assert.ErrorIs(t, rec.once(t, bad.ID, jetstream.ModeBatch).Err, envelope.ErrInvalidEvent)
	})
	t.Run("watermill message publisher", func(t *testing.T) {
		e := pubEvent(t, "user.created")
		wm, err := marshaler.Default().ToMessage(e)
		require.NoError(t, err)
		require.NoError(t, p.MessagePublisher().Publish("auth.user.created", wm))
		res := rec.once(t, e.ID, jetstream.ModeBatch)
		assert.NoError(t, res.Err)
		assert.Equal(t, "user.created", rec.get(e.ID).info.EventType)
	})
	t.Run("closed publisher", func(t *testing.T) {
		rec3 := newRecorder()
		p3, err := jetstream.NewPublisher(srv.Conn, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{rec3.observe}})
		require.NoError(t, err)
		require.NoError(t, p3.Close())
		a, b, c := pubEvent(t, "user.created"), pubEvent(t, "user.created"), pubEvent(t, "user.created")
		require.ErrorIs(t, p3.Publish(pubCtx(t), "auth.user.created", a), transport.ErrClosed)
		require.ErrorIs(t, p3.PublishAsync(pubCtx(t), "auth.user.created", b), transport.ErrClosed)
		require.ErrorIs(t, p3.PublishBatch(pubCtx(t), "auth.user.created", c), transport.ErrClosed)
		assert.ErrorIs(t, rec3.once(t, a.ID, jetstream.ModeSync).Err, transport.ErrClosed)
		assert.ErrorIs(t, rec3.once(t, b.ID, jetstream.ModeAsync).Err, transport.ErrClosed)
		assert.ErrorIs(t, rec3.once(t, c.ID, jetstream.ModeBatch).Err, transport.ErrClosed)
	})
}

func TestPublishObserver_close_deadline_reports_every_unconfirmed_publish(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	rec := newRecorder()
	p, err := jetstream.NewPublisher(srv.Conn, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{rec.observe}, AckTimeout: time.Minute, CloseTimeout: 100 * time.Millisecond})
	require.NoError(t, err)
	srv.Stop()
	require.Eventually(t, func() bool { return !srv.Conn.IsConnected() }, pubWait, time.Millisecond)
	var ids []string
	for range 3 {
		e := pubEvent(t, "user.created")
		ids = append(ids, e.ID)
		require.NoError(t, p.PublishAsync(pubCtx(t), "auth.user.created", e))
	}
	require.ErrorIs(t, p.Close(), transport.ErrTimeout)
	for _, id := range ids {
		assert.ErrorIs(t, rec.once(t, id, jetstream.ModeAsync).Err, transport.ErrTimeout)
	}
}

func TestPublishObserver_context_it_returns_is_the_one_encoded(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	tid, _ := trace.TraceIDFromHex("4bf92f3577b34da6a3ce929d0e0e4736")
	sid, _ := trace.SpanIDFromHex("00f067aa0ba902b7")
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled})
	rec := newRecorder()
	rec.ctx = func(ctx context.Context) context.Context { return trace.ContextWithSpanContext(ctx, sc) }
	p := pubNew(t, srv.Conn, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{rec.observe}})

	sync, async := pubEvent(t, "user.created"), pubEvent(t, "user.created")
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.created", sync))
	require.NoError(t, p.PublishAsync(pubCtx(t), "auth.user.created", async))
	wm, err := marshaler.Default().ToMessage(pubEvent(t, "user.created"))
	require.NoError(t, err)
	caller := []*message.Message{wm}
	require.NoError(t, p.MessagePublisher().Publish("auth.user.created", caller...))
	require.NoError(t, p.Flush(pubCtx(t)))
	assert.Same(t, wm, caller[0], "the caller's slice is left alone")
	assert.Equal(t, context.Background(), wm.Context(), "the caller's message keeps its context")

	stored := pubStored(t, srv.JS, "AUTH_EVENTS")
	require.Len(t, stored, 3)
	for _, m := range stored {
		assert.Equal(t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", m.Header.Get(marshaler.HeaderTraceParent))
	}
}

func TestPublishObserver_several_run_in_order_and_hear_outcomes_in_reverse(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubStream(t, srv.JS, "AUTH_EVENTS", "auth.>")
	var mu sync.Mutex
	var calls []string
	obs := func(name string) jetstream.PublishObserver {
		return func(ctx context.Context, _ jetstream.PublishInfo) (context.Context, func(jetstream.PublishResult)) {
			mu.Lock()
			calls = append(calls, "start "+name)
			mu.Unlock()
			return context.WithValue(ctx, obsKey(name), true), func(jetstream.PublishResult) {
				mu.Lock()
				calls = append(calls, "done "+name)
				mu.Unlock()
			}
		}
	}
	var sawFirst bool
	check := func(ctx context.Context, _ jetstream.PublishInfo) (context.Context, func(jetstream.PublishResult)) {
		sawFirst = ctx.Value(obsKey("a")) == true
		return nil, nil // keeps the context; wants no outcome
	}
	p := pubNew(t, srv.Conn, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{obs("a"), check, obs("b")}})
	require.NoError(t, p.Publish(pubCtx(t), "auth.user.created", pubEvent(t, "user.created")))
	assert.Equal(t, []string{"start a", "start b", "done b", "done a"}, calls)
	assert.True(t, sawFirst, "each observer gets the context of the one before")

	_, err := jetstream.NewPublisher(srv.Conn, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{nil}})
	assert.ErrorIs(t, err, envelope.ErrInvalidConfig)
}

type obsKey string
