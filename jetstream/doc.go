// Package jetstream is the NATS JetStream transport of jetevents: connection
// helpers, streams and consumers declared as code, a publisher and a durable
// pull subscriber, both usable as Watermill message.Publisher /
// message.Subscriber.
//
// Layers (the README's package map): it encodes and decodes through package marshaler
// (the wire contract) and validates through package envelope; the router, the
// middleware and the root facade build on it. It imports nats.go's own
// jetstream package as natsjs, and never nats-server.
//
// Files by concern:
//   - connect.go: Connect and ConnectOptions, production defaults (reconnect
//     forever with backoff and jitter, reconnect buffer, logged connection
//     events) and auth options (creds, NKey, user/password, token, TLS).
//   - spec.go, provision.go: StreamSpec, ConsumerSpec, LoadSpecs; Apply (the
//     operator's: creates or updates idempotently and reports what changed)
//     and Ensure (a service's: creates what is missing, never changes what
//     exists, warns where it differs); AuthEventsStream and DeadLetterStream.
//   - publisher*.go: Publisher (Publish, PublishAck, PublishAsync,
//     PublishBatch, Flush, Close) and MessagePublisher (Watermill).
//   - publish_options.go: the options of a publish (At, After, Cron, Every,
//     InTimeZone, TTL, ExpectLastSequence: transport.PublishOption) and the
//     typed refusals of the stream settings they need.
//   - schedule.go: CancelSchedule (JetStream message schedules, ADR-51);
//     schedule_list.go: ListSchedules and CancelScheduleAt (the pending
//     schedules of a stream, for operators).
//   - consumer_state.go: ConsumerStalled, ConsumerLastActive (a consumer's
//     state read from its info, as jetevents consumers and the console show it).
//   - batch_atomic.go: PublishAtomic (all-or-none batches with an expected
//     last sequence, ADR-50).
//   - subscriber*.go, metadata.go: the durable pull Subscriber.
//   - errors.go: sentinels, matched with errors.Is.
//
// Ownership: nothing here closes a *nats.Conn it did not create; Connect's
// caller owns the connection it returns.
package jetstream
