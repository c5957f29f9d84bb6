package middleware_test

import (
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
)

// neverAck publishes one event and consumes it with a consumer that never
// settles it: after MaxDeliver deliveries the server emits the advisory.
func (e *dlqEnv) neverAck(t *testing.T, maxDeliver int) {
	t.Helper()
	ctx := testCtx(t)
	_, err := e.srv.JS.PublishMsg(ctx, &nats.Msg{Subject: testSubject, Header: originalHeaders("ev-1"), Data: []byte(`{"id":"ev-1"}`)})
	require.NoError(t, err)
	cons, err := e.srv.JS.CreateOrUpdateConsumer(ctx, testStream, natsjs.ConsumerConfig{
		Durable:    testConsumer,
		AckPolicy:  natsjs.AckExplicitPolicy,
		AckWait:    200 * time.Millisecond,
		MaxDeliver: maxDeliver,
	})
	require.NoError(t, err)
	cc, err := cons.Consume(func(natsjs.Msg) {}) // crash-like: never acks
	require.NoError(t, err)
	t.Cleanup(cc.Stop)
}

func (e *dlqEnv) waitDLQ(t *testing.T, n int) []*natsjs.RawStreamMsg {
	t.Helper()
	require.Eventually(t, func() bool { return len(e.dlqMessages(t)) >= n }, 10*time.Second, 20*time.Millisecond)
	return e.dlqMessages(t)
}

func startWatcher(t *testing.T, e *dlqEnv, cfg middleware.AdvisoryConfig) *middleware.AdvisoryWatcher {
	t.Helper()
	w, err := middleware.NewAdvisoryWatcher(e.srv.Conn, e.dl, cfg)
	require.NoError(t, err)
	require.NoError(t, w.Start(testCtx(t)))
	t.Cleanup(func() { assert.NoError(t, w.Stop(testCtx(t))) })
	return w
}

func TestAdvisoryWatcher_dead_letters_a_message_that_exhausted_max_deliver(t *testing.T) {
	env := newDLQEnv(t, false)
	var mu sync.Mutex
	var reported []error
	startWatcher(t, env, middleware.AdvisoryConfig{
		Stream: testStream, Consumer: testConsumer, Handler: "users-handler",
		OnError: func(err error) { mu.Lock(); reported = append(reported, err); mu.Unlock() },
	})

	env.neverAck(t, 2)

	got := env.waitDLQ(t, 1)
	require.Len(t, got, 1)
	dm := got[0]
	assert.Equal(t, "dlq."+testSubject, dm.Subject)
	assert.Equal(t, []byte(`{"id":"ev-1"}`), dm.Data)
	h := dm.Header
	assert.Equal(t, middleware.ReasonMaxDeliveriesAdvisory, h.Get(middleware.HeaderReason))
	assert.Equal(t, testSubject, h.Get(middleware.HeaderSubject))
	assert.Equal(t, testStream, h.Get(middleware.HeaderStream))
	assert.Equal(t, testConsumer, h.Get(middleware.HeaderConsumer))
	assert.Equal(t, "1", h.Get(middleware.HeaderStreamSeq))
	assert.Equal(t, "2", h.Get(middleware.HeaderDeliveries))
	assert.Equal(t, "users-handler", h.Get(middleware.HeaderHandler))
	assert.Equal(t, "consumer users gave up after 2 deliveries without a verdict", h.Get(middleware.HeaderError))
	assert.Equal(t, "2025-01-02T03:04:05Z", h.Get(middleware.HeaderTime))
	assert.Equal(t, "dlq:AUTH_EVENTS:1", h.Get(nats.MsgIdHdr))
	assert.Equal(t, "ev-1", h.Get("Dlq-Original-Nats-Msg-Id"))
	assert.Equal(t, "ev-1", h.Get(marshaler.HeaderID))
	mu.Lock()
	assert.Empty(t, reported)
	mu.Unlock()
}

func TestAdvisoryWatcher_and_handler_path_store_one_dead_letter(t *testing.T) {
	env := newDLQEnv(t, false)
	raw := env.publishAndFetch(t, []byte(`{}`), originalHeaders("ev-1"))
	require.NoError(t, env.dl.Undecodable(testCtx(t), raw, marshaler.ErrUnmarshal))

	w, err := middleware.NewAdvisoryWatcher(env.srv.Conn, env.dl, middleware.AdvisoryConfig{Stream: testStream})
	require.NoError(t, err)
	adv, err := json.Marshal(middleware.MaxDeliveriesAdvisory{Type: middleware.AdvisoryType, Stream: testStream, Consumer: testConsumer, StreamSeq: 1, Deliveries: 5})
	require.NoError(t, err)
	require.NoError(t, w.Handle(testCtx(t), adv))

	got := env.dlqMessages(t)
	require.Len(t, got, 1)
	assert.Equal(t, middleware.ReasonUnmarshal, got[0].Header.Get(middleware.HeaderReason), "the first verdict stays")
}

