package marshaler_test

import (
	"context"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
)

// spanCtx returns a context carrying a valid span context, as a tracer's
// span or an extracted remote parent would.
func spanCtx(t *testing.T, traceID, spanID string, flags trace.TraceFlags, state string) context.Context {
	t.Helper()
	tid, err := trace.TraceIDFromHex(traceID)
	require.NoError(t, err)
	sid, err := trace.SpanIDFromHex(spanID)
	require.NoError(t, err)
	ts, err := trace.ParseTraceState(state)
	require.NoError(t, err)
	sc := trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: flags, TraceState: ts})
	return trace.ContextWithSpanContext(context.Background(), sc)
}

// reference is what OpenTelemetry's own W3C propagator writes for ctx.
func reference(ctx context.Context) propagation.MapCarrier {
	c := propagation.MapCarrier{}
	propagation.TraceContext{}.Inject(ctx, c)
	return c
}

func TestTraceContext_is_written_exactly_as_the_W3C_propagator_writes_it(t *testing.T) {
	tests := []struct {
		name  string
		flags trace.TraceFlags
		state string
	}{
		{"sampled, no tracestate", trace.FlagsSampled, ""},
		{"not sampled", 0, ""},
		{"sampled and random flags, tracestate", trace.FlagsSampled | trace.FlagsRandom, "vendor=abc,other=x-y"},
		{"unknown flag bits dropped", 0xff, "k=v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := spanCtx(t, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", tt.flags, tt.state)
			want := reference(ctx)

			msg, err := marshaler.Default().EventToNATS("auth.user.created", seedEvent(), marshaler.RelationsFromContext(ctx))
			require.NoError(t, err)
			assert.Equal(t, []string{want.Get("traceparent")}, msg.Header[marshaler.HeaderTraceParent])
			if tt.state == "" {
				assert.NotContains(t, msg.Header, marshaler.HeaderTraceState)
			} else {
				assert.Equal(t, []string{want.Get("tracestate")}, msg.Header[marshaler.HeaderTraceState])
			}

			// The consumer side reads it back into the same span context.
			back := propagation.TraceContext{}.Extract(context.Background(), propagation.MapCarrier{
				"traceparent": msg.Header.Get(marshaler.HeaderTraceParent),
				"tracestate":  msg.Header.Get(marshaler.HeaderTraceState),
			})
			assert.Equal(t, trace.SpanContextFromContext(ctx).TraceID(), trace.SpanContextFromContext(back).TraceID())
			assert.Equal(t, trace.SpanContextFromContext(ctx).SpanID(), trace.SpanContextFromContext(back).SpanID())
		})
	}
}

func TestTraceContext_is_not_sent_without_a_span_in_the_context(t *testing.T) {
	ctx := envelope.WithRelations(context.Background(), "corr-1", "cause-1")
	rel := marshaler.RelationsFromContext(ctx)
	assert.Empty(t, rel.TraceParent)
	assert.Empty(t, rel.TraceState)

	msg, err := marshaler.Default().EventToNATS("auth.user.created", seedEvent(), rel)
	require.NoError(t, err)
	assert.NotContains(t, msg.Header, marshaler.HeaderTraceParent)
	assert.NotContains(t, msg.Header, marshaler.HeaderTraceState)
	assert.Equal(t, "corr-1", msg.Header.Get(marshaler.HeaderCorrelationID))

	tp, ts := marshaler.TraceContext(nil)
	assert.Empty(t, tp+ts)
}

func TestMarshal_trace_context_comes_from_the_context_else_from_the_metadata(t *testing.T) {
	const received = "00-11111111111111111111111111111111-2222222222222222-01"
	ctx := spanCtx(t, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", trace.FlagsSampled, "a=1")
	tests := []struct {
		name      string
		ctx       context.Context
		metadata  map[string]string
		wantTP    string
		wantState string
	}{
		{"forwarded message keeps its trace", context.Background(),
			map[string]string{"traceparent": received, "tracestate": "r=2"}, received, "r=2"},
		{"the publish context wins over the metadata", ctx,
			map[string]string{"traceparent": received, "tracestate": "r=2"}, reference(ctx).Get("traceparent"), "a=1"},
		{"metadata in another case is read once", context.Background(),
			map[string]string{"Traceparent": received}, received, ""},
		{"tracestate alone is not sent", context.Background(),
			map[string]string{"tracestate": "r=2"}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wm, err := marshaler.Default().ToMessage(seedEvent())
			require.NoError(t, err)
			for k, v := range tt.metadata {
				wm.Metadata.Set(k, v)
			}
			wm.SetContext(tt.ctx)
			msg, err := marshaler.Default().Marshal("auth.user.created", wm)
			require.NoError(t, err)
			traceKeys := 0
			for k := range msg.Header {
				if k == "traceparent" || k == "Traceparent" || k == "tracestate" || k == "Tracestate" {
					traceKeys++
				}
			}
			if tt.wantTP == "" {
				assert.Zero(t, traceKeys, "%v", msg.Header)
				return
			}
			assert.Equal(t, []string{tt.wantTP}, msg.Header[marshaler.HeaderTraceParent])
			if tt.wantState != "" {
				assert.Equal(t, []string{tt.wantState}, msg.Header[marshaler.HeaderTraceState])
				assert.Equal(t, 2, traceKeys, "%v", msg.Header)
			} else {
				assert.Equal(t, 1, traceKeys, "%v", msg.Header)
			}
		})
	}
}

func TestDecodeNATS_keeps_the_trace_context_as_metadata(t *testing.T) {
	m := marshaler.Default()
	ctx := spanCtx(t, "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", trace.FlagsSampled, "a=1")
	msg, err := m.EventToNATS("auth.user.created", seedEvent(), marshaler.RelationsFromContext(ctx))
	require.NoError(t, err)
	wm, _, err := m.DecodeNATS(msg.Header, msg.Data)
	require.NoError(t, err)
	assert.Equal(t, msg.Header.Get("traceparent"), wm.Metadata.Get(marshaler.HeaderTraceParent))
	assert.Equal(t, "a=1", wm.Metadata.Get(marshaler.HeaderTraceState))
}

func TestRelations_with_an_unsendable_trace_context_are_refused(t *testing.T) {
	tests := []struct {
		name string
		rel  marshaler.Relations
	}{
		{"CR LF in traceparent", marshaler.Relations{TraceParent: "00-a\r\nX-Evil: 1"}},
		{"non-ASCII tracestate", marshaler.Relations{TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", TraceState: "k=\u00e9"}},
		{"surrounding blanks", marshaler.Relations{TraceParent: " 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := marshaler.Default().EventToNATS("auth.user.created", seedEvent(), tt.rel)
			require.ErrorIs(t, err, marshaler.ErrInvalidMetadata)
		})
	}
	wm := message.NewMessage(testID, []byte(seedPayload))
	wm.Metadata.Set("traceparent", "00-\u00e9")
	_, err := marshaler.Default().Marshal("auth.user.created", wm)
	require.ErrorIs(t, err, marshaler.ErrInvalidMetadata)
}
