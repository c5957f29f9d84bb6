package jetstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/transport"
)

// pullConsumer is one durable pull consumer delivering to a sink under
// credit: the router's Credit calls become pull requests on one inbox, sized
// by what the router can hold. Its loop goroutine watches the pulls'
// heartbeats and recovers a dead pull (recreating the durable when it is
// gone); pull requests themselves are sent from Credit, on the caller's
// goroutine, so that the hot path has no handoff to the loop.
type pullConsumer struct {
	t        *Transport
	spec     transport.ConsumerSpec
	sink     func(*transport.Delivery)
	want     natsjs.ConsumerConfig
	nextSubj string
	inbox    string
	log      watermill.LoggerAdapter
	sub      *nats.Subscription
	// hb and expiry are the pull requests' heartbeat and expiry (shorter
	// for an Exclusive consumer: pinned.go).
	hb, expiry time.Duration

	// Lease renewals are requests: the server's reply confirms that it got
	// the renewal, and only then does the delivery's lease move (see
	// transport.Delivery.LeaseStart). leaseSub receives the replies on
	// leaseInbox.<id>.
	leaseInbox string
	leaseSub   *nats.Subscription
	leaseMu    sync.Mutex
	leaseID    uint64
	leases     map[uint64]leaseWait

	// ackFloor is the durable's ack floor (stream sequence) as last read
	// from the server: a durable deleted under the consumer is recreated
	// after it, not at the start of the stream. settled counts the
	// settlements, so that the floor is read again only after progress.
	ackFloor     atomic.Uint64
	settled      atomic.Uint64
	floorSettled uint64 // settled when the floor was last read (loop only)

	// alive is when the watchdog last ran (see watch): a message read long
	// after it may have waited in the socket while the process was frozen.
	alive atomic.Pointer[time.Time]
	// thawed is the last freeze the watchdog saw, once it ran again: the
	// messages read shortly after it may have waited through it.
	thawed atomic.Pointer[freeze]

	// lastSeen is when anything (message, heartbeat, status) last arrived
	// on the inbox, in UnixNano.
	lastSeen  atomic.Int64
	firstPull atomic.Bool

	mu          sync.Mutex
	credit      int // allowed, not yet requested
	outstanding int // requested, not yet delivered
	// debt counts deliveries beyond what was requested (a pull thought lost
	// that was alive after all, a late status charged to a newer pull):
	// the credit they give back when settled is swallowed, so that the
	// group never holds more than its capacity for good.
	debt       int
	threshold  int  // credit worth a pull request of its own
	recovering bool // no pulls until the durable is checked
	stopped    bool
	state      transport.State
	// pinID is the pin of an Exclusive consumer while the server has it
	// pinned (pinned.go); held are deliveries that arrived while it stops
	// with pulls still open, released once pullsEnded.
	pinID      string
	draining   bool // stopping, delivering until the pulls ended
	pullsEnded chan struct{}
	pullsOpen  bool // Stop could not see every pull end
	// pin keeps an Exclusive consumer's pin alive, fence orders what it
	// receives when it is pinned (pinned.go).
	pin   pinKeeper
	fence takeoverFence

	recover chan string // a reason to check the durable now (cap 1)
	stopCh  chan struct{}
	// stopCtx is cancelled by Stop: a durable check under way ends at once.
	stopCtx    context.Context
	stopCancel context.CancelFunc
	loopDone   chan struct{}
	done       chan struct{}
	endOnce    sync.Once
	stopOnce   sync.Once
	err        error
}

