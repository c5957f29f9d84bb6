// Package consume runs one durable consumer of a transport under credit:
// the one pipeline of the module, under the router's groups and under the
// Watermill Subscriber alike. Its consumer delivers into a FIFO queue (at
// most FetchBatch messages held), Concurrency workers take messages from it
// and run each through a Handler on their own goroutine, and a lease loop
// renews every held message (queued or in a handler) until it is settled by
// the Handler's verdict. There is one handoff per message (the transport's
// goroutine to a worker) and no goroutine per message.
//
// What it guarantees, whoever the Handler is:
//   - nothing is fetched that cannot be held, and everything held is leased;
//   - a held message whose lease ran out (the process was frozen past
//     AckWait) is neither handled, renewed nor nacked: the broker gave it to
//     another consumer;
//   - a delivery whose attempt count reaches AttemptLimit gets its exact
//     attempt (releases not counted) before the Handler sees it;
//   - a stop releases what is queued (not counted as an attempt), waits for
//     the handlers until the close deadline, cuts their contexts then, and
//     returns only once none runs.
package consume

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/internal/logs"
	"github.com/jetevents/events/transport"
)

// Handler handles one delivery and returns its verdict, which settles it:
// Handled, DeadLettered and Skipped ack, Retried naks after its Delay, and
// Undecided (the handler did not take the message: a Watermill subscription
// that stopped before sending it) releases it, not counted as an attempt. ctx
// carries the values of the context Start was given, and is cancelled at
// the close deadline (its cause matches transport.ErrCloseTimeout).
type Handler func(ctx context.Context, d *transport.Delivery) transport.Verdict

// Config configures a Group. Zero fields are invalid unless documented.
type Config struct {
	// Spec is the durable consumer (its AckWait drives the leases).
	Spec transport.ConsumerSpec
	// Concurrency is the number of workers (handlers running at once).
	Concurrency int
	// FetchBatch is how many messages the group holds at most, queued and
	// in handlers; at least Concurrency.
	FetchBatch int
	// AttemptLimit: a delivery whose attempt (an upper bound on some
	// transports) reaches it is given its exact attempt before the Handler
	// runs. 0: never asked.
	AttemptLimit int
	// AckSync makes each ack wait for the broker's confirmation.
	AckSync bool
	// Logger receives the group's warnings. Default watermill.NopLogger.
	Logger watermill.LoggerAdapter
	// OnQueued, when set, is called for every message as it is queued (on
	// the transport's goroutine: keep it short), and OnDone once the
	// message left the group (handled, released, or dropped with its
	// lease): the router's idempotency prefetch.
	OnQueued, OnDone func(*transport.Delivery)
	// OnExpired, when set, is called for every held message dropped
	// because its lease ran out.
	OnExpired func(*transport.Delivery)
	// Key, when set, makes the group keyed: messages with the same key are
	// handled one at a time in stream order, different keys in parallel
	// (see keyed.go). It is called on the transport's goroutine as each
	// message arrives. Default nil: stream order is not kept past
	// Concurrency 1.
	Key func(*transport.Delivery) string
	// PerKey caps what a key whose head waits for its retry holds (the
	// rest is released for the retry's delay). Default max(4, FetchBatch/8).
	PerKey int
}

// Validate reports a configuration a Group cannot run.
func (c Config) Validate() error {
	switch {
	case c.Concurrency < 1:
		return fmt.Errorf("%w: Concurrency %d must be >= 1", envelope.ErrInvalidConfig, c.Concurrency)
	case c.FetchBatch < c.Concurrency:
		return fmt.Errorf("%w: FetchBatch %d must be >= Concurrency %d", envelope.ErrInvalidConfig, c.FetchBatch, c.Concurrency)
	case c.Spec.AckWait <= 0:
		return fmt.Errorf("%w: AckWait %s must be positive", envelope.ErrInvalidConfig, c.Spec.AckWait)
	case c.AttemptLimit < 0:
		return fmt.Errorf("%w: AttemptLimit %d is negative", envelope.ErrInvalidConfig, c.AttemptLimit)
	case c.PerKey < 0:
		return fmt.Errorf("%w: PerKey %d is negative", envelope.ErrInvalidConfig, c.PerKey)
	}
	return nil
}

