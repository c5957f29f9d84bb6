package middleware_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/idempotency"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/subscriber"
	"github.com/jetevents/events/transport"
)

// These tests run the middleware the way the router will: a Watermill
// router over the real jetstream subscriber on the embedded server.

const handlerName = "users-handler"

// fastBackoff keeps broker-side retries short and exact (no jitter).
var fastBackoff = transport.Backoff{Initial: 20 * time.Millisecond, Max: 200 * time.Millisecond, Jitter: -1}

// call is one handler invocation.
type call struct {
	eventID string
	attempt uint64
	at      time.Time
	corr    string
	cause   string
}

type recorder struct {
	mu    sync.Mutex
	calls []call
}

func (r *recorder) add(msg *message.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, call{
		eventID: msg.Metadata.Get(marshaler.MetadataID), attempt: attemptOf(msg), at: time.Now(),
		corr: envelope.CorrelationID(msg.Context()), cause: envelope.CausationID(msg.Context()),
	})
}

// attemptOf is the delivery attempt as the Subscriber's delivery view says.
func attemptOf(msg *message.Message) uint64 {
	if dv := transport.FromContext(msg.Context()); dv != nil {
		return dv.Attempt
	}
	return 0
}

func (r *recorder) snapshot() []call {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]call(nil), r.calls...)
}

func (r *recorder) count(eventID string) int {
	n := 0
	for _, c := range r.snapshot() {
		if c.eventID == eventID {
			n++
		}
	}
	return n
}

// routerOpts configures one router "process".
type routerOpts struct {
	nc          *nats.Conn
	dl          *middleware.DeadLetterer
	maxDeliver  int
	idempotency idempotency.Store
	handler     func(*message.Message) error
	// outer, when set, wraps the whole stack (it sees every delivery).
	outer message.HandlerMiddleware
}

// runRouter starts a Watermill router with the recommended middleware order
// and one handler on auth.user.* through durable "users"; it is closed when
// the test ends.
func runRouter(t *testing.T, o routerOpts) {
	t.Helper()
	sub, err := subscriber.New(newTransport(t, o.nc, jetstream.TransportConfig{}), subscriber.Config{
		Stream:         testStream,
		Durable:        testConsumer,
		FilterSubjects: []string{"auth.user.*"},
		AckWait:        5 * time.Second,
		// The Subscriber's own schedule would stall every test: each retry
		// here comes after the delay the middleware decided.
		NakDelay:      func(uint64) time.Duration { return time.Minute },
		OnUndecodable: o.dl.Undecodable,
		CloseTimeout:  5 * time.Second,
	})
	require.NoError(t, err)
	r, err := message.NewRouter(message.RouterConfig{CloseTimeout: 5 * time.Second}, watermill.NopLogger{})
	require.NoError(t, err)

	corr, err := middleware.NewCorrelation(middleware.CorrelationConfig{})
	require.NoError(t, err)
	logging, err := middleware.NewLogging(middleware.LoggingConfig{Logger: watermill.NopLogger{}})
	require.NoError(t, err)
	retry, err := middleware.NewRetry(middleware.RetryConfig{MaxDeliver: o.maxDeliver, Backoff: fastBackoff})
	require.NoError(t, err)
	timeout, err := middleware.Timeout(5 * time.Second)
	require.NoError(t, err)
	mws := []message.HandlerMiddleware{corr.Middleware, logging.Middleware, o.dl.Middleware, retry.Middleware}
	if o.outer != nil {
		mws = append([]message.HandlerMiddleware{o.outer}, mws...)
	}
	if o.idempotency != nil {
		idem, err := middleware.NewIdempotency(middleware.IdempotencyConfig{Store: o.idempotency})
		require.NoError(t, err)
		mws = append(mws, idem.Middleware)
	}
	r.AddMiddleware(append(mws, timeout, wmmiddleware.Recoverer)...)
	r.AddConsumerHandler(handlerName, "auth.user.*", sub, func(msg *message.Message) error { return o.handler(msg) })

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Running():
	case err := <-done:
		cancel()
		t.Fatalf("router stopped: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("router not running")
	}
	t.Cleanup(func() {
		cancel()
		assert.NoError(t, <-done)
		assert.NoError(t, sub.Close())
	})
}