func newPullConsumer(t *Transport, spec transport.ConsumerSpec, sink func(*transport.Delivery)) *pullConsumer {
	stopCtx, stopCancel := context.WithCancel(context.Background())
	hb, expiry := t.pullTiming(spec)
	return &pullConsumer{
		hb:         hb,
		expiry:     expiry,
		stopCtx:    stopCtx,
		stopCancel: stopCancel,
		t:          t,
		spec:       spec,
		sink:       sink,
		want:       t.desiredConsumer(spec),
		nextSubj:   t.cfg.APIPrefix + ".CONSUMER.MSG.NEXT." + spec.Stream + "." + spec.Durable,
		inbox:      t.nc.NewInbox(),
		leaseInbox: t.nc.NewInbox(),
		leases:     make(map[uint64]leaseWait),
		log: t.cfg.Logger.With(watermill.LogFields{
			"stream": spec.Stream, "consumer": spec.Durable,
		}),
		state:    transport.StateActive,
		recover:  make(chan string, 1),
		stopCh:   make(chan struct{}),
		loopDone: make(chan struct{}),
		done:     make(chan struct{}),
	}
}

// ensure makes the durable match the spec: created when missing, updated
// (with a warning naming each difference) when it differs.
func (c *pullConsumer) ensure(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, c.t.cfg.APITimeout)
	defer cancel()
	info, err := c.info(ctx)
	switch {
	case errors.Is(err, natsjs.ErrConsumerNotFound):
		_, err = c.t.js.CreateConsumer(ctx, c.spec.Stream, c.want)
		if err != nil {
			return c.setupErr("create durable", err)
		}
		c.log.Debug("Durable consumer created", nil)
		return nil
	case err != nil:
		return c.setupErr("read durable", err)
	}
	c.raiseFloor(info.AckFloor.Stream)
	diff := consumerDiff(info.Config, c.want)
	if len(diff) == 0 {
		return nil
	}
	upd := c.want
	// What only matters at creation (or cannot change) stays as it is.
	upd.DeliverPolicy, upd.OptStartSeq, upd.OptStartTime = info.Config.DeliverPolicy, info.Config.OptStartSeq, info.Config.OptStartTime
	upd.MaxWaiting = info.Config.MaxWaiting
	if _, err := c.t.js.UpdateConsumer(ctx, c.spec.Stream, upd); err != nil {
		return c.setupErr("update durable (it differs: "+fmt.Sprint(diff)+")", err)
	}
	// One line (warn), not one at info and another at warn.
	c.warn("Durable consumer differed from the group's config and was updated to it", nil, watermill.LogFields{"changes": diff})
	return nil
}

func (c *pullConsumer) info(ctx context.Context) (*natsjs.ConsumerInfo, error) {
	cons, err := c.t.js.Consumer(ctx, c.spec.Stream, c.spec.Durable)
	if err != nil {
		return nil, err
	}
	return cons.CachedInfo(), nil
}

func (c *pullConsumer) setupErr(op string, err error) error {
	// A refused JetStream API call only times out in nats.go; the
	// connection's last error names the refused subject.
	err = explainPermission(c.t.nc, err, func(_, subject string) bool {
		return strings.HasPrefix(subject, c.t.cfg.APIPrefix+".")
	})
	err = explainNoJetStream(err)
	e := &transport.Error{Op: "consume: " + op + " " + c.spec.Durable, Stream: c.spec.Stream, Kinds: []error{transport.ErrSubscribe}, Err: err}
	switch {
	case errors.Is(err, natsjs.ErrStreamNotFound):
		e.Kinds = append(e.Kinds, transport.ErrNoStream)
		e.Hint = "the stream does not exist: create it first (./scripts/setup-nats-streams.sh, or jetstream.Ensure)"
	case isPermission(err):
		e.Kinds = append(e.Kinds, transport.ErrPermission)
		e.Hint = "the credentials may not use the JetStream API for it"
	}
	return e
}