// Group is one running durable consumer and its workers.
type Group struct {
	cfg     Config
	handler Handler
	cons    transport.Consumer
	log     watermill.LoggerAdapter

	// hctx is the parent of every handler's context: the values of the
	// start ctx without its cancellation (a stop must not cut handlers
	// short), cut at the close deadline.
	hctx       context.Context
	hctxCancel context.CancelCauseFunc

	mu       sync.Mutex
	cond     *sync.Cond
	backlog  backlog // the messages held and not in a handler
	slots    []slot  // one per worker: the message in its handler
	stopping bool
	// wake broadcasts cond when a message waiting for its local retry (a
	// keyed group) becomes runnable.
	wake *time.Timer

	workers sync.WaitGroup
	// releases are handed back by the releaser goroutine, off the
	// transport's goroutine and the workers (a JetStream release writes
	// its ledger first).
	releases   chan release
	released   sync.WaitGroup
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
	// broker's timer ran before the message reached the group.
	leaseLimit time.Duration
}

type slot struct {
	d         *transport.Delivery
	runs      int // earlier handler runs in this process (local retries)
	started   time.Time
	abandoned bool // nacked at the close deadline: the worker must not settle it
}

type errHolder struct{ err error }

// release is a message to hand back after delay.
type release struct {
	d     *transport.Delivery
	delay time.Duration
}

// Start binds the durable of cfg.Spec on tr (creating or updating it as the
// transport does), starts the workers and the lease loop, and gives the
// consumer its credit. ctx's values reach every handler; its cancellation
// does not (Stop does).
func Start(ctx context.Context, tr transport.Transport, cfg Config, h Handler) (*Group, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Logger == nil {
		cfg.Logger = watermill.NopLogger{}
	}
	hctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	g := &Group{
		cfg:        cfg,
		handler:    h,
		log:        cfg.Logger,
		hctx:       hctx,
		hctxCancel: cancel,
		slots:      make([]slot, cfg.Concurrency),
		leaseEnd:   make(chan struct{}),
		stopped:    make(chan struct{}),
		releases:   make(chan release, cfg.FetchBatch),
		leaseLimit: cfg.Spec.AckWait - cfg.Spec.AckWait/10,
	}
	g.cond = sync.NewCond(&g.mu)
	if cfg.Key != nil {
		perKey := cfg.PerKey
		if perKey == 0 {
			perKey = max(4, cfg.FetchBatch/8)
		}
		g.backlog = newLanes(cfg.Key, perKey)
		g.wake = time.AfterFunc(time.Hour, func() {
			g.mu.Lock()
			g.mu.Unlock()
			g.cond.Broadcast()
		})
		g.wake.Stop()
	} else {
		g.backlog = newFIFO(cfg.FetchBatch)
	}
	g.state.Store(transport.StateActive)
	g.stateErr.Store(errHolder{})

	spec := cfg.Spec
	userStatus := spec.OnStatus
	spec.OnStatus = func(s transport.Status) {
		g.onStatus(s)
		if userStatus != nil {
			userStatus(s)
		}
	}
	cons, err := tr.Consume(ctx, spec, g.sink)
	if err != nil {
		cancel(nil)
		return nil, err
	}
	g.cons = cons
	g.lastProgress.Store(time.Now().UnixNano())
	for i := range g.slots {
		g.workers.Add(1)
		go g.work(i)
	}
	g.leased.Add(1)
	go g.lease()
	g.released.Add(1)
	go g.releaser()
	cons.Credit(cfg.FetchBatch)
	if err := cons.Err(); err != nil {
		// Ended at once (the first pull was refused): fail the start.
		g.Stop(context.Background())
		return nil, err
	}
	return g, nil
}

