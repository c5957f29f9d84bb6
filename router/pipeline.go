package router

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/internal/logs"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// groupRun is one group while the router runs: its consumer delivers into a
// FIFO queue under credit (at most FetchBatch messages held), Concurrency
// workers take messages from it and run each through decode -> stack ->
// settle on their own goroutine, and a lease loop renews every held message
// (queued or in a handler) until it is settled. There is one handoff per
// message (the consumer's goroutine to a worker) and no goroutine per
// message.
type groupRun struct {
	r       *Router
	g       *Group
	handler message.HandlerFunc
	idem    *middleware.Idempotency // nil when off: claims are prefetched on arrival
	dec     *marshaler.Marshaler
	cons    transport.Consumer
	log     watermill.LoggerAdapter

	// hctx is the parent of every handler's context: the values of Run's
	// ctx without its cancellation (a stop must not cut handlers short), cut
	// at the close deadline with a cause matching jetstream.ErrCloseTimeout.
	hctx       context.Context
	hctxCancel context.CancelCauseFunc

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*transport.Delivery // FIFO ring
	head, n  int
	slots    []slot // one per worker: the message in its handler
	stopping bool

	workers    sync.WaitGroup
	leaseEnd   chan struct{}
	leased     sync.WaitGroup
	stopped    chan struct{}
	intakeOnce sync.Once
	stopOnce   sync.Once
	stopErrs   []error

	state        atomic.Value // transport.State
	stateErr     atomic.Value // errHolder
	lastProgress atomic.Int64 // UnixNano of the last settlement
	stalls       atomic.Uint64

	// leaseLimit is how long a held message is taken to be the group's
	// after its lease started: AckWait less a margin for the time the
	// server's timer ran before the message reached the router.
	leaseLimit time.Duration
}

type slot struct {
	d         *transport.Delivery
	started   time.Time
	abandoned bool // nacked at the close deadline: the worker must not settle it
}

type errHolder struct{ err error }

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

func newGroupRun(r *Router, g *Group, h message.HandlerFunc, ctx context.Context) *groupRun {
	hctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	gr := &groupRun{
		r:          r,
		g:          g,
		handler:    r.instrument(h),
		dec:        decoderFor(g),
		log:        r.cfg.Logger.With(watermill.LogFields{"group": g.cfg.Durable, "stream": r.cfg.Stream}),
		hctx:       hctx,
		hctxCancel: cancel,
		queue:      make([]*transport.Delivery, g.cfg.FetchBatch),
		slots:      make([]slot, g.cfg.Concurrency),
		leaseEnd:   make(chan struct{}),
		stopped:    make(chan struct{}),
		leaseLimit: g.cfg.AckWait - g.cfg.AckWait/10,
	}
	gr.cond = sync.NewCond(&gr.mu)
	gr.state.Store(transport.StateActive)
	gr.stateErr.Store(errHolder{})
	return gr
}

// start binds the durable, then starts the workers and the lease loop and
// gives the consumer its credit.
func (gr *groupRun) start(ctx context.Context) error {
	spec := gr.g.cfg.consumerSpec(gr.r.cfg.Stream)
	spec.OnStatus = gr.onStatus
	cons, err := gr.r.tr.Consume(ctx, spec, gr.sink)
	if err != nil {
		return err
	}
	gr.cons = cons
	gr.lastProgress.Store(time.Now().UnixNano())
	for i := range gr.slots {
		gr.workers.Add(1)
		go gr.work(i)
	}
	gr.leased.Add(1)
	go gr.lease()
	cons.Credit(gr.g.cfg.FetchBatch)
	if err := cons.Err(); err != nil {
		// Ended at once (the first pull was refused): fail the start.
		gr.stop()
		return err
	}
	return nil
}

func (gr *groupRun) onStatus(s transport.Status) {
	if s.State == transport.StateStalled {
		gr.stalls.Add(1)
	}
	gr.state.Store(s.State)
	gr.stateErr.Store(errHolder{s.Err})
}