// start subscribes the inbox and starts the loop.
func (c *pullConsumer) start() error {
	sub, err := c.t.nc.Subscribe(c.inbox, c.onMsg)
	if err != nil {
		return fmt.Errorf("%w: subscribe inbox: %w", transport.ErrSubscribe, err)
	}
	// A burst of deliveries must never be dropped as a slow consumer: the
	// credit bounds them, the limits only guard memory.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("%w: pending limits: %w", transport.ErrSubscribe, err)
	}
	c.sub = sub
	lsub, err := c.t.nc.Subscribe(c.leaseInbox+".*", c.onLeaseReply)
	if err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("%w: subscribe lease inbox: %w", transport.ErrSubscribe, err)
	}
	c.leaseSub = lsub
	if c.spec.Exclusive {
		if err := c.pin.start(c); err != nil {
			_ = sub.Unsubscribe()
			_ = lsub.Unsubscribe()
			return err
		}
	}
	now := time.Now()
	c.alive.Store(&now)
	c.lastSeen.Store(now.UnixNano())
	go c.loop()
	go c.watch()
	return nil
}

// Credit allows n more deliveries and pulls when enough credit gathered (or
// nothing is on its way).
func (c *pullConsumer) Credit(n int) {
	if n <= 0 {
		return
	}
	c.mu.Lock()
	if c.debt > 0 {
		paid := min(n, c.debt)
		c.debt -= paid
		n -= paid
		if n == 0 {
			c.mu.Unlock()
			return
		}
	}
	if c.threshold == 0 {
		// The first credit is the router's capacity: a pull for half of it
		// keeps the pipe full without a request per settled message.
		c.threshold = max(1, n/2)
	}
	c.credit += n
	batch := c.takePullLocked()
	c.mu.Unlock()
	c.pull(batch)
}

// takePullLocked returns the batch to request now (0: none) and counts it
// as outstanding.
func (c *pullConsumer) takePullLocked() int {
	if c.stopped || c.recovering || c.credit == 0 {
		return 0
	}
	if c.credit < c.threshold && c.outstanding > 0 {
		return 0
	}
	if c.outstanding == 0 {
		// Nothing was on its way: the heartbeat clock starts now.
		c.lastSeen.Store(time.Now().UnixNano())
	}
	b := c.credit
	c.outstanding += b
	c.credit = 0
	return b
}

// pullRequest is the body of a pull request ($JS.API.CONSUMER.MSG.NEXT),
// as nats.go's jetstream package writes it (its own type is unexported).
type pullRequest struct {
	Batch     int           `json:"batch"`
	Expires   time.Duration `json:"expires"`
	Heartbeat time.Duration `json:"idle_heartbeat"`
	// Group and ID: the priority group of an Exclusive consumer and the
	// pin the server gave it (empty until pinned).
	Group string `json:"group,omitempty"`
	ID    string `json:"id,omitempty"`
	// MaxBytes 1: a keep-alive of the pin that takes no message
	// (pinned.go).
	MaxBytes int `json:"max_bytes,omitempty"`
}

// pull sends one pull request for batch messages (none when batch is 0).
func (c *pullConsumer) pull(batch int) {
	if batch == 0 {
		return
	}
	// One pull per half of the group's capacity: encoding/json here costs
	// nothing measurable.
	pr := pullRequest{Batch: batch, Expires: c.expiry, Heartbeat: c.hb}
	if c.spec.Exclusive {
		c.mu.Lock()
		pr.Group, pr.ID = pinGroup, c.pinID
		c.mu.Unlock()
	}
	req, err := json.Marshal(pr)
	if err != nil {
		panic(err) // a struct of ints always encodes
	}
	if !c.t.nc.IsConnected() {
		// nats.go would keep the request in its reconnect buffer and send
		// it on reconnect, beside the one recovery sends then: too much
		// pulled. Recovery pulls once connected.
		err = nats.ErrConnectionReconnecting
	} else {
		err = c.t.nc.PublishRequest(c.nextSubj, c.inbox, req)
	}
	if err == nil && c.firstPull.CompareAndSwap(false, true) {
		// A pull the credentials may not send is dropped by the server with
		// only an asynchronous error: find out now, so that Run fails at
		// start naming it rather than stalling.
		if ferr := c.t.nc.FlushTimeout(c.t.cfg.APITimeout); ferr == nil {
			if perr := c.pullRefused(); perr != nil {
				c.end(perr)
				return
			}
		}
	}
	if err != nil {
		// The connection is closed or reconnecting: give the credit back;
		// the loop's heartbeat check pulls again.
		c.mu.Lock()
		c.outstanding -= batch
		c.credit += batch
		c.mu.Unlock()
		c.askRecover("pull request not sent: " + err.Error())
	}
}

