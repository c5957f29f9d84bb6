package transport

import "github.com/jetevents/events/envelope"

// AtomicEvent is one event of an atomic batch (PublishAtomic of the
// jetstream and memory publishers) and the subject it is stored on. Every
// event of a batch must be stored by the same stream.
type AtomicEvent struct {
	Subject string
	Event   *envelope.Event
}

// AtomicAck confirms a committed atomic batch: its events were stored at
// the contiguous sequences FirstSequence..LastSequence of Stream, in the
// batch's order, and nothing else was stored between them.
type AtomicAck struct {
	Stream                      string
	FirstSequence, LastSequence uint64
	// Count is the number of events stored.
	Count int
	// BatchID is the batch's Nats-Batch-Id.
	BatchID string
	// Domain of the stream, if any (JetStream only).
	Domain string
}
