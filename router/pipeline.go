package router

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/internal/consume"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// groupRun is one group while the router runs: a consume.Group (the
// module's one pipeline: queue under credit, workers, leases, settlement by
// verdict, stop) whose handler decodes each delivery once and runs it
// through the group's middleware stack.
type groupRun struct {
	r       *Router
	g       *Group
	handler message.HandlerFunc
	idem    *middleware.Idempotency // nil when off: claims are prefetched on arrival
	dec     *marshaler.Marshaler
	run     *consume.Group
	log     watermill.LoggerAdapter
	// spec is the durable it runs: the group's, or one unit of a
	// partitioned group (partitions.go), whose key is checked by unitKey.
	spec    transport.ConsumerSpec
	unitKey func(d *transport.Delivery, key string)
}

// carrier is what the router keeps on a delivery (Delivery.Value): the
// Watermill message and the event decoded once on receipt.
type carrier struct {
	msg   *message.Message
	event *envelope.Event
	err   error // the decode failure, when event is nil
}

func carrierOf(msg *message.Message) *carrier {
	d := transport.FromContext(msg.Context())
	if d == nil {
		return nil
	}
	c, _ := d.Value.(*carrier)
	return c
}

func newGroupRun(r *Router, g *Group, h message.HandlerFunc, idem *middleware.Idempotency) *groupRun {
	return &groupRun{
		r:       r,
		g:       g,
		handler: r.instrument(h),
		idem:    idem,
		dec:     decoderFor(g),
		log:     r.cfg.Logger.With(watermill.LogFields{"group": g.cfg.Durable, "stream": r.cfg.Stream}),
		spec:    g.cfg.consumerSpec(r.cfg.Stream),
	}
}

// start binds the durable and starts the group's pipeline.
func (gr *groupRun) start(ctx context.Context) error {
	cfg := consume.Config{
		Spec:         gr.spec,
		Concurrency:  gr.g.cfg.Concurrency,
		FetchBatch:   gr.g.cfg.FetchBatch,
		AttemptLimit: gr.g.cfg.MaxDeliver,
		AckSync:      gr.r.cfg.AckSync,
		Logger:       gr.log,
		OnExpired:    func(*transport.Delivery) { gr.r.stats.leaseExpired.Add(1) },
	}
	if gr.idem != nil {
		// The claim travels while the message waits its turn; started
		// before a worker can see the message, so the worker always finds
		// it. A delivery that never reaches the Idempotency middleware
		// (released, past MaxDeliver, a remembered verdict, a user
		// middleware that short-circuited) leaves no prefetch behind.
		cfg.OnQueued, cfg.OnDone = gr.idem.Prefetch, gr.idem.Discard
	}
	if gr.g.cfg.OrderKey != nil {
		cfg.Key = gr.orderKeyOf
	}
	run, err := consume.Start(ctx, gr.r.tr, cfg, gr.handle)
	if err != nil {
		return err
	}
	gr.run = run
	return nil
}

// decodeOnce decodes d once and keeps the result on it (Delivery.Value).
// An unordered group decodes in the worker that handles it (measured:
// decoding on the transport's goroutine as messages arrive saves no time on
// 2 cores, and would decode messages a stop hands back unhandled); a keyed
// group decodes as the message arrives, to read its order key.
func (gr *groupRun) decodeOnce(d *transport.Delivery) *carrier {
	if c, ok := d.Value.(*carrier); ok {
		return c
	}
	c := &carrier{}
	msg, e, err := gr.dec.DecodeNATS(d.Header, d.Data)
	if err != nil {
		gr.r.stats.undecodable.Add(1)
		msg = message.NewMessage("", d.Data)
		c.err = fmt.Errorf("subject %s, stream %s seq %d: %w", d.Subject, d.Stream, d.StreamSeq, err)
	}
	c.msg, c.event = msg, e
	d.Value = c
	return c
}

// decode is d's message, decoded once, in the context of its handling.
func (gr *groupRun) decode(ctx context.Context, d *transport.Delivery) *message.Message {
	msg := gr.decodeOnce(d).msg
	msg.SetContext(transport.NewContext(ctx, d))
	return msg
}

// handle runs the decoded d through the group's stack and returns its
// verdict: the one the stack decided (Retry, the dead-letter step,
// Idempotency, dispatch), Handled when it decided nothing and returned nil.
// An error without a verdict (a user or Instrument middleware's own) is a
// retry on the router's backoff.
func (gr *groupRun) handle(ctx context.Context, d *transport.Delivery) transport.Verdict {
	d.Verdict = transport.Verdict{}
	msg := gr.decode(ctx, d)
	_, err := gr.handler(msg)
	v := final(d.Verdict, err)
	if v.Kind == transport.Retried && d.Verdict.Kind != transport.Retried {
		v.Delay = gr.r.cfg.Backoff.Delay(d.Attempt)
	}
	switch v.Kind {
	case transport.Retried:
		gr.r.stats.retried.Add(1)
	case transport.DeadLettered:
		gr.r.stats.deadLettered.Add(1)
	}
	return v
}