// sink queues a delivered message (the consumer's goroutine). While the
// group stops, it still queues: stopIntake releases the queue once the
// consumer stopped, so that nothing is handed back while the consumer
// could deliver it again at once.
func (gr *groupRun) sink(d *transport.Delivery) {
	if gr.idem != nil {
		// The claim travels while the message waits its turn; started
		// before a worker can see the message, so the worker always finds
		// it.
		gr.idem.Prefetch(d)
	}
	gr.mu.Lock()
	if gr.n == len(gr.queue) {
		// More than the credit arrived (a pull thought lost came back after
		// all): grow rather than refuse; it is leased like the rest.
		q := make([]*transport.Delivery, 2*len(gr.queue))
		for i := range gr.n {
			q[i] = gr.queue[(gr.head+i)%len(gr.queue)]
		}
		gr.queue, gr.head = q, 0
	}
	gr.queue[(gr.head+gr.n)%len(gr.queue)] = d
	gr.n++
	gr.mu.Unlock()
	gr.cond.Signal()
}

// work is one worker: take the oldest queued message, check that its lease
// is still the group's, handle it, settle it, give the credit back.
func (gr *groupRun) work(i int) {
	defer gr.workers.Done()
	for {
		gr.mu.Lock()
		for gr.n == 0 && !gr.stopping {
			gr.cond.Wait()
		}
		if gr.stopping {
			gr.mu.Unlock()
			return
		}
		d := gr.queue[gr.head]
		gr.queue[gr.head] = nil
		gr.head = (gr.head + 1) % len(gr.queue)
		gr.n--
		now := time.Now()
		held := gr.leaseHeld(d, now)
		if held {
			gr.slots[i] = slot{d: d, started: now}
		}
		gr.mu.Unlock()

		if !held {
			gr.expired(d, now)
			gr.cons.Credit(1)
			continue
		}
		gr.resolveAttempt(d)
		err := gr.handle(d)
		if gr.idem != nil {
			// A delivery that never reached the Idempotency middleware
			// (past MaxDeliver, a remembered verdict, a user middleware
			// that short-circuited) leaves no prefetch behind.
			gr.idem.Discard(d)
		}

		gr.mu.Lock()
		abandoned := gr.slots[i].abandoned
		gr.slots[i] = slot{}
		gr.mu.Unlock()
		if !abandoned {
			gr.settle(d, err)
		}
		gr.lastProgress.Store(time.Now().UnixNano())
		gr.cons.Credit(1)
	}
}

// leaseHeld reports whether the lease on d is still the group's at now:
// less than leaseLimit since it started (the latest renewal the broker
// confirmed). Both clocks are read: the monotonic one stops while a
// machine is suspended (a laptop lid, a VM migration), the wall clock does
// not, and the broker's timer ran all along.
func (gr *groupRun) leaseHeld(d *transport.Delivery, now time.Time) bool {
	start := d.LeaseStart()
	age := max(now.Sub(start), now.Round(0).Sub(start.Round(0)))
	return age < gr.leaseLimit
}

// expired drops a held message whose lease ran out before its handler
// started (the process was frozen longer than AckWait: a GC pause, a
// stopped process, a suspended machine): the broker has redelivered it,
// maybe to another process, so handling it now would be a duplicate. It is
// neither handled nor settled here.
func (gr *groupRun) expired(d *transport.Delivery, now time.Time) {
	gr.r.stats.leaseExpired.Add(1)
	if gr.idem != nil {
		gr.idem.Discard(d)
	}
	logs.Warn(gr.log, "Held event's lease ran out before its handler started (was the process frozen?): not handled here, the broker redelivers it", nil,
		watermill.LogFields{"subject": d.Subject, "stream_seq": d.StreamSeq, "held_for": now.Sub(d.LeaseStart()).Round(time.Millisecond).String()})
}

// resolveAttempt makes d.Attempt exact when the transport's upper bound
// reaches the attempt limit, so that deliveries released unhandled (a
// stop) are not read as handler attempts. Below the limit the bound is
// enough: the handler runs either way.
func (gr *groupRun) resolveAttempt(d *transport.Delivery) {
	if d.Attempt <= 1 || d.Attempt < uint64(gr.g.cfg.MaxDeliver) {
		return
	}
	ctx, cancel := context.WithTimeout(gr.hctx, gr.leaseLimit/3)
	defer cancel()
	exact, err := d.Settler.ExactAttempt(ctx)
	if err != nil {
		logs.Warn(gr.log, "Cannot read the event's releases: every delivery counts as a handler attempt", err,
			watermill.LogFields{"subject": d.Subject, "stream_seq": d.StreamSeq})
	}
	d.Attempt = exact
}