func (g *Group) onStatus(s transport.Status) {
	if s.State == transport.StateStalled {
		g.stalls.Add(1)
	}
	g.state.Store(s.State)
	g.stateErr.Store(errHolder{s.Err})
}

// sink queues a delivered message (the transport's goroutine). While the
// group stops, it still queues: StopIntake releases the queue once the
// consumer stopped, so that nothing is handed back while the consumer could
// deliver it again at once.
func (g *Group) sink(d *transport.Delivery) {
	if g.cfg.OnQueued != nil {
		g.cfg.OnQueued(d)
	}
	g.mu.Lock()
	held, release := g.backlog.add(d, time.Now())
	g.mu.Unlock()
	if !held {
		// A redelivery of a message the group holds, or a keyed message
		// behind its key's released ones: the credit it took comes back.
		g.done(d)
		if release > 0 {
			g.releaseLater(d, release)
			return
		}
		g.cons.Credit(1)
		return
	}
	g.cond.Signal()
}

// work is one worker: take the next message the backlog allows, check that
// its lease is still the group's, handle it, settle it (or keep it for a
// local retry), give the credit back.
func (g *Group) work(i int) {
	defer g.workers.Done()
	for {
		g.mu.Lock()
		var (
			d    *transport.Delivery
			runs int
			ok   bool
			now  time.Time
		)
		for !g.stopping {
			now = time.Now()
			if d, runs, ok = g.backlog.take(now); ok {
				break
			}
			g.cond.Wait()
		}
		if g.stopping {
			g.mu.Unlock()
			return
		}
		held := g.leaseHeld(d, now)
		if held {
			g.slots[i] = slot{d: d, runs: runs, started: now}
		} else {
			g.backlog.drop(d)
		}
		g.mu.Unlock()

		if !held {
			g.expired(d, now)
			g.cons.Credit(1)
			continue
		}
		if runs == 0 {
			g.resolveAttempt(d)
		}
		v := g.handler(g.hctx, d)

		g.mu.Lock()
		abandoned := g.slots[i].abandoned
		g.slots[i] = slot{}
		var (
			kept    bool
			release []*transport.Delivery
			delay   time.Duration
		)
		if !abandoned {
			kept, release, delay = g.backlog.done(d, v, time.Now())
			g.armWake()
		}
		g.mu.Unlock()
		if kept {
			// Held for a local retry (a keyed group): not settled, its
			// credit kept; the wake timer lets a worker take it when due.
			g.cond.Broadcast()
		} else {
			g.done(d)
			if !abandoned {
				g.settle(d, v)
			}
			g.lastProgress.Store(time.Now().UnixNano())
			g.cons.Credit(1)
		}
		for _, r := range release {
			g.done(r)
			g.releaseLater(r, delay)
		}
		if len(release) > 0 || !kept {
			g.cond.Broadcast()
		}
	}
}

// releaseLater hands d back after delay, from the releaser goroutine; its
// credit comes back once it is handed back.
func (g *Group) releaseLater(d *transport.Delivery, delay time.Duration) {
	g.releases <- release{d: d, delay: delay}
}

// releaser hands back what releaseLater queued, until Drain closes the
// queue.
func (g *Group) releaser() {
	defer g.released.Done()
	for r := range g.releases {
		g.settleErr(r.d.Settler.Release(r.delay), "release", r.d)
		g.cons.Credit(1)
	}
}

// armWake sets the wake timer to the earliest local retry (keyed groups).
func (g *Group) armWake() {
	if g.wake == nil {
		return
	}
	if next := g.backlog.nextDue(); !next.IsZero() {
		g.wake.Reset(max(time.Until(next), 0))
	}
}

func (g *Group) done(d *transport.Delivery) {
	if g.cfg.OnDone != nil {
		g.cfg.OnDone(d)
	}
}

