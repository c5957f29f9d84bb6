// Package bench measures jetevents' JetStream transport side by side with
// what a user would otherwise write: raw nats.go `jetstream` code that encodes
// the same envelope with the same headers, and watermill-nats v2.1.3's
// `pkg/jetstream` publisher and subscriber.
//
// Four operations are measured, each at two event data sizes (512 B, 4 KiB):
//
//   - sync: one publish at a time, waiting for the stream's ack.
//   - async: every event queued with a bounded window of pending acks, timed
//     until the last ack is in.
//   - batch: events published in batches (100 by default), each batch
//     pipelined and awaited before the next.
//   - consume: a stream pre-filled with N events is consumed through a fresh
//     durable pull consumer and every message is acked (plain ack).
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