// publishEvent stores an event as the publisher would, with the given
// Nats-Msg-Id (the event id unless msgID is set).
func publishEvent(t *testing.T, js natsjs.JetStream, e *envelope.Event, msgID string) uint64 {
	t.Helper()
	m, err := marshaler.Default().EventToNATS(testSubject, e, marshaler.Relations{CorrelationID: "corr-1"})
	require.NoError(t, err)
	if msgID != "" {
		m.Header.Set(nats.MsgIdHdr, msgID)
	}
	ack, err := js.PublishMsg(testCtx(t), m)
	require.NoError(t, err)
	return ack.Sequence
}

func newTestEvent(id string) *envelope.Event {
	e := envelope.NewEvent("user.created", "auth-service", "org-1", t0, map[string]any{"user": id})
	e.ID = id
	return e
}

// waitAcked waits until the consumer has acked every stream message up to seq.
func waitAcked(t *testing.T, js natsjs.JetStream, seq uint64) {
	t.Helper()
	require.Eventually(t, func() bool {
		c, err := js.Consumer(testCtx(t), testStream, testConsumer)
		if err != nil {
			return false
		}
		info, err := c.Info(testCtx(t))
		return err == nil && info.AckFloor.Stream >= seq && info.NumAckPending == 0
	}, 10*time.Second, 10*time.Millisecond)
}

func TestIntegration_always_failing_handler_is_dead_lettered_after_max_deliver(t *testing.T) {
	env := newDLQEnv(t, false)
	rec := &recorder{}
	runRouter(t, routerOpts{nc: env.srv.Conn, dl: env.dl, maxDeliver: 4, handler: func(msg *message.Message) error {
		rec.add(msg)
		return errors.New("db down\nretry later")
	}})
	seq := publishEvent(t, env.srv.JS, newTestEvent("ev-1"), "")

	got := env.waitDLQ(t, 1)
	waitAcked(t, env.srv.JS, seq)

	calls := rec.snapshot()
	require.Len(t, calls, 4, "called exactly MaxDeliver times")
	for i, c := range calls {
		assert.Equal(t, uint64(i+1), c.attempt)
		if i > 0 {
			assert.GreaterOrEqual(t, c.at.Sub(calls[i-1].at), fastBackoff.Delay(uint64(i)), "broker-side delay before attempt %d", i+1)
		}
	}
	require.Len(t, got, 1)
	dm := got[0]
	original, err := marshaler.Default().EventToNATS(testSubject, newTestEvent("ev-1"), marshaler.Relations{CorrelationID: "corr-1"})
	require.NoError(t, err)
	assert.Equal(t, "dlq."+testSubject, dm.Subject)
	assert.Equal(t, original.Data, dm.Data, "payload unchanged")
	for k, v := range original.Header {
		if k == nats.MsgIdHdr {
			assert.Equal(t, v, dm.Header[middleware.HeaderOriginalPrefix+k])
			continue
		}
		assert.Equal(t, v, dm.Header[k], "original header %s", k)
	}
	h := dm.Header
	assert.Equal(t, testSubject, h.Get(middleware.HeaderSubject))
	assert.Equal(t, testStream, h.Get(middleware.HeaderStream))
	assert.Equal(t, testConsumer, h.Get(middleware.HeaderConsumer))
	assert.Equal(t, "1", h.Get(middleware.HeaderStreamSeq))
	assert.Equal(t, "4", h.Get(middleware.HeaderDeliveries))
	assert.Equal(t, handlerName, h.Get(middleware.HeaderHandler))
	assert.Equal(t, middleware.ReasonMaxDeliver, h.Get(middleware.HeaderReason))
	assert.Equal(t, "attempt 4 of 4: db down retry later", h.Get(middleware.HeaderError))
	assert.Equal(t, "2025-01-02T03:04:05Z", h.Get(middleware.HeaderTime))
	assert.Equal(t, "dlq:AUTH_EVENTS:users:1", h.Get(nats.MsgIdHdr))
}

