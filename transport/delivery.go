package transport

import (
	"context"
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
	// Term stops every redelivery of the message, with reason.
	Term(reason string) error
	// InProgress renews the message's lease: the broker restarts its ack
	// timer.
	InProgress() error
}

// Delivery is one delivered message as the router holds it: the message as
// stored, where it came from, and the verdict marks middleware sets before it
// is settled. A transport fills every field it knows; unknown ones are zero.
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
	// Attempt is the 1-based delivery attempt (the broker's delivery count).
	Attempt uint64
	// Pending is how many messages the consumer still had after this one
	// when it was delivered.
	Pending uint64
	// Published is when the broker stored the message.
	Published time.Time
	// Received is when the transport handed the message over (the lease
	// clock of the router starts there).
	Received time.Time

	// Settler settles it. Set by the transport.
	Settler Settler

	// Verdict marks, read when the message is settled.
	nakDelay    time.Duration
	hasNakDelay bool
	term        string
	hasTerm     bool
	// Value is free for the router: it keeps the decoded event there so
	// that nothing decodes a message twice.
	Value any
}

// SetNakDelay asks that a failed delivery be redelivered after d (d <= 0:
// at once) instead of the transport's default.
func (d *Delivery) SetNakDelay(delay time.Duration) {
	d.nakDelay, d.hasNakDelay = max(delay, 0), true
}

// NakDelay returns the delay set by SetNakDelay.
func (d *Delivery) NakDelay() (time.Duration, bool) { return d.nakDelay, d.hasNakDelay }

// SetTerminate asks that a failed delivery be terminated (no redelivery)
// with reason instead of redelivered. It wins over SetNakDelay.
func (d *Delivery) SetTerminate(reason string) {
	if reason == "" {
		reason = "terminated"
	}
	d.term, d.hasTerm = reason, true
}

// Terminate returns the reason set by SetTerminate.
func (d *Delivery) Terminate() (string, bool) { return d.term, d.hasTerm }

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