// leaseHeld reports whether the lease on d is still the group's at now:
// less than leaseLimit since it started (the latest renewal the broker
// confirmed). Both clocks are read: the monotonic one stops while a machine
// is suspended (a laptop lid, a VM migration), the wall clock does not, and
// the broker's timer ran all along.
func (g *Group) leaseHeld(d *transport.Delivery, now time.Time) bool {
	start := d.LeaseStart()
	age := max(now.Sub(start), now.Round(0).Sub(start.Round(0)))
	return age < g.leaseLimit
}

// expired drops a held message whose lease ran out before its handler
// started (the process was frozen longer than AckWait: a GC pause, a stopped
// process, a suspended machine): the broker has redelivered it, maybe to
// another process, so handling it now would be a duplicate. It is neither
// handled nor settled here.
func (g *Group) expired(d *transport.Delivery, now time.Time) {
	g.done(d)
	if g.cfg.OnExpired != nil {
		g.cfg.OnExpired(d)
	}
	logs.Warn(g.log, "Held event's lease ran out before its handler started (was the process frozen?): not handled here, the broker redelivers it", nil,
		watermill.LogFields{"subject": d.Subject, "stream_seq": d.StreamSeq, "held_for": now.Sub(d.LeaseStart()).Round(time.Millisecond).String()})
}

// resolveAttempt makes d.Attempt exact when the transport's upper bound
// reaches the attempt limit, so that deliveries released unhandled (a stop)
// are not read as handler attempts. Below the limit the bound is enough:
// the handler runs either way.
func (g *Group) resolveAttempt(d *transport.Delivery) {
	if g.cfg.AttemptLimit == 0 || d.Attempt <= 1 || d.Attempt < uint64(g.cfg.AttemptLimit) {
		return
	}
	ctx, cancel := context.WithTimeout(g.hctx, g.leaseLimit/3)
	defer cancel()
	exact, err := d.Settler.ExactAttempt(ctx)
	if err != nil {
		logs.Warn(g.log, "Cannot read the event's releases: every delivery counts as a handler attempt", err,
			watermill.LogFields{"subject": d.Subject, "stream_seq": d.StreamSeq})
	}
	d.Attempt = exact
}

// settle acks, naks or releases d as v says. A message whose lease ran out
// meanwhile is left alone: the broker gave it to another consumer, and a
// nak now would redeliver that one's copy too. (An ack is sent either way:
// the work is done, and it spares the other copy.)
func (g *Group) settle(d *transport.Delivery, v transport.Verdict) {
	if v.Acks() {
		if !g.cfg.AckSync {
			g.settleErr(d.Settler.Ack(context.Background(), false), "ack", d)
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Spec.AckWait)
		g.settleErr(d.Settler.Ack(ctx, true), "ack sync", d)
		cancel()
		return
	}
	if !g.leaseHeld(d, time.Now()) {
		if g.cfg.OnExpired != nil {
			g.cfg.OnExpired(d)
		}
		logs.Warn(g.log, "Failed event's lease ran out while its handler ran: left to its redelivery", nil,
			watermill.LogFields{"subject": d.Subject, "stream_seq": d.StreamSeq})
		return
	}
	if v.Kind == transport.Undecided {
		g.settleErr(d.Settler.Release(0), "release", d)
		return
	}
	g.settleErr(d.Settler.Nak(v.Delay), "nak", d)
}

// settleErr logs a settlement that could not be sent: there is no caller to
// return it to, and the broker redelivers an unsettled message after
// AckWait, so it is not lost.
func (g *Group) settleErr(err error, op string, d *transport.Delivery) {
	if err != nil {
		g.log.Error("Cannot settle message; the broker redelivers it after AckWait", err,
			watermill.LogFields{"op": op, "subject": d.Subject, "stream_seq": d.StreamSeq})
	}
}