func TestAdvisoryWatcher_reports_what_it_cannot_dead_letter(t *testing.T) {
	tests := []struct {
		name      string
		noDLQ     bool
		advisory  string
		wantErrIs error
	}{
		{"malformed advisory", false, `{"stream":`, middleware.ErrAdvisory},
		{"message gone", false, `{"stream":"AUTH_EVENTS","consumer":"users","stream_seq":99,"deliveries":2}`, middleware.ErrMessageGone},
		{"unknown stream", false, `{"stream":"NOPE","consumer":"users","stream_seq":1,"deliveries":2}`, natsjs.ErrStreamNotFound},
		{"dead-letter stream missing", true, `{"stream":"AUTH_EVENTS","consumer":"users","stream_seq":1,"deliveries":2}`, middleware.ErrDeadLetter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := newDLQEnv(t, tt.noDLQ)
			env.publishAndFetch(t, []byte(`{}`), originalHeaders("ev-1"))
			w, err := middleware.NewAdvisoryWatcher(env.srv.Conn, env.dl, middleware.AdvisoryConfig{
				Stream: testStream, Attempts: 2, Backoff: middleware.Backoff{Initial: time.Millisecond, Max: time.Millisecond},
			})
			require.NoError(t, err)
			err = w.Handle(testCtx(t), []byte(tt.advisory))
			assert.ErrorIs(t, err, middleware.ErrAdvisory)
			assert.ErrorIs(t, err, tt.wantErrIs)
		})
	}
}

func TestAdvisoryWatcher_reports_failures_through_OnError(t *testing.T) {
	env := newDLQEnv(t, true) // no DLQ stream: every dead letter fails
	errs := make(chan error, 1)
	startWatcher(t, env, middleware.AdvisoryConfig{
		Stream: testStream, Consumer: testConsumer, Attempts: 1,
		OnError: func(err error) {
			select {
			case errs <- err:
			default:
			}
		},
	})
	env.neverAck(t, 2)
	select {
	case err := <-errs:
		assert.ErrorIs(t, err, middleware.ErrAdvisory)
		assert.ErrorIs(t, err, middleware.ErrDeadLetter)
	case <-time.After(10 * time.Second):
		t.Fatal("no error reported")
	}
}

func TestAdvisoryWatcher_capture_stream_keeps_advisories_emitted_while_stopped(t *testing.T) {
	env := newDLQEnv(t, false)
	_, err := env.srv.JS.CreateStream(testCtx(t), middleware.AdvisoryCaptureStream("ADVISORIES"))
	require.NoError(t, err)

	env.neverAck(t, 2) // no watcher runs yet
	require.Eventually(t, func() bool {
		s, err := env.srv.JS.Stream(testCtx(t), "ADVISORIES")
		if err != nil {
			return false
		}
		info, err := s.Info(testCtx(t))
		return err == nil && info.State.Msgs == 1
	}, 10*time.Second, 20*time.Millisecond, "the advisory is captured")
	assert.Empty(t, env.dlqMessages(t))

	startWatcher(t, env, middleware.AdvisoryConfig{Stream: testStream, Consumer: testConsumer, CaptureStream: "ADVISORIES"})

	got := env.waitDLQ(t, 1)
	require.Len(t, got, 1)
	assert.Equal(t, middleware.ReasonMaxDeliveriesAdvisory, got[0].Header.Get(middleware.HeaderReason))
	assert.Equal(t, "1", got[0].Header.Get(middleware.HeaderStreamSeq))
	// Acked once stored: the capture consumer has nothing pending.
	require.Eventually(t, func() bool {
		c, err := env.srv.JS.Consumer(testCtx(t), "ADVISORIES", "jetevents-dlq-"+testStream+"-"+testConsumer)
		if err != nil {
			return false
		}
		info, err := c.Info(testCtx(t))
		return err == nil && info.NumAckPending == 0 && info.NumPending == 0
	}, 10*time.Second, 20*time.Millisecond)
}

func TestAdvisoryWatcher_start_stop_lifecycle_and_config(t *testing.T) {
	env := newDLQEnv(t, false)
	w, err := middleware.NewAdvisoryWatcher(env.srv.Conn, env.dl, middleware.AdvisoryConfig{Stream: testStream})
	require.NoError(t, err)
	assert.Equal(t, "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.AUTH_EVENTS.*", w.Subject())
	assert.ErrorIs(t, w.Stop(testCtx(t)), middleware.ErrNotStarted)
	require.NoError(t, w.Start(testCtx(t)))
	assert.ErrorIs(t, w.Start(testCtx(t)), middleware.ErrAlreadyStarted)
	require.NoError(t, w.Stop(testCtx(t)))
	require.NoError(t, w.Start(testCtx(t)), "restartable")
	require.NoError(t, w.Stop(testCtx(t)))

	for _, cfg := range []middleware.AdvisoryConfig{
		{},
		{Stream: "A.B"},
		{Stream: "S", Consumer: "c>"},
		{Stream: "S", Attempts: -1},
	} {
		_, err := middleware.NewAdvisoryWatcher(env.srv.Conn, env.dl, cfg)
		assert.ErrorIs(t, err, middleware.ErrInvalidConfig, "%+v", cfg)
	}
	_, err = middleware.NewAdvisoryWatcher(env.srv.Conn, nil, middleware.AdvisoryConfig{Stream: "S"})
	assert.ErrorIs(t, err, middleware.ErrInvalidConfig)
}

func TestAdvisoryWatcher_capture_watchers_of_two_consumers_do_not_steal_each_others_advisories(t *testing.T) {
	env := newDLQEnv(t, false)
	_, err := env.srv.JS.CreateStream(testCtx(t), middleware.AdvisoryCaptureStream("ADVISORIES"))
	require.NoError(t, err)
	startWatcher(t, env, middleware.AdvisoryConfig{Stream: testStream, Consumer: testConsumer, CaptureStream: "ADVISORIES"})
	startWatcher(t, env, middleware.AdvisoryConfig{Stream: testStream, Consumer: "audit", CaptureStream: "ADVISORIES"})

	env.neverAck(t, 2) // on consumer "users"

	got := env.waitDLQ(t, 1)
	require.Len(t, got, 1)
	assert.Equal(t, testConsumer, got[0].Header.Get(middleware.HeaderConsumer))
}
