// Package middleware holds the Watermill message.HandlerMiddlewares of
// jetevents and the helpers they share: broker-side retry (retry.go, with the
// schedule in backoff.go), the dead-letter path (poison.go, verdicts in
// deadletter.go, permanent errors in permanent.go), correlation and causation ids
// (correlation.go), idempotency with a JetStream KV or in-memory store
// (idempotency.go, store_kv.go, store_memory.go), a context-restoring timeout
// (timeout.go) and event logging (logging.go).
//
// In the package map of the README the package sits under router and above
// transport, marshaler and envelope: it reads the delivery view a transport
// puts in each message's context (transport.Delivery: where the message came
// from, its attempt, its verdict marks; transport.go is the only file that
// touches it) and is wired by the router in this order, outermost first:
//
//	Correlation -> Logging -> DeadLetterer (poison) -> Retry -> Idempotency -> Timeout -> Recoverer -> handler
//
// Correlation is outermost so that every log line and every published event
// carries the correlation id. Logging sees the final outcome of a delivery
// (handled, retried, dead-lettered, dead-letter failed). The dead-letter
// path sits outside the retry decision because Retry only turns an error into
// a verdict ("dead-letter this, reason max_deliver"): publishing the verdict
// is the poison middleware's job, and a verdict can also come from the router
// (schema_version) or the handler (Permanent). Idempotency is inside Retry so
// that a busy claim is retried like any error, and outside Timeout so that
// recording a processed id is not cut short by the handler's deadline.
// Watermill's Recoverer goes innermost, next to the handler, so that a panic
// becomes an ordinary error that every middleware above sees: it is retried
// and finally dead-lettered like any other failure.
package middleware