// lease renews every held message whose lease is older than a third of
// AckWait, every third of AckWait, until the group stops and its handlers
// are done. A message whose lease already ran out is not renewed: the
// broker gave it to another consumer, and a renewal would keep that one's
// lease alive as if it were ours.
func (g *Group) lease() {
	defer g.leased.Done()
	every := g.cfg.Spec.AckWait / 3
	t := time.NewTicker(every)
	defer t.Stop()
	var held []*transport.Delivery
	for {
		select {
		case <-g.leaseEnd:
			return
		case <-t.C:
			now := time.Now() // the tick may have waited (a frozen process)
			held = held[:0]
			due := func(d *transport.Delivery) bool {
				return now.Sub(d.LeaseStart()) >= every && g.leaseHeld(d, now)
			}
			g.mu.Lock()
			g.backlog.each(func(d *transport.Delivery) {
				if due(d) {
					held = append(held, d)
				}
			})
			for _, s := range g.slots {
				if s.d != nil && !s.abandoned && due(s.d) {
					held = append(held, s.d)
				}
			}
			g.mu.Unlock()
			for _, d := range held {
				g.settleErr(d.Settler.InProgress(), "in progress", d)
			}
		}
	}
}

// Stop shuts the group down alone (idempotent): StopIntake, then Drain
// until ctx ends.
func (g *Group) Stop(ctx context.Context) []error {
	g.StopIntake()
	return g.Drain(ctx)
}

// StopIntake ends the intake at once (idempotent): the workers take no new
// message, the consumer is stopped (what reaches it meanwhile the transport
// releases), then the queued messages, which no handler saw, are released:
// redelivered at once, to the group's other processes or after a restart,
// and not counted as handler attempts. Messages whose lease ran out
// meanwhile are not the group's to release. Several groups stopping
// together call it for each before draining any, so that no group starts
// new handlers while another drains.
func (g *Group) StopIntake() {
	g.intakeOnce.Do(func() {
		g.mu.Lock()
		g.stopping = true
		g.mu.Unlock()
		g.state.Store(transport.StateStopping)
		g.cond.Broadcast()
		if g.cons != nil {
			// The queue stays leased while the consumer stops.
			g.cons.Stop()
		}
		g.mu.Lock()
		queued, runs := g.backlog.empty()
		if g.wake != nil {
			g.wake.Stop()
		}
		g.mu.Unlock()
		// Handed back in stream order: the broker redelivers in the order
		// it was given them, and a keyed group taking over must see each
		// key's events in order.
		order := make([]int, len(queued))
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return cmp.Compare(queued[a].StreamSeq, queued[b].StreamSeq) })
		now := time.Now()
		for _, i := range order {
			d := queued[i]
			if !g.leaseHeld(d, now) {
				g.expired(d, now)
				continue
			}
			g.done(d)
			if runs[i] > 0 {
				// Its handler ran (a keyed group's local retry): handing it
				// back uncounted would hide that attempt.
				g.settleErr(d.Settler.Nak(0), "nak", d)
				continue
			}
			g.settleErr(d.Settler.Release(0), "release", d)
		}
	})
}

// Drain waits for the in-flight handlers until ctx ends (the close
// deadline, which several groups stopping together share), then cuts the
// rest off: marked first, their contexts cancelled with a cause matching
// transport.ErrCloseTimeout, their messages nacked for redelivery. Then it
// waits for them to return, however long they ignore their cancelled
// context (each is named at warn while it runs): when Drain returns, no
// handler of the group runs. It returns the errors of the cut. Call
// StopIntake first. Idempotent.
func (g *Group) Drain(ctx context.Context) []error {
	g.stopOnce.Do(func() {
		defer close(g.stopped)
		done := make(chan struct{})
		go func() {
			g.workers.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-ctx.Done():
			// The handlers still running are marked before their contexts
			// are cut: one that returns at once on the cut must not settle
			// its message (nor escape the count) before it was marked.
			var cut []*transport.Delivery
			g.mu.Lock()
			for i := range g.slots {
				if g.slots[i].d != nil {
					g.slots[i].abandoned = true
					cut = append(cut, g.slots[i].d)
				}
			}
			g.mu.Unlock()
			g.hctxCancel(fmt.Errorf("%w: durable %s: handler not done within the close deadline of the stop, its message nacked for redelivery",
				transport.ErrCloseTimeout, g.cfg.Spec.Durable))
			for _, d := range cut {
				g.settleErr(d.Settler.Nak(0), "nak at close deadline", d)
			}
			if len(cut) > 0 {
				g.stopErrs = append(g.stopErrs, fmt.Errorf("%w: durable %s: %d handlers still running at the close deadline; their messages were nacked for redelivery",
					transport.ErrCloseTimeout, g.cfg.Spec.Durable, len(cut)))
			}
			g.awaitHandlers(done)
		}
		// No worker queues a release any more; the transport stopped
		// delivering in StopIntake.
		close(g.releases)
		g.released.Wait()
		close(g.leaseEnd)
		g.leased.Wait()
		g.hctxCancel(nil)
	})
	return g.stopErrs
}

