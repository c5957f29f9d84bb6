package transport

import (
	"context"
	"sync/atomic"
	"time"
)

// Settler settles one delivered message on its broker. Implementations are
// safe for concurrent use: the router's lease renewal calls InProgress from
// another goroutine than the one that settles.
type Settler interface {
	// Ack marks the message handled. With sync it waits for the broker's
	// confirmation (bounded by ctx).
	Ack(ctx context.Context, sync bool) error
	// Nak asks for a redelivery after delay (at once when delay <= 0).
	Nak(delay time.Duration) error
	// InProgress renews the message's lease: the broker restarts its ack
	// timer. When the broker confirms the renewal, the transport records it
	// on the Delivery (Renewed), so that LeaseStart says how long the lease
	// is known to last.
	InProgress() error
	// Release hands the message back unhandled: the broker redelivers it
	// after delay (at once when delay <= 0), and this delivery does not
	// count as a handler attempt (the router releases what it queued and
	// never started when it stops, and what a blocked key holds beyond its
	// share). JetStream counts every delivery, so its transport records the
	// release in a ledger that ExactAttempt reads.
	Release(delay time.Duration) error
	// ExactAttempt returns the exact 1-based handler attempt of this delivery:
	// the broker's deliveries less the ones released unhandled. It may ask
	// the broker (JetStream's release ledger), so callers ask only when
	// Delivery.Attempt, an upper bound, reaches the attempt limit.
	ExactAttempt(ctx context.Context) (uint64, error)
}

// Delivery is one delivered message as the router holds it: the message as
// stored, where it came from, and the verdict the steps handling it
// decided. A transport fills every field it knows; unknown ones are zero.
// Only the goroutine handling the message writes the marks.
type Delivery struct {
	// Subject the message was published on.
	Subject string
	// Header and Data are the message as stored (headers and payload). Do
	// not modify them: the dead-letter path republishes them as they are.
	Header map[string][]string
	Data   []byte

	// Stream and Consumer that delivered it; StreamSeq is its sequence in
	// the stream, ConsumerSeq the sequence of this delivery.
	Stream, Consumer       string
	StreamSeq, ConsumerSeq uint64
	// Attempt is the 1-based handler attempt as far as the transport knows
	// on receipt: the broker's delivery count less the releases it knows of
	// without asking the broker. It is exact on the memory bus and an upper
	// bound on JetStream (whose releases are in a ledger):
	// Settler.ExactAttempt gives the exact value.
	Attempt uint64
	// Pending is how many messages the consumer still had after this one
	// when it was delivered.
	Pending uint64
	// Published is when the broker stored the message.
	Published time.Time
	// Received is when the transport handed the message over: the start of
	// its first lease (see LeaseStart).
	Received time.Time
	// renewed is the send time of the latest renewal the broker confirmed.
	renewed atomic.Pointer[time.Time]

	// Settler settles it. Set by the transport.
	Settler Settler

	// Verdict is what the steps that handled the message decided so far
	// (the retry policy, the dead-letter step, idempotency, the
	// dispatcher): the last one to decide sets it. Only the goroutine
	// handling the message writes it.
	Verdict Verdict

	// Key is the order key a keyed group read from the message ("" in an
	// unordered group): its events run one at a time, in stream order.
	Key string

	// Value is free for the router: it keeps the decoded event there so
	// that nothing decodes a message twice.
	Value any
}

// Renewed records that the broker confirmed a lease renewal sent at t
// (transports call it). A renewal older than the latest one changes nothing.
func (d *Delivery) Renewed(t time.Time) {
	for {
		old := d.renewed.Load()
		if old != nil && !t.After(*old) {
			return
		}
		if d.renewed.CompareAndSwap(old, &t) {
			return
		}
	}
}

// LeaseStart is when the lease known to be held on the message started:
// the send time of the latest renewal the broker confirmed, else Received.
// The broker redelivers the message to another consumer AckWait after it,
// so a process that was frozen longer than that holds it no more.
func (d *Delivery) LeaseStart() time.Time {
	if t := d.renewed.Load(); t != nil && t.After(d.Received) {
		return *t
	}
	return d.Received
}

type deliveryKey struct{}

// NewContext returns ctx carrying d, for FromContext.
func NewContext(ctx context.Context, d *Delivery) context.Context {
	return context.WithValue(ctx, deliveryKey{}, d)
}

// FromContext returns the Delivery of the message whose context is ctx (or
// derives from it), or nil outside a transport's delivery.
func FromContext(ctx context.Context) *Delivery {
	if ctx == nil {
		return nil
	}
	d, _ := ctx.Value(deliveryKey{}).(*Delivery)
	return d
}
