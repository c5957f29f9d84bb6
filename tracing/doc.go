// Package tracing follows events through JetStream with OpenTelemetry: a
// producer span per publish, a consumer span per delivery, and the W3C trace
// context (traceparent, tracestate) carried in between, so that
// publish -> handle -> publish -> handle is one trace.
//
//	tp := sdktrace.NewTracerProvider() // sdktrace "go.opentelemetry.io/otel/sdk/trace", with your exporter
//	tr := tracing.New(tracing.Config{TracerProvider: tp})
//	pub, err := jetstream.NewPublisher(nc, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{tr.PublishObserver}})
//	cfg := router.Config{Stream: "AUTH_EVENTS"}
//	tr.Instrument(&cfg) // the consumer span around every delivery
//
// How the context travels:
//   - Publishing: the marshaler writes traceparent / tracestate from the span
//     context of the publish context (marshaler.RelationsFromContext), on
//     every path that encodes with it: jetstream.Publisher and its Watermill
//     MessagePublisher (so the CQRS event bus), and the in-memory bus of
//     package memory. PublishObserver starts the producer span there, so
//     the header names it; without it the header names the caller's span.
//   - Consuming: Middleware extracts the context from the message's headers
//     as stored (Config.Propagator, W3C by default), starts the consumer span
//     as its child, and sets it on the message's context: the handler gets
//     it, and what the handler publishes is a child of it.
//   - Dead letters: a dead letter keeps the original message's headers, so
//     its traceparent is the one of the trace that failed; the failed
//     delivery's span records the dead-letter reason and subject (event
//     "dead_lettered", status Error). A replayed dead letter continues that
//     trace.
//
// Spans carry the messaging semantic conventions: messaging.system "nats",
// messaging.destination.name (the subject), messaging.operation.name
// (publish, process) and .type (send, process), messaging.message.id (the
// event id), messaging.consumer.group.name (the group's durable),
// messaging.message.conversation_id (the correlation id), the CloudEvents
// event type (cloudevents.event_type; the event id is messaging.message.id),
// and messaging.nats.message.delivery_attempt (named
// after messaging.gcp_pubsub.message.delivery_attempt: the conventions have
// no NATS attributes yet) with the stream sequence.
//
// The default provider is a no-op: nothing is recorded, and a context that
// arrives is still passed on. In the layers of DESIGN.md it sits beside the
// root facade, above router; nothing of this module imports it.
package tracing