func TestIntegration_handler_failing_twice_then_succeeding_is_not_dead_lettered(t *testing.T) {
	env := newDLQEnv(t, false)
	rec := &recorder{}
	runRouter(t, routerOpts{nc: env.srv.Conn, dl: env.dl, maxDeliver: 4, handler: func(msg *message.Message) error {
		rec.add(msg)
		if attemptOf(msg) < 3 {
			return errors.New("transient")
		}
		return nil
	}})
	seq := publishEvent(t, env.srv.JS, newTestEvent("ev-1"), "")
	waitAcked(t, env.srv.JS, seq)

	calls := rec.snapshot()
	require.Len(t, calls, 3)
	gap1, gap2 := calls[1].at.Sub(calls[0].at), calls[2].at.Sub(calls[1].at)
	assert.GreaterOrEqual(t, gap1, fastBackoff.Delay(1))
	assert.GreaterOrEqual(t, gap2, fastBackoff.Delay(2), "growing delays")
	assert.Empty(t, env.dlqMessages(t))
}

func TestIntegration_permanent_error_and_malformed_payload_are_dead_lettered_at_once(t *testing.T) {
	env := newDLQEnv(t, false)
	rec := &recorder{}
	runRouter(t, routerOpts{nc: env.srv.Conn, dl: env.dl, maxDeliver: 5, handler: func(msg *message.Message) error {
		rec.add(msg)
		if msg.Metadata.Get(marshaler.MetadataID) == "ev-bad" {
			return middleware.Permanent(errors.New("invalid user"))
		}
		return nil
	}})
	publishEvent(t, env.srv.JS, newTestEvent("ev-bad"), "")
	_, err := env.srv.JS.PublishMsg(testCtx(t), &nats.Msg{Subject: "auth.user.deleted", Data: []byte("{not an event")})
	require.NoError(t, err)
	seq := publishEvent(t, env.srv.JS, newTestEvent("ev-good"), "")

	got := env.waitDLQ(t, 2)
	waitAcked(t, env.srv.JS, seq)
	assert.Equal(t, 1, rec.count("ev-bad"), "permanent: one call")
	assert.Equal(t, 1, rec.count("ev-good"), "the next event is still handled")

	byReason := map[string]*natsjs.RawStreamMsg{}
	for _, m := range got {
		byReason[m.Header.Get(middleware.HeaderReason)] = m
	}
	require.Contains(t, byReason, middleware.ReasonPermanent)
	assert.Equal(t, "invalid user", byReason[middleware.ReasonPermanent].Header.Get(middleware.HeaderError))
	assert.Equal(t, "1", byReason[middleware.ReasonPermanent].Header.Get(middleware.HeaderDeliveries))
	require.Contains(t, byReason, middleware.ReasonUnmarshal)
	bad := byReason[middleware.ReasonUnmarshal]
	assert.Equal(t, "dlq.auth.user.deleted", bad.Subject)
	assert.Equal(t, []byte("{not an event"), bad.Data)
	assert.Equal(t, "2", bad.Header.Get(middleware.HeaderStreamSeq))
	assert.NotEmpty(t, bad.Header.Get(middleware.HeaderError))
}

func TestIntegration_failed_dead_letter_publish_naks_and_retries_until_stored(t *testing.T) {
	env := newDLQEnv(t, true) // no DLQ stream yet
	dl, err := middleware.NewDeadLetterer(env.tr, middleware.DeadLetterConfig{
		Clock: env.clock, RetryBackoff: fastBackoff, PublishTimeout: 2 * time.Second,
	})
	require.NoError(t, err)
	env.dl = dl
	rec, deliveries := &recorder{}, &recorder{}
	runRouter(t, routerOpts{nc: env.srv.Conn, dl: dl, maxDeliver: 10,
		outer: func(h message.HandlerFunc) message.HandlerFunc {
			return func(msg *message.Message) ([]*message.Message, error) { deliveries.add(msg); return h(msg) }
		},
		handler: func(msg *message.Message) error {
			rec.add(msg)
			return middleware.Permanent(errors.New("invalid"))
		}})
	seq := publishEvent(t, env.srv.JS, newTestEvent("ev-1"), "")

	// Not acked: the broker delivers it again, and the remembered verdict
	// retries the publish without calling the handler.
	require.Eventually(t, func() bool { return deliveries.count("ev-1") >= 3 }, 10*time.Second, 10*time.Millisecond)
	assert.Equal(t, 1, rec.count("ev-1"), "the handler ran once")
	createDLQ(t, env.srv)

	got := env.waitDLQ(t, 1)
	waitAcked(t, env.srv.JS, seq)
	require.Len(t, got, 1)
	assert.Equal(t, middleware.ReasonPermanent, got[0].Header.Get(middleware.HeaderReason))
	assert.Equal(t, "invalid", got[0].Header.Get(middleware.HeaderError))
	assert.Equal(t, handlerName, got[0].Header.Get(middleware.HeaderHandler))
	assert.Equal(t, 1, rec.count("ev-1"), "stored without another handler call")
	for i, c := range deliveries.snapshot() {
		assert.Equal(t, uint64(i+1), c.attempt, "one delivery per attempt, each through the stack")
	}
}

