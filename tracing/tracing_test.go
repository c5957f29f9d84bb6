package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/tracing"
	"github.com/jetevents/events/transport"
)

const stream = "AUTH_EVENTS"

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// traced is an embedded server, a tracer provider recording every span, and
// a traced publisher.
type traced struct {
	srv *eventstest.Server
	rec *tracetest.SpanRecorder
	tp  *sdktrace.TracerProvider
	tr  *tracing.Tracer
	pub *jetstream.Publisher
}

func newTraced(t *testing.T) *traced {
	t.Helper()
	srv := eventstest.NewServer(t)
	_, err := jetstream.Apply(ctxT(t), srv.JS, jetstream.AuthEventsStream(), jetstream.DeadLetterStream())
	require.NoError(t, err)
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	tr := tracing.New(tracing.Config{TracerProvider: tp})
	pub, err := jetstream.NewPublisher(srv.Conn, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{tr.PublishObserver}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	return &traced{srv: srv, rec: rec, tp: tp, tr: tr, pub: pub}
}

func (x *traced) router(t *testing.T, maxDeliver int) *router.Router {
	t.Helper()
	cfg := router.Config{
		Stream: stream, MaxDeliver: maxDeliver, AckWait: 2 * time.Second, CloseTimeout: 5 * time.Second,
		Backoff: transport.Backoff{Initial: 20 * time.Millisecond, Max: 100 * time.Millisecond, Jitter: -1},
	}
	x.tr.Instrument(&cfg)
	r, err := router.New(x.srv.Conn, cfg)
	require.NoError(t, err)
	return r
}

func run(t *testing.T, r *router.Router) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Error("router did not stop")
		}
	})
	select {
	case <-r.Running():
	case err := <-done:
		t.Fatalf("router stopped at start: %v", err)
	case <-time.After(15 * time.Second):
		t.Fatal("router did not start")
	}
}