// decode decodes d once, in the worker that handles it (measured: decoding
// on the transport's goroutine as messages arrive saves no time on 2 cores,
// and would decode messages a stop hands back unhandled).
func (gr *groupRun) decode(d *transport.Delivery) {
	c := &carrier{}
	msg, e, err := gr.dec.DecodeNATS(d.Header, d.Data)
	if err != nil {
		gr.r.stats.undecodable.Add(1)
		msg = message.NewMessage("", d.Data)
		c.err = fmt.Errorf("subject %s, stream %s seq %d: %w", d.Subject, d.Stream, d.StreamSeq, err)
	}
	c.msg, c.event = msg, e
	d.Value = c
	msg.SetContext(transport.NewContext(gr.hctx, d))
}

// handle runs the decoded d through the group's stack.
func (gr *groupRun) handle(d *transport.Delivery) error {
	gr.decode(d)
	msg := d.Value.(*carrier).msg
	_, err := gr.handler(msg)
	if err == nil && msg.Metadata.Get(middleware.MetadataDeadLetterReason) != "" {
		gr.r.stats.deadLettered.Add(1)
	}
	return err
}

// settle acks a handled (or dead-lettered) message, or naks / terminates a
// failed one as the middleware marked it. A failed message whose lease ran
// out meanwhile is left alone: the broker gave it to another consumer, and
// a nak now would redeliver that one's copy too. (An ack is sent either
// way: the work is done, and it spares the other copy.)
func (gr *groupRun) settle(d *transport.Delivery, err error) {
	if err == nil {
		if !gr.r.cfg.AckSync {
			gr.settleErr(d.Settler.Ack(context.Background(), false), "ack", d)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), gr.g.cfg.AckWait)
		gr.settleErr(d.Settler.Ack(ctx, true), "ack sync", d)
		cancel()
		return
	}
	if !gr.leaseHeld(d, time.Now()) {
		gr.r.stats.leaseExpired.Add(1)
		logs.Warn(gr.log, "Failed event's lease ran out while its handler ran: left to its redelivery", nil,
			watermill.LogFields{"subject": d.Subject, "stream_seq": d.StreamSeq})
		return
	}
	gr.r.stats.retried.Add(1)
	if reason, ok := d.Terminate(); ok {
		gr.settleErr(d.Settler.Term(reason), "term", d)
		return
	}
	delay, ok := d.NakDelay()
	if !ok {
		delay = gr.r.cfg.Backoff.Delay(d.Attempt)
	}
	gr.settleErr(d.Settler.Nak(delay), "nak", d)
}

// settleErr logs a settlement that could not be sent: there is no caller to
// return it to, and the broker redelivers an unsettled message after
// AckWait, so it is not lost.
func (gr *groupRun) settleErr(err error, op string, d *transport.Delivery) {
	if err != nil {
		gr.log.Error("Cannot settle message; the broker redelivers it after AckWait", err,
			watermill.LogFields{"op": op, "subject": d.Subject, "stream_seq": d.StreamSeq})
	}
}

// lease renews every held message whose lease is older than a third of
// AckWait, every third of AckWait, until the group stops and its handlers
// are done. A message whose lease already ran out is not renewed: the
// broker gave it to another consumer, and a renewal would keep that one's
// lease alive as if it were ours.
func (gr *groupRun) lease() {
	defer gr.leased.Done()
	every := gr.g.cfg.AckWait / 3
	t := time.NewTicker(every)
	defer t.Stop()
	var held []*transport.Delivery
	for {
		select {
		case <-gr.leaseEnd:
			return
		case now := <-t.C:
			now = time.Now() // the tick may have waited (a frozen process)
			held = held[:0]
			due := func(d *transport.Delivery) bool {
				return now.Sub(d.LeaseStart()) >= every && gr.leaseHeld(d, now)
			}
			gr.mu.Lock()
			for i := range gr.n {
				if d := gr.queue[(gr.head+i)%len(gr.queue)]; due(d) {
					held = append(held, d)
				}
			}
			for _, s := range gr.slots {
				if s.d != nil && !s.abandoned && due(s.d) {
					held = append(held, s.d)
				}
			}
			gr.mu.Unlock()
			for _, d := range held {
				gr.settleErr(d.Settler.InProgress(), "in progress", d)
			}
		}
	}
}

// stop shuts the group down alone (idempotent): see stopIntake and drain.
func (gr *groupRun) stop() []error {
	gr.stopIntake()
	ctx, cancel := context.WithTimeout(context.Background(), gr.r.cfg.CloseTimeout)
	defer cancel()
	return gr.drain(ctx)
}