func TestIntegration_same_event_published_twice_is_handled_once_across_two_routers(t *testing.T) {
	env := newDLQEnv(t, false)
	rec := &recorder{}
	handler := func(msg *message.Message) error { rec.add(msg); return nil }
	for range 2 { // two "processes": own connection, own store, one bucket
		nc := env.srv.Connect(t)
		store, err := jetstream.NewKVStore(testCtx(t), nc, jetstream.KVStoreConfig{})
		require.NoError(t, err)
		dl, err := middleware.NewDeadLetterer(newTransport(t, nc, jetstream.TransportConfig{}), middleware.DeadLetterConfig{})
		require.NoError(t, err)
		runRouter(t, routerOpts{nc: nc, dl: dl, maxDeliver: 5, idempotency: store, handler: handler})
	}

	var last uint64
	for i := range 5 {
		e := newTestEvent("ev-dup")
		last = publishEvent(t, env.srv.JS, e, "fresh-"+string(rune('a'+i))) // republished with a fresh Nats-Msg-Id
		last = publishEvent(t, env.srv.JS, newTestEvent("ev-"+string(rune('a'+i))), "")
	}
	waitAcked(t, env.srv.JS, last)

	assert.Equal(t, 1, rec.count("ev-dup"), "stored 5 times, handled once")
	for i := range 5 {
		assert.Equal(t, 1, rec.count("ev-"+string(rune('a'+i))))
	}
	assert.Empty(t, env.dlqMessages(t))
}

func TestIntegration_correlation_flows_across_two_hops(t *testing.T) {
	env := newDLQEnv(t, false)
	pub, err := jetstream.NewPublisher(env.srv.Conn)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, pub.Close()) })
	rec := &recorder{}
	runRouter(t, routerOpts{nc: env.srv.Conn, dl: env.dl, maxDeliver: 5, handler: func(msg *message.Message) error {
		rec.add(msg)
		if msg.Metadata.Get(marshaler.MetadataType) == "user.created" {
			next := envelope.NewEvent("user.welcomed", "mailer", "org-1", t0, nil)
			next.ID = "ev-B"
			return pub.Publish(msg.Context(), "auth.user.welcomed", next)
		}
		return nil
	}})
	publishEvent(t, env.srv.JS, newTestEvent("ev-A"), "") // carries ce-correlationid corr-1

	require.Eventually(t, func() bool { return rec.count("ev-B") == 1 }, 10*time.Second, 10*time.Millisecond)
	for _, c := range rec.snapshot() {
		switch c.eventID {
		case "ev-A":
			assert.Equal(t, "corr-1", c.corr)
			assert.Equal(t, "ev-A", c.cause)
		case "ev-B":
			assert.Equal(t, "corr-1", c.corr, "same conversation")
			assert.Equal(t, "ev-B", c.cause, "B's own handling is caused by B")
		}
	}
	b, err := env.srv.JS.Stream(testCtx(t), testStream)
	require.NoError(t, err)
	stored, err := b.GetLastMsgForSubject(testCtx(t), "auth.user.welcomed")
	require.NoError(t, err)
	assert.Equal(t, "corr-1", stored.Header.Get(marshaler.HeaderCorrelationID))
	assert.Equal(t, "ev-A", stored.Header.Get(marshaler.HeaderCausationID), "B was caused by A")
}