// ended returns the ended spans named name.
func (x *traced) ended(name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range x.rec.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func (x *traced) waitSpan(t *testing.T, name string, n int) []sdktrace.ReadOnlySpan {
	t.Helper()
	require.Eventually(t, func() bool { return len(x.ended(name)) >= n }, 20*time.Second, 10*time.Millisecond, "span %q", name)
	return x.ended(name)
}

func attr(s sdktrace.ReadOnlySpan, key string) attribute.Value {
	for _, kv := range s.Attributes() {
		if string(kv.Key) == key {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func event(typ string) *envelope.Event {
	return envelope.NewEvent(typ, "auth-service", "org-123", time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC), map[string]any{"user_id": 1})
}

func TestTracing_publish_handle_publish_handle_is_one_trace_with_correct_parents(t *testing.T) {
	x := newTraced(t)
	r := x.router(t, 3)
	welcomed := make(chan string, 1)
	r.Group("accounts", "auth.user.created").On("user.created", func(ctx context.Context, e *envelope.Event) error {
		return x.pub.Publish(ctx, "auth.user.welcomed", event("user.welcomed"))
	})
	r.Group("mailer", "auth.user.welcomed").On("user.welcomed", func(ctx context.Context, e *envelope.Event) error {
		welcomed <- trace.SpanContextFromContext(ctx).SpanID().String()
		return nil
	})
	run(t, r)

	// The first publish happens inside a request's span.
	ctx, root := x.tp.Tracer("test").Start(ctxT(t), "HTTP POST /users")
	created := event("user.created")
	require.NoError(t, x.pub.Publish(ctx, "auth.user.created", created))
	root.End()
	var handlerSpan string
	select {
	case handlerSpan = <-welcomed:
	case <-time.After(20 * time.Second):
		t.Fatal("second handler never ran")
	}
	x.waitSpan(t, "process auth.user.welcomed", 1)

	pub1 := x.waitSpan(t, "publish auth.user.created", 1)[0]
	proc1 := x.waitSpan(t, "process auth.user.created", 1)[0]
	pub2 := x.waitSpan(t, "publish auth.user.welcomed", 1)[0]
	proc2 := x.waitSpan(t, "process auth.user.welcomed", 1)[0]
	rootSpan := x.waitSpan(t, "HTTP POST /users", 1)[0]

	tid := rootSpan.SpanContext().TraceID()
	chain := []struct {
		span   sdktrace.ReadOnlySpan
		parent sdktrace.ReadOnlySpan
		kind   trace.SpanKind
	}{
		{pub1, rootSpan, trace.SpanKindProducer},
		{proc1, pub1, trace.SpanKindConsumer},
		{pub2, proc1, trace.SpanKindProducer},
		{proc2, pub2, trace.SpanKindConsumer},
	}
	for _, c := range chain {
		t.Run(c.span.Name(), func(t *testing.T) {
			assert.Equal(t, tid, c.span.SpanContext().TraceID(), "one trace")
			assert.Equal(t, c.parent.SpanContext().SpanID(), c.span.Parent().SpanID(), "parent is %s", c.parent.Name())
			assert.Equal(t, c.kind, c.span.SpanKind())
			assert.Equal(t, "nats", attr(c.span, "messaging.system").AsString())
			assert.NotEmpty(t, attr(c.span, "messaging.message.id").AsString())
		})
	}
	assert.True(t, proc1.Parent().IsRemote(), "the consumer's parent came over the wire")
	assert.Equal(t, proc2.SpanContext().SpanID().String(), handlerSpan, "the handler runs in the consumer span")

	// Semantic-convention attributes of each side.
	assert.Equal(t, "auth.user.created", attr(pub1, "messaging.destination.name").AsString())
	assert.Equal(t, "publish", attr(pub1, "messaging.operation.name").AsString())
	assert.Equal(t, "send", attr(pub1, "messaging.operation.type").AsString())
	assert.Equal(t, created.ID, attr(pub1, "messaging.message.id").AsString())
	assert.Equal(t, "process", attr(proc1, "messaging.operation.name").AsString())
	assert.Equal(t, "process", attr(proc1, "messaging.operation.type").AsString())
	assert.Equal(t, created.ID, attr(proc1, "messaging.message.id").AsString())
	assert.Equal(t, "accounts", attr(proc1, "messaging.consumer.group.name").AsString())
	assert.Equal(t, int64(1), attr(proc1, "messaging.nats.message.delivery_attempt").AsInt64())
	assert.Equal(t, "user.created", attr(proc1, "cloudevents.event_type").AsString())
	assert.Equal(t, created.ID, attr(proc2, "messaging.message.conversation_id").AsString(), "the correlation id")
	assert.Equal(t, "handled", attr(proc2, "jetevents.delivery.outcome").AsString())
	assert.Equal(t, codes.Unset, proc2.Status().Code)

	// On the wire: the stored traceparent names the producer span.
	stored, err := lastMsg(t, x.srv.JS, stream, "auth.user.welcomed")
	require.NoError(t, err)
	sc := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": stored.Header.Get(marshaler.HeaderTraceParent)}))
	assert.Equal(t, pub2.SpanContext().SpanID(), sc.SpanID())
}

func TestTracing_dead_letter_keeps_the_trace_of_the_delivery_that_failed(t *testing.T) {
	x := newTraced(t)
	r := x.router(t, 2)
	r.Group("users", "auth.user.*").On("user.created", func(context.Context, *envelope.Event) error {
		return errors.New("database unavailable")
	})
	run(t, r)

	require.NoError(t, x.pub.Publish(ctxT(t), "auth.user.created", event("user.created")))
	procs := x.waitSpan(t, "process auth.user.created", 2)
	require.Len(t, procs, 2)
	pub := x.waitSpan(t, "publish auth.user.created", 1)[0]

	retried, dead := procs[0], procs[1]
	assert.Equal(t, "retried", attr(retried, "jetevents.delivery.outcome").AsString())
	assert.Equal(t, codes.Error, retried.Status().Code)
	assert.Equal(t, "dead_lettered", attr(dead, "jetevents.delivery.outcome").AsString())
	assert.Equal(t, int64(2), attr(dead, "messaging.nats.message.delivery_attempt").AsInt64())
	assert.Equal(t, codes.Error, dead.Status().Code)
	require.Len(t, dead.Events(), 1)
	assert.Equal(t, tracing.EventDeadLettered, dead.Events()[0].Name)
	assert.Equal(t, middleware.ReasonMaxDeliver, attr(dead, "jetevents.delivery.reason").AsString())
	assert.Equal(t, "dlq.auth.user.created", attr(dead, "jetevents.dead_letter.subject").AsString())
	for _, s := range procs {
		assert.Equal(t, pub.SpanContext().SpanID(), s.Parent().SpanID(), "each attempt is a child of the publish")
	}

	// The dead letter carries the original traceparent: the trace that failed.
	var dl *natsjs.RawStreamMsg
	require.Eventually(t, func() bool {
		m, err := lastMsg(t, x.srv.JS, "DLQ", "dlq.auth.user.created")
		dl = m
		return err == nil
	}, 20*time.Second, 10*time.Millisecond)
	orig, err := lastMsg(t, x.srv.JS, stream, "auth.user.created")
	require.NoError(t, err)
	require.NotEmpty(t, orig.Header.Get(marshaler.HeaderTraceParent))
	assert.Equal(t, orig.Header.Get(marshaler.HeaderTraceParent), nats.Header(dl.Header).Get(marshaler.HeaderTraceParent))
	dlCtx := trace.SpanContextFromContext(propagation.TraceContext{}.Extract(context.Background(),
		propagation.MapCarrier{"traceparent": nats.Header(dl.Header).Get(marshaler.HeaderTraceParent)}))
	assert.Equal(t, dead.SpanContext().TraceID(), dlCtx.TraceID(), "the dead letter names the failed trace")
	assert.Equal(t, pub.SpanContext().SpanID(), dlCtx.SpanID())
}

func TestTracing_watermill_path_publishes_a_child_of_the_message_context(t *testing.T) {
	x := newTraced(t)
	ctx, parent := x.tp.Tracer("test").Start(ctxT(t), "command handler")
	wm, err := marshaler.Default().ToMessage(event("user.created"))
	require.NoError(t, err)
	wm.SetContext(ctx)
	require.NoError(t, x.pub.MessagePublisher().Publish("auth.user.created", wm))
	parent.End()

	pub := x.waitSpan(t, "publish auth.user.created", 1)[0]
	assert.Equal(t, parent.SpanContext().SpanID(), pub.Parent().SpanID())
	assert.Equal(t, "batch", attr(pub, "jetevents.publish.mode").AsString())
	stored, err := lastMsg(t, x.srv.JS, stream, "auth.user.created")
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("00-%s-%s-01", pub.SpanContext().TraceID(), pub.SpanContext().SpanID()),
		stored.Header.Get(marshaler.HeaderTraceParent))
}

func TestTracing_default_provider_is_a_no_op_that_adds_no_header(t *testing.T) {
	srv := eventstest.NewServer(t)
	_, err := jetstream.Apply(ctxT(t), srv.JS, jetstream.AuthEventsStream())
	require.NoError(t, err)
	tr := tracing.New(tracing.Config{})
	pub, err := jetstream.NewPublisher(srv.Conn, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{tr.PublishObserver}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = pub.Close() })
	require.NoError(t, pub.Publish(ctxT(t), "auth.user.created", event("user.created")))
	stored, err := lastMsg(t, srv.JS, stream, "auth.user.created")
	require.NoError(t, err)
	assert.Empty(t, stored.Header.Get(marshaler.HeaderTraceParent))
}

// A failed publish ends its span with an error status.
func TestTracing_failed_publish_span_has_an_error_status(t *testing.T) {
	x := newTraced(t)
	require.ErrorIs(t, x.pub.Publish(ctxT(t), "orders.placed", event("order.placed")), transport.ErrNoStream)
	s := x.waitSpan(t, "publish orders.placed", 1)[0]
	assert.Equal(t, codes.Error, s.Status().Code)
	assert.Contains(t, s.Status().Description, "no stream")
}

// lastMsg is the last message stored on subject in streamName.
func lastMsg(t *testing.T, js natsjs.JetStream, streamName, subject string) (*natsjs.RawStreamMsg, error) {
	t.Helper()
	s, err := js.Stream(ctxT(t), streamName)
	if err != nil {
		return nil, err
	}
	return s.GetLastMsgForSubject(ctxT(t), subject)
}
