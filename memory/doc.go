// Package memory is an in-process message broker with JetStream's consumer
// semantics, for tests that must run a service's handlers, the router and its
// whole middleware stack without a NATS server.
//
// A Bus holds streams (subjects with the '*' and '>' wildcards, per-stream
// de-duplication by Nats-Msg-Id) and durable consumers on them. It implements
// transport.Transport, so router.NewWithTransport(bus, cfg) runs the same
// router as production: explicit ack, nak with a delay, term, per-message
// delivery attempts (Delivery.Attempt), AckWait redelivery renewed by
// InProgress, MaxAckPending, credit (a consumer never delivers more than it
// was credited), start positions, several Consume calls sharing one durable
// (the work is split between them), consumer state (pending, ack pending,
// redelivered) and a dead-letter publish that stores into the bus, so dead
// letters are read back with their headers (bus.Messages("dlq.>")). Messages
// are stored as bytes and headers, never as Go values: a handler sees exactly
// what it would see from JetStream, and a context does not travel with them.
//
// On top of the bus: Publisher, with the method set of jetstream.Publisher
// (Publish, PublishAck, PublishAsync, PublishBatch, PublishAtomic,
// CancelSchedule, Flush, Close), encodes events with the marshaler exactly
// as jetstream.Publisher does (marshaler.EventToNATS, with the correlation
// and causation ids of the context); MessagePublisher and
// Subscriber are a Watermill message.Publisher and message.Subscriber (for
// Watermill's router, its CQRS event bus and its conformance suite).
//
// Why not Watermill's gochannel: it has no ack wait, no delivery attempts, no
// nak delay and no durable consumers (a Nack is redelivered at once, forever,
// to the same subscriber), so retry, dead-lettering at MaxDeliver, leases and
// consumer groups cannot be tested on it; and it hands the published
// *message.Message itself to subscribers, so a test passes on it that fails
// on the wire.
//
// Time: with the default Clock (the system clock) nak delays and AckWait
// expiries are driven by one timer goroutine that the Bus owns. Any other
// envelope.Clock is a manual clock (eventstest.NewClock): the bus then sets no
// timer at all and re-reads the clock only when told to, with Tick, so a test
// decides exactly when a delayed redelivery becomes due. Close stops every
// goroutine of the bus.
//
// Schedules, TTL, atomic batches and expected sequences behave as on
// JetStream (README: "Scheduled and delayed events", "Per-event TTL",
// "Atomic batches"), against the same stream settings
// (StreamConfig.AllowMsgSchedules, AllowMsgTTL, AllowAtomicPublish) and with
// the same errors and stored headers: Publisher takes the jetstream
// publisher's options (At, After, Cron, Every, InTimeZone, TTL,
// ExpectLastSequence), has PublishAtomic and CancelSchedule, and Bus.Publish
// reads the JetStream headers they stand for. Schedules fire and TTLs expire
// on the bus's clock: with a manual clock on the Tick after the clock passed
// their time, so a test of "reminder sent after 24 h" advances the clock 24
// hours, ticks, and runs in milliseconds. A recurring schedule whose times
// the clock jumped over fires once, as JetStream does after a restart. What
// the bus does not implement is refused with transport.ErrUnsupported rather than
// ignored: the Nats-Schedule-Source (sampling) and Nats-Schedule-Rollup
// schedule headers, Nats-Rollup, Nats-Expected-Last-Msg-Id, counters
// (Nats-Incr), Nats-Required-Api-Level, and batch headers on a plain
// publish (atomic batches go through PublishAtomic); none of them is a
// publish option of this module.
//
// Pausing a durable (Bus.Pause and Resume, transport.Pauser, which the
// router's Pause and Resume use) behaves as JetStream's consumer pause: the
// durable delivers nothing, first deliveries nor redeliveries, until the
// bus's clock passes the deadline, then resumes by itself (with a manual
// clock, on the first Tick after it); its consumers stay active, and
// ConsumerState.PausedUntil says until when.
//
// In the package map of the README it sits beside jetstream, under router: it
// imports envelope, marshaler and transport, never nats-server.
package memory
