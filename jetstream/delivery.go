package jetstream

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/transport"
)

// Settlement payloads of the JetStream ack protocol.
var (
	ackAck        = []byte("+ACK")
	ackNak        = []byte("-NAK")
	ackInProgress = []byte("+WPI")
)

// jsDelivery is a delivery with its settlement on the connection: one
// allocation per message holds both.
type jsDelivery struct {
	transport.Delivery
	c     *pullConsumer
	reply string
	// delivered is the server's delivery count (Delivery.Attempt may be
	// set to the exact handler attempt by the router).
	delivered uint64
	// settled is set by the first settlement of an Exclusive consumer's
	// delivery (pinKeeper counts what is unsettled).
	settled atomic.Bool
}

// delivery reads the JetStream metadata from m's reply subject:
// $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending> or the
// newer form with domain and account hash before the stream (and a token
// after pending).
func (c *pullConsumer) delivery(m *nats.Msg, now time.Time) (*jsDelivery, error) {
	var tok [12]string
	n := 0
	s := m.Reply
	for n < len(tok) {
		i := strings.IndexByte(s, '.')
		if i < 0 {
			tok[n] = s
			n++
			break
		}
		tok[n] = s[:i]
		s = s[i+1:]
		n++
	}
	if n < 9 || tok[0] != "$JS" || tok[1] != "ACK" {
		return nil, fmt.Errorf("%w: reply %q is not a JetStream ack subject", transport.ErrSubscribe, m.Reply)
	}
	f := tok[2:]
	if n >= 11 {
		f = tok[4:] // domain and account hash
	}
	delivered, err1 := strconv.ParseUint(f[2], 10, 64)
	sseq, err2 := strconv.ParseUint(f[3], 10, 64)
	cseq, err3 := strconv.ParseUint(f[4], 10, 64)
	ts, err4 := strconv.ParseInt(f[5], 10, 64)
	pending, err5 := strconv.ParseUint(f[6], 10, 64)
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		return nil, fmt.Errorf("%w: reply %q: %w", transport.ErrSubscribe, m.Reply, err)
	}
	d := &jsDelivery{c: c, reply: m.Reply, delivered: max(delivered, 1)}
	d.Delivery = transport.Delivery{
		Subject:     m.Subject,
		Header:      m.Header,
		Data:        m.Data,
		Stream:      c.spec.Stream,
		Consumer:    c.spec.Durable,
		StreamSeq:   sseq,
		ConsumerSeq: cseq,
		Attempt:     max(delivered, 1),
		Pending:     pending,
		Published:   time.Unix(0, ts),
		Received:    now,
	}
	d.Settler = d
	return d, nil
}

// Ack acks; with sync it waits for the server's confirmation.
func (d *jsDelivery) Ack(ctx context.Context, sync bool) error {
	d.c.settled.Add(1)
	d.settle()
	if !sync {
		return d.settleErr("ack", d.c.t.nc.Publish(d.reply, ackAck))
	}
	_, err := d.c.t.nc.RequestWithContext(ctx, d.reply, ackAck)
	return d.settleErr("ack sync", err)
}

// settle counts the first settlement of an Exclusive consumer's delivery.
func (d *jsDelivery) settle() {
	if d.c.spec.Exclusive && d.settled.CompareAndSwap(false, true) {
		d.c.pin.settledOne()
	}
}

// Nak asks for a redelivery after delay.
func (d *jsDelivery) Nak(delay time.Duration) error {
	d.settle()
	if delay <= 0 {
		return d.settleErr("nak", d.c.t.nc.Publish(d.reply, ackNak))
	}
	var buf [48]byte
	b := append(buf[:0], `-NAK {"delay":`...)
	b = strconv.AppendInt(b, delay.Nanoseconds(), 10)
	b = append(b, '}')
	return d.settleErr("nak with delay", d.c.t.nc.Publish(d.reply, b))
}

// InProgress renews the lease. The server's reply to the renewal (on the
// consumer's lease inbox) records it on the delivery (Renewed).
func (d *jsDelivery) InProgress() error {
	if d.c.spec.Exclusive {
		d.c.pin.active()
	}
	return d.settleErr("in progress", d.c.renew(d))
}

// Release records the release in the ledger, then naks after delay. A
// ledger that cannot be written is logged (once) and the nak sent anyway:
// the event must come back, even if this delivery then counts as an
// attempt.
func (d *jsDelivery) Release(delay time.Duration) error {
	// Not the stop's context: releases happen while the consumer stops.
	ctx, cancel := context.WithTimeout(context.Background(), d.c.t.cfg.APITimeout)
	defer cancel()
	if err := d.c.t.releases.add(ctx, d.Stream, d.Consumer, d.StreamSeq); err != nil {
		d.c.t.releases.unavailable(d.c.log, err)
	}
	return d.Nak(delay)
}

// ExactAttempt is the delivery count less the releases in the ledger. On a
// first delivery it asks nothing.
func (d *jsDelivery) ExactAttempt(ctx context.Context) (uint64, error) {
	if d.delivered <= 1 {
		return d.delivered, nil
	}
	n, err := d.c.t.releases.count(ctx, d.Stream, d.Consumer, d.StreamSeq)
	if err != nil {
		return d.delivered, fmt.Errorf("attempt of %s seq %d: %w", d.Stream, d.StreamSeq, err)
	}
	return d.delivered - min(n, d.delivered-1), nil
}

func (d *jsDelivery) settleErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s seq %d: %w", op, d.Stream, d.StreamSeq, err)
}