// stopIntake ends the intake at once (idempotent): the workers take no new
// message, the consumer is stopped (what reaches it meanwhile the
// transport releases), then the queued messages, which no handler saw, are
// released: redelivered at once, to this group's other processes or after a
// restart, and not counted as handler attempts. Messages whose lease ran
// out meanwhile are not the group's to release. Run calls it for every
// group before draining any, so that no group starts new handlers while
// another drains.
func (gr *groupRun) stopIntake() {
	gr.intakeOnce.Do(func() {
		gr.mu.Lock()
		gr.stopping = true
		gr.mu.Unlock()
		gr.state.Store(transport.StateStopping)
		gr.cond.Broadcast()
		if gr.cons != nil {
			// The queue stays leased while the consumer stops.
			gr.cons.Stop()
		}
		gr.mu.Lock()
		var queued []*transport.Delivery
		for i := range gr.n {
			idx := (gr.head + i) % len(gr.queue)
			queued = append(queued, gr.queue[idx])
			gr.queue[idx] = nil
		}
		gr.n = 0
		gr.mu.Unlock()
		now := time.Now()
		for _, d := range queued {
			if !gr.leaseHeld(d, now) {
				gr.expired(d, now)
				continue
			}
			if gr.idem != nil {
				gr.idem.Discard(d)
			}
			gr.settleErr(d.Settler.Release(), "release", d)
		}
	})
}

// drain waits for the in-flight handlers until ctx ends (the close
// deadline, shared by every group), then cuts the rest off: marked first,
// their contexts cancelled, their events nacked for redelivery. Then it
// waits for them to return, however long they ignore their cancelled
// context (each is named at warn while it runs): when drain returns, no
// handler of the group runs, so that a service may close what its handlers
// use. Idempotent.
func (gr *groupRun) drain(ctx context.Context) []error {
	gr.stopOnce.Do(func() {
		defer close(gr.stopped)
		done := make(chan struct{})
		go func() {
			gr.workers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			// The handlers still running are marked before their contexts
			// are cut: one that returns at once on the cut must not settle
			// its event (nor escape the count) before it was marked.
			var cut []*transport.Delivery
			gr.mu.Lock()
			for i := range gr.slots {
				if gr.slots[i].d != nil {
					gr.slots[i].abandoned = true
					cut = append(cut, gr.slots[i].d)
				}
			}
			gr.mu.Unlock()
			gr.hctxCancel(fmt.Errorf("%w: %w: group %s: handler not done within CloseTimeout %s of the stop, its event nacked for redelivery",
				jetstream.ErrCloseTimeout, transport.ErrAbandoned, gr.g.cfg.Durable, gr.r.cfg.CloseTimeout))
			for _, d := range cut {
				gr.settleErr(d.Settler.Nak(0), "nak at close deadline", d)
			}
			if len(cut) > 0 {
				gr.stopErrs = append(gr.stopErrs, fmt.Errorf("group %s: %d handlers still running after CloseTimeout %s; their events were nacked for redelivery",
					gr.g.cfg.Durable, len(cut), gr.r.cfg.CloseTimeout))
			}
			gr.awaitHandlers(done)
		}
		close(gr.leaseEnd)
		gr.leased.Wait()
		gr.hctxCancel(nil)
	})
	return gr.stopErrs
}

// handlerWarnEvery is how often a handler that outlives the close deadline
// is named again while shutdown waits for it.
const handlerWarnEvery = 5 * time.Second

// awaitHandlers waits until done is closed (every worker returned), naming
// at warn each handler still running: at once, then every handlerWarnEvery.
func (gr *groupRun) awaitHandlers(done <-chan struct{}) {
	t := time.NewTicker(handlerWarnEvery)
	defer t.Stop()
	for {
		now := time.Now()
		gr.mu.Lock()
		var running []slot
		for _, s := range gr.slots {
			if s.d != nil {
				running = append(running, s)
			}
		}
		gr.mu.Unlock()
		for _, s := range running {
			logs.Warn(gr.log, "Handler still running after its context was cancelled at the close deadline; shutdown waits for it", nil,
				watermill.LogFields{"subject": s.d.Subject, "stream_seq": s.d.StreamSeq, "running_for": now.Sub(s.started).Round(time.Millisecond).String()})
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}
