package tracing_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/tracing"
)

// The in-memory bus encodes with the marshaler like jetstream.Publisher, so
// the trace context travels through it with no hook on its publisher: the
// consumer spans chain through the handlers' publishes.
func TestTracing_travels_through_the_memory_bus(t *testing.T) {
	bus, err := memory.NewBus(memory.Config{Streams: []memory.StreamConfig{{Name: stream, Subjects: []string{"auth.>"}}}})
	require.NoError(t, err)
	t.Cleanup(func() { _ = bus.Close() })
	pub, err := memory.NewPublisher(bus, memory.PublisherConfig{})
	require.NoError(t, err)

	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	cfg := router.Config{Stream: stream, CloseTimeout: 5 * time.Second}
	tracing.New(tracing.Config{TracerProvider: tp}).Instrument(&cfg)
	r, err := router.NewWithTransport(bus, cfg)
	require.NoError(t, err)
	done := make(chan struct{})
	var once sync.Once
	r.Group("accounts", "auth.user.created").On("user.created", func(ctx context.Context, _ *envelope.Event) error {
		return pub.Publish(ctx, "auth.user.welcomed", event("user.welcomed"))
	})
	r.Group("mailer", "auth.user.welcomed").On("user.welcomed", func(context.Context, *envelope.Event) error {
		once.Do(func() { close(done) })
		return nil
	})
	run(t, r)

	ctx, root := tp.Tracer("test").Start(ctxT(t), "request")
	require.NoError(t, pub.Publish(ctx, "auth.user.created", event("user.created")))
	root.End()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("second handler never ran")
	}
	x := &traced{rec: rec}
	proc1 := x.waitSpan(t, "process auth.user.created", 1)[0]
	proc2 := x.waitSpan(t, "process auth.user.welcomed", 1)[0]
	rootSpan := x.waitSpan(t, "request", 1)[0]
	assert.Equal(t, rootSpan.SpanContext().TraceID(), proc2.SpanContext().TraceID(), "one trace")
	assert.Equal(t, rootSpan.SpanContext().SpanID(), proc1.Parent().SpanID())
	assert.Equal(t, proc1.SpanContext().SpanID(), proc2.Parent().SpanID())
	stored := bus.Messages("auth.user.welcomed")
	require.Len(t, stored, 1)
	assert.Contains(t, stored[0].Header.Get(marshaler.HeaderTraceParent), proc1.SpanContext().SpanID().String())
}
