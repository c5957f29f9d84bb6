// Package bench measures jetevents' JetStream transport and router side by
// side with what a user would otherwise write: raw nats.go `jetstream` code
// that encodes the same envelope with the same headers (or, to consume,
// decodes it with encoding/json), and watermill-nats v2.1.3's `pkg/jetstream`
// publisher, subscriber and, in a Watermill message.Router, router.
//
// Five operations are measured, each at two event data sizes (512 B, 4 KiB):
//
//   - sync: one publish at a time, waiting for the stream's ack.
//   - async: every event queued with a bounded window of pending acks, timed
//     until the last ack is in.
//   - batch: events published in batches (100 by default), each batch
//     pipelined and awaited before the next.
//   - consume: the transport alone. A stream pre-filled with N events is
//     consumed through a fresh durable pull consumer and every message is
//     acked (plain ack); the baseline (raw-our-decoder) decodes with this
//     library's envelope decoder, as the Subscriber does, and the Subscriber
//     rows have no handler. It compares transports, not what a user runs.
//   - router: end to end, what a service runs. The baseline
//     (raw-consume-json) is a user's hand-written consumer: Consume (pull
//     batch 500), encoding/json into a struct, Ack. The router rows use the
//     router's public API only, with a typed handler (router.Handle), from
//     the events already stored until the handler has seen the last one.
//
// Each row reports msgs/s, the ratio to its operation's baseline, the speed
// targets it is held to (Targets), process CPU time per event and heap
// allocations per event (both process-wide: client and embedded server).
// Soak runs the router-default row's router for a million events and samples
// the RSS, to show it stays flat.
//
// Every variant of an operation starts from the same pre-built
// *envelope.Event values (unique ids, shared data) and produces the same wire
// format (the envelope's JSON plus the contract's headers, Nats-Msg-Id
// included, so the server does the same de-duplication work for each).
//
// The harness (Env, Variant, Trial) is shared by the Go benchmarks in this
// package and by the bench command (cmd/jetevents-bench). One embedded
// JetStream server (file store in a temporary directory) serves a whole run;
// each trial gets its own stream and its own client connection, and every
// trial verifies afterwards that all N messages were stored or consumed, so a
// broken fixture cannot silently measure nothing.
//
// The package imports nats-server (through embedded); it is a tool, never
// imported by the library.
package bench