// HandlerWarnEvery is how often a handler that outlives the close deadline
// is named again while Drain waits for it.
const HandlerWarnEvery = 5 * time.Second

// awaitHandlers waits until done is closed (every worker returned), naming
// at warn each handler still running: at once, then every HandlerWarnEvery.
func (g *Group) awaitHandlers(done <-chan struct{}) {
	t := time.NewTicker(HandlerWarnEvery)
	defer t.Stop()
	for {
		now := time.Now()
		g.mu.Lock()
		var running []slot
		for _, s := range g.slots {
			if s.d != nil {
				running = append(running, s)
			}
		}
		g.mu.Unlock()
		for _, s := range running {
			logs.Warn(g.log, "Handler still running after its context was cancelled at the close deadline; shutdown waits for it", nil,
				watermill.LogFields{"subject": s.d.Subject, "stream_seq": s.d.StreamSeq, "running_for": now.Sub(s.started).Round(time.Millisecond).String()})
		}
		select {
		case <-done:
			return
		case <-t.C:
		}
	}
}

// Handover lets the next process receive the durable at once, once Drain
// returned (an Exclusive consumer: see transport.Handover); nothing for
// other consumers.
func (g *Group) Handover(ctx context.Context) error {
	if h, ok := g.cons.(transport.Handover); ok {
		return h.Handover(ctx)
	}
	return nil
}

// Stopped is closed once Drain finished.
func (g *Group) Stopped() <-chan struct{} { return g.stopped }

// Ended is closed when the consumer ended, by a stop or for good (Err).
func (g *Group) Ended() <-chan struct{} { return g.cons.Done() }

// Err is why the consumer ended for good (matches transport.ErrConsumerEnded),
// nil while it runs or after a stop.
func (g *Group) Err() error { return g.cons.Err() }

// Health is the group's state as the pipeline sees it.
type Health struct {
	// State is active, stalled, stopping or ended; Cause says why when not
	// active.
	State transport.State
	Cause error
	// Stalls counts the stalls detected since Start.
	Stalls uint64
	// LastProgress is when a message was last settled (or the start).
	LastProgress time.Time
	// Held is how many messages the group holds: queued and in handlers.
	Held int
}

// Health reads the group's state (no broker call).
func (g *Group) Health() Health {
	h := Health{
		State:        g.state.Load().(transport.State),
		Cause:        g.stateErr.Load().(errHolder).err,
		Stalls:       g.stalls.Load(),
		LastProgress: time.Unix(0, g.lastProgress.Load()),
	}
	g.mu.Lock()
	h.Held = g.backlog.len()
	for _, s := range g.slots {
		if s.d != nil {
			h.Held++
		}
	}
	g.mu.Unlock()
	return h
}

// ConsumerState reads the durable's counts from the broker.
func (g *Group) ConsumerState(ctx context.Context) (transport.ConsumerState, error) {
	return g.cons.State(ctx)
}

// IsCut reports whether err is the cause of a handler context cut at the
// close deadline.
func IsCut(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), transport.ErrCloseTimeout)
}