// onMsg receives everything the server sends to the inbox: deliveries and
// status messages of the pull requests.
func (c *pullConsumer) onMsg(m *nats.Msg) {
	now := time.Now()
	c.lastSeen.Store(now.UnixNano())
	if len(m.Data) == 0 && len(m.Header) > 0 {
		if status := m.Header.Get("Status"); status != "" {
			c.onStatus(status, m)
			return
		}
	}
	d, err := c.delivery(m, c.received(now))
	if c.spec.Exclusive {
		c.notePin(m)
	}
	c.mu.Lock()
	if c.outstanding > 0 {
		c.outstanding--
	} else {
		c.debt++
	}
	// An Exclusive consumer that stops still delivers until its pulls
	// ended (see awaitPullsEnded): the router releases all it holds
	// together, in stream order.
	stopped := c.stopped && !c.draining
	c.pullEndedLocked()
	c.mu.Unlock()
	if err != nil {
		c.log.Error("Message with an unreadable reply subject ignored; the server redelivers it after AckWait", err, watermill.LogFields{"subject": m.Subject})
		// It never reaches the router, which would give its credit back.
		c.Credit(1)
		return
	}
	if stopped {
		// Stopped while it was on its way: hand it back at once, not
		// counted as a handler attempt.
		_ = d.Release(0)
		return
	}
	if c.spec.Exclusive {
		c.pin.delivered()
		c.fence.sink(c, d)
		return
	}
	c.sink(&d.Delivery)
}

// onStatus handles a status message: heartbeats keep the pull alive, an
// expired or ended request gives its remaining credit back, a deleted
// consumer or a leader change makes the loop check the durable.
func (c *pullConsumer) onStatus(status string, m *nats.Msg) {
	desc := m.Header.Get("Description")
	switch status {
	case "100": // idle heartbeat (or flow control, which pull consumers do not use)
		return
	case "404", "408":
		c.requestEnded(m)
		return
	case "409":
		switch {
		case strings.Contains(strings.ToLower(desc), "consumer deleted"):
			c.askRecover("consumer deleted")
			return
		case strings.Contains(strings.ToLower(desc), "leadership change"), strings.Contains(strings.ToLower(desc), "server shutdown"):
			c.askRecover(desc)
			return
		}
		if !c.requestEnded(m) {
			c.askRecover(desc)
		}
		return
	case "503":
		c.askRecover("no responders: JetStream unavailable")
		return
	case "423": // Nats-Wrong-Pin-Id, Nats-Pin-Id mismatch: an Exclusive consumer's pin moved
		c.pinLost(m)
		return
	}
	c.log.Error("Unexpected pull status", fmt.Errorf("%w: status %s %q", transport.ErrSubscribe, status, desc), nil)
	c.askRecover("status " + status + " " + desc)
}

// requestEnded gives back the undelivered part of an ended request (header
// Nats-Pending-Messages); false when the header is missing.
func (c *pullConsumer) requestEnded(m *nats.Msg) bool {
	n, err := strconv.Atoi(m.Header.Get("Nats-Pending-Messages"))
	if err != nil || n <= 0 {
		return err == nil
	}
	c.mu.Lock()
	n = min(n, c.outstanding)
	c.outstanding -= n
	c.credit += n
	c.pullEndedLocked()
	batch := c.takePullLocked()
	c.mu.Unlock()
	c.pull(batch)
	return true
}

