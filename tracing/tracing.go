package tracing

import (
	"context"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// InstrumentationName is the name of the tracer this package asks the
// provider for.
const InstrumentationName = "github.com/jetevents/events/tracing"

// Attributes of this package beyond the semantic conventions.
const (
	// AttrDeliveryAttempt is the 1-based delivery attempt of a processed
	// message.
	AttrDeliveryAttempt = attribute.Key("messaging.nats.message.delivery_attempt")
	// AttrStreamSequence is the message's sequence in its stream.
	AttrStreamSequence = attribute.Key("messaging.nats.stream.sequence")
	// AttrStream is the stream that stored (publish) or delivered (process)
	// the message.
	AttrStream = attribute.Key("messaging.nats.stream")
	// AttrPublishMode is sync, async or batch.
	AttrPublishMode = attribute.Key("jetevents.publish.mode")
	// AttrDuplicate is true when the stream already held the event.
	AttrDuplicate = attribute.Key("jetevents.publish.duplicate")
	// AttrOutcome is what became of a delivery: handled, retried,
	// dead_lettered or skipped (transport.Outcome).
	AttrOutcome = attribute.Key("jetevents.delivery.outcome")
	// AttrReason says why: the dead-letter reason, or why a skipped
	// delivery's handler did not run (duplicate, unknown_type).
	AttrReason = attribute.Key("jetevents.delivery.reason")
	// AttrDeadLetterSubject is where a dead letter was stored.
	AttrDeadLetterSubject = attribute.Key("jetevents.dead_letter.subject")
)

// EventDeadLettered is the name of the span event a dead-lettered
// delivery's span records.
const EventDeadLettered = "dead_lettered"

// Config configures a Tracer. Zero fields take the documented defaults.
type Config struct {
	// TracerProvider makes the tracer (sdktrace.NewTracerProvider(...), or
	// otel.GetTracerProvider()). Default: a no-op provider, which records
	// nothing and still passes a received trace context on.
	TracerProvider trace.TracerProvider
	// Propagator extracts the trace context of a received message from its
	// headers. Default propagation.TraceContext{}: W3C traceparent and
	// tracestate, what the marshaler writes (the wire contract).
	Propagator propagation.TextMapPropagator
}

func (c *Config) setDefaults() {
	if c.TracerProvider == nil {
		c.TracerProvider = noop.NewTracerProvider()
	}
	if c.Propagator == nil {
		c.Propagator = propagation.TraceContext{}
	}
}

// Tracer starts the producer and consumer spans of jetevents. Safe for
// concurrent use.
type Tracer struct {
	tracer trace.Tracer
	prop   propagation.TextMapPropagator
}

// New returns a Tracer configured by cfg (nothing in it can be invalid).
func New(cfg Config) *Tracer {
	cfg.setDefaults()
	return &Tracer{
		tracer: cfg.TracerProvider.Tracer(InstrumentationName, trace.WithSchemaURL(semconv.SchemaURL)),
		prop:   cfg.Propagator,
	}
}

// PublishObserver is a jetstream.PublishObserver (pass it to
// jetstream.PublisherConfig.Observers): it starts a producer span per publish,
// child of the publish context's span, returns its context so that the
// event's traceparent names it, and ends it with the outcome (an error
// status for a failed publish).
func (t *Tracer) PublishObserver(ctx context.Context, info jetstream.PublishInfo) (context.Context, func(jetstream.PublishResult)) {
	if ctx == nil {
		ctx = context.Background()
	}
	attrs := make([]attribute.KeyValue, 0, 7)
	attrs = append(attrs,
		semconv.MessagingSystemKey.String("nats"),
		semconv.MessagingDestinationName(info.Subject),
		semconv.MessagingOperationName("publish"),
		semconv.MessagingOperationTypeSend,
		AttrPublishMode.String(string(info.Mode)),
	)
	if info.EventID != "" {
		attrs = append(attrs, semconv.MessagingMessageID(info.EventID))
	}
	if info.EventType != "" {
		attrs = append(attrs, semconv.CloudEventsEventType(info.EventType))
	}
	ctx, span := t.tracer.Start(ctx, "publish "+info.Subject, trace.WithSpanKind(trace.SpanKindProducer), trace.WithAttributes(attrs...))
	return ctx, func(res jetstream.PublishResult) {
		if res.Err != nil {
			span.RecordError(res.Err)
			span.SetStatus(codes.Error, res.Err.Error())
		} else {
			span.SetAttributes(AttrStream.String(res.Stream), AttrStreamSequence.Int64(int64(res.Sequence)), AttrDuplicate.Bool(res.Duplicate))
		}
		span.End()
	}
}

// Middleware starts a consumer span around each delivery, child of the
// trace context its headers carry, and puts it in the message's context for
// the handler. Put it in router.Config.Instrument (Instrument does) so that
// the span covers the whole stack and sees each delivery's verdict; it also
// works in a Watermill router or in Config.Middleware, where it sees each
// attempt's handler error.
func (t *Tracer) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		ctx := msg.Context()
		d := transport.FromContext(ctx)
		var carrier propagation.TextMapCarrier = metadataCarrier(msg.Metadata)
		subject := message.SubscribeTopicFromCtx(ctx)
		if d != nil {
			if d.Header != nil {
				carrier = headerCarrier(d.Header)
			}
			subject = d.Subject
		}
		parent := t.prop.Extract(ctx, carrier)
		// Sized for every attribute below: one allocation.
		attrs := make([]attribute.KeyValue, 0, 11)
		attrs = append(attrs,
			semconv.MessagingSystemKey.String("nats"),
			semconv.MessagingDestinationName(subject),
			semconv.MessagingOperationName("process"),
			semconv.MessagingOperationTypeProcess,
		)
		if id := msg.Metadata.Get(marshaler.MetadataID); id != "" {
			attrs = append(attrs, semconv.MessagingMessageID(id))
		}
		if typ := msg.Metadata.Get(marshaler.MetadataType); typ != "" {
			attrs = append(attrs, semconv.CloudEventsEventType(typ))
		}
		if corr := msg.Metadata.Get(marshaler.MetadataCorrelationID); corr != "" {
			attrs = append(attrs, semconv.MessagingMessageConversationID(corr))
		}
		if d != nil {
			attrs = append(attrs,
				semconv.MessagingConsumerGroupName(d.Consumer),
				AttrStream.String(d.Stream),
				AttrStreamSequence.Int64(int64(d.StreamSeq)),
				AttrDeliveryAttempt.Int64(int64(d.Attempt)),
			)
		} else if name := message.HandlerNameFromCtx(ctx); name != "" {
			attrs = append(attrs, semconv.MessagingConsumerGroupName(name))
		}
		spanCtx, span := t.tracer.Start(parent, "process "+subject, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(attrs...))
		defer span.End()
		msg.SetContext(spanCtx)

		out, err := h(msg)

		switch v := middleware.VerdictOf(msg); {
		case err != nil:
			span.SetAttributes(AttrOutcome.String(transport.Retried.String()))
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		case v.Kind == transport.DeadLettered:
			span.SetAttributes(AttrOutcome.String(v.Kind.String()), AttrReason.String(v.Reason), AttrDeadLetterSubject.String(v.DeadLetterSubject))
			span.AddEvent(EventDeadLettered, trace.WithAttributes(AttrReason.String(v.Reason), AttrDeadLetterSubject.String(v.DeadLetterSubject)))
			status := "dead-lettered (" + v.Reason + ")"
			if v.Err != nil {
				status += ": " + v.Err.Error()
			}
			span.SetStatus(codes.Error, status)
		case v.Kind == transport.Skipped:
			span.SetAttributes(AttrOutcome.String(v.Kind.String()), AttrReason.String(v.Reason))
		default:
			span.SetAttributes(AttrOutcome.String(transport.Handled.String()))
		}
		return out, err
	}
}

// Instrument adds the consumer span to a router configuration before
// router.New (appended to cfg.Instrument: around the whole stack).
func (t *Tracer) Instrument(cfg *router.Config) {
	cfg.Instrument = append(cfg.Instrument, t.Middleware)
}

// headerCarrier reads headers as stored: exact names first (NATS headers are
// case-sensitive; the marshaler writes lowercase), then any case.
type headerCarrier map[string][]string

func (h headerCarrier) Get(key string) string {
	if vs := h[key]; len(vs) > 0 {
		return vs[0]
	}
	for k, vs := range h {
		if len(vs) > 0 && strings.EqualFold(k, key) {
			return vs[0]
		}
	}
	return ""
}

func (h headerCarrier) Set(key, value string) { h[key] = []string{value} }

func (h headerCarrier) Keys() []string {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	return keys
}

// metadataCarrier reads a Watermill message's metadata (a message that did
// not come through a transport: the decoder copies headers into metadata).
type metadataCarrier message.Metadata

func (m metadataCarrier) Get(key string) string {
	if v, ok := m[key]; ok {
		return v
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v
		}
	}
	return ""
}

func (m metadataCarrier) Set(key, value string) { m[key] = value }

func (m metadataCarrier) Keys() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return keys
}