// pullRefused returns the error that ends the consumer when the
// connection's last error says its pulls are refused, else nil.
func (c *pullConsumer) pullRefused() error {
	perr := explainPermission(c.t.nc, natsjs.ErrNoHeartbeat, func(op, subject string) bool {
		return subject == c.nextSubj || subject == c.inbox
	})
	if !IsPermissionError(perr) {
		return nil
	}
	return fmt.Errorf("%w: %w: durable %s on stream %s: %w", transport.ErrConsumerEnded, transport.ErrSubscribe, c.spec.Durable, c.spec.Stream, perr)
}

func (c *pullConsumer) askRecover(reason string) {
	select {
	case c.recover <- reason:
	default:
	}
}

func (c *pullConsumer) setState(s transport.State, err error) {
	c.mu.Lock()
	changed := c.state != s
	c.state = s
	c.mu.Unlock()
	if !changed {
		return
	}
	if s == transport.StateStalled {
		c.warn("Consumer stalled, recovering", err, nil)
	}
	if c.spec.OnStatus != nil {
		c.spec.OnStatus(transport.Status{State: s, Err: err})
	}
}

func (c *pullConsumer) warn(msg string, err error, fields watermill.LogFields) {
	warn(c.log, msg, err, fields)
}

// end ends the consumer with err (nil: stopped).
func (c *pullConsumer) end(err error) {
	c.endOnce.Do(func() {
		c.err = err
		if err != nil {
			c.setState(transport.StateEnded, err)
			c.log.Error("Consumer ended", err, nil)
		}
		c.mu.Lock()
		c.stopped = true
		c.mu.Unlock()
		close(c.done)
	})
}

func (c *pullConsumer) Done() <-chan struct{} { return c.done }

func (c *pullConsumer) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Stop ends delivery; messages that arrive from now on are nacked at once.
// The inbox is drained (its pending messages are nacked by onMsg) and then
// gone, which also makes the server drop the pull requests still waiting.
// An Exclusive consumer first waits for its pulls to end, still delivering
// what they bring (see awaitPullsEnded), so that nothing is on its way
// when it hands over.
func (c *pullConsumer) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.stopped = true
		c.draining = c.spec.Exclusive
		c.mu.Unlock()
		close(c.stopCh)
		c.stopCancel()
		<-c.loopDone
		if c.spec.Exclusive {
			c.awaitPullsEnded()
			c.fence.lift(c, "") // the router releases it all, in order
			c.mu.Lock()
			c.draining = false
			c.mu.Unlock()
		}
		if c.sub != nil {
			closed := c.sub.StatusChanged(nats.SubscriptionClosed)
			if err := c.sub.Drain(); err == nil {
				select {
				case <-closed:
				case <-time.After(c.t.cfg.APITimeout):
				}
			} else {
				_ = c.sub.Unsubscribe()
			}
		}
		// Renewals are confirmed until here: the router renews what it
		// still holds while the inbox drains.
		if c.leaseSub != nil {
			_ = c.leaseSub.Unsubscribe()
		}
		c.end(nil)
	})
}

// State reads the consumer info.
func (c *pullConsumer) State(ctx context.Context) (transport.ConsumerState, error) {
	ctx, cancel := context.WithTimeout(ctx, c.t.cfg.APITimeout)
	defer cancel()
	cons, err := c.t.js.Consumer(ctx, c.spec.Stream, c.spec.Durable)
	if err != nil {
		return transport.ConsumerState{}, fmt.Errorf("consumer %s info: %w", c.spec.Durable, err)
	}
	info := cons.CachedInfo()
	c.raiseFloor(info.AckFloor.Stream)
	st := transport.ConsumerState{
		Pending:     info.NumPending,
		AckPending:  info.NumAckPending,
		Redelivered: info.NumRedelivered,
		Waiting:     info.NumWaiting,
	}
	if info.Delivered.Last != nil {
		st.LastActive = *info.Delivered.Last
	}
	if info.Paused && info.Config.PauseUntil != nil {
		st.PausedUntil = *info.Config.PauseUntil
	}
	return st, nil
}
