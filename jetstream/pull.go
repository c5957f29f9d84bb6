package jetstream

import (
	"context"
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

// Settlement payloads of the JetStream ack protocol.
var (
	ackAck        = []byte("+ACK")
	ackNak        = []byte("-NAK")
	ackInProgress = []byte("+WPI")
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
	return &pullConsumer{
		stopCtx:    stopCtx,
		stopCancel: stopCancel,
		t:          t,
		spec:       spec,
		sink:       sink,
		want:       t.desiredConsumer(spec),
		nextSubj:   t.cfg.APIPrefix + ".CONSUMER.MSG.NEXT." + spec.Stream + "." + spec.Durable,
		inbox:      t.nc.NewInbox(),
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
	switch {
	case errors.Is(err, natsjs.ErrStreamNotFound):
		return fmt.Errorf("%w: %w: stream %s does not exist (create it first: ./scripts/setup-nats-streams.sh or jetstream.Apply): %w",
			ErrSubscribe, ErrNoStream, c.spec.Stream, err)
	case isPermission(err):
		return fmt.Errorf("%w: %w: %s %s on stream %s: the credentials may not use the JetStream API for it: %w",
			ErrSubscribe, ErrPermission, op, c.spec.Durable, c.spec.Stream, err)
	}
	return fmt.Errorf("%w: %s %s on stream %s: %w", ErrSubscribe, op, c.spec.Durable, c.spec.Stream, err)
}

// start subscribes the inbox and starts the loop.
func (c *pullConsumer) start() error {
	sub, err := c.t.nc.Subscribe(c.inbox, c.onMsg)
	if err != nil {
		return fmt.Errorf("%w: subscribe inbox: %w", ErrSubscribe, err)
	}
	// A burst of deliveries must never be dropped as a slow consumer: the
	// credit bounds them, the limits only guard memory.
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("%w: pending limits: %w", ErrSubscribe, err)
	}
	c.sub = sub
	c.lastSeen.Store(time.Now().UnixNano())
	go c.loop()
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

// pull sends one pull request for batch messages (none when batch is 0).
func (c *pullConsumer) pull(batch int) {
	if batch == 0 {
		return
	}
	var buf [96]byte
	req := append(buf[:0], `{"batch":`...)
	req = strconv.AppendInt(req, int64(batch), 10)
	req = append(req, `,"expires":`...)
	req = strconv.AppendInt(req, c.t.cfg.PullExpiry.Nanoseconds(), 10)
	req = append(req, `,"idle_heartbeat":`...)
	req = strconv.AppendInt(req, c.t.cfg.Heartbeat.Nanoseconds(), 10)
	req = append(req, '}')
	var err error
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
	d, err := c.delivery(m, now)
	c.mu.Lock()
	if c.outstanding > 0 {
		c.outstanding--
	} else {
		c.debt++
	}
	stopped := c.stopped
	c.mu.Unlock()
	if err != nil {
		c.log.Error("Message with an unreadable reply subject ignored; the server redelivers it after AckWait", err, watermill.LogFields{"subject": m.Subject})
		// It never reaches the router, which would give its credit back.
		c.Credit(1)
		return
	}
	if stopped {
		// Stopped while it was on its way: hand it back at once.
		_ = d.Nak(0)
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
		case containsFold(desc, "consumer deleted"):
			c.askRecover("consumer deleted")
			return
		case containsFold(desc, "leadership change"), containsFold(desc, "server shutdown"):
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
	}
	c.log.Error("Unexpected pull status", fmt.Errorf("%w: status %s %q", ErrSubscribe, status, desc), nil)
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
	return fmt.Errorf("%w: %w: durable %s on stream %s: %w", transport.ErrConsumerEnded, ErrSubscribe, c.spec.Durable, c.spec.Stream, perr)
}

func (c *pullConsumer) askRecover(reason string) {
	select {
	case c.recover <- reason:
	default:
	}
}

// loop checks the heartbeats every Heartbeat and recovers dead pulls.
func (c *pullConsumer) loop() {
	defer close(c.loopDone)
	hb := c.t.cfg.Heartbeat
	tick := time.NewTicker(hb)
	defer tick.Stop()
	for {
		var reason string
		select {
		case <-c.stopCh:
			return
		case reason = <-c.recover:
		case <-tick.C:
			c.mu.Lock()
			waiting := c.outstanding > 0
			c.mu.Unlock()
			silent := time.Since(time.Unix(0, c.lastSeen.Load()))
			if !waiting || silent < 2*hb {
				continue
			}
			reason = fmt.Sprintf("no message or heartbeat for %s with pulls outstanding", silent.Round(time.Millisecond))
		}
		if !c.recoverPull(reason) {
			return
		}
	}
}

// recoverPull forgets the outstanding pulls, makes sure the durable exists
// (recreating it from the spec when it is gone) and pulls again. It returns
// false when the consumer ended (stopped, or the durable cannot be
// recovered).
func (c *pullConsumer) recoverPull(reason string) bool {
	start := time.Now()
	c.mu.Lock()
	c.recovering = true
	c.credit += c.outstanding
	c.outstanding = 0
	c.mu.Unlock()
	c.setState(transport.StateStalled, fmt.Errorf("%w: %s", ErrStalled, reason))
	if perr := c.pullRefused(); perr != nil {
		// Permission to pull withdrawn: waiting will not heal it.
		c.end(perr)
		return false
	}

	delay := min(DefaultRecoveryDelay, max(c.t.cfg.Heartbeat/2, 10*time.Millisecond))
	for {
		err := c.check()
		if err == nil {
			break
		}
		// A stream that is gone may be on its way back (deleted and
		// recreated by a setup script): it gets two heartbeats, the same
		// budget as a lost pull, before the consumer ends.
		if errors.Is(err, transport.ErrConsumerEnded) && (!errors.Is(err, ErrNoStream) || time.Since(start) >= 2*c.t.cfg.Heartbeat) {
			c.end(err)
			return false
		}
		c.log.Debug("Durable not reachable yet, retrying", watermill.LogFields{"error": err.Error()})
		select {
		case <-c.stopCh:
			return false
		case <-time.After(delay):
		}
		delay = min(2*delay, max(c.t.cfg.Heartbeat/2, 10*time.Millisecond))
	}
	c.mu.Lock()
	c.recovering = false
	batch := c.takePullLocked()
	c.mu.Unlock()
	c.pull(batch)
	c.setState(transport.StateActive, nil)
	c.warn("Consumer recovered, pulling again", nil, watermill.LogFields{"after": time.Since(start).Round(time.Millisecond).String(), "cause": reason})
	return true
}

// check reads the durable and recreates it when it is gone. Errors that
// cannot heal by waiting (stream gone, permission) match
// transport.ErrConsumerEnded.
func (c *pullConsumer) check() error {
	// Each check is bounded by a heartbeat, not APITimeout: during a
	// leader election a request can go unanswered, and the next try, sent
	// once a leader exists, must not wait behind it (measured in a 3-node
	// cluster with a 500 ms heartbeat: resuming 4.6 s after the new
	// consumer leader with APITimeout, about 1 s with two heartbeats).
	ctx, cancel := context.WithTimeout(c.stopCtx, min(max(c.t.cfg.Heartbeat, 250*time.Millisecond), c.t.cfg.APITimeout))
	defer cancel()
	_, err := c.info(ctx)
	if errors.Is(err, natsjs.ErrConsumerNotFound) {
		_, err = c.t.js.CreateConsumer(ctx, c.spec.Stream, c.want)
		if err == nil {
			c.warn("Durable consumer was gone and has been recreated from the group's config", nil, nil)
			return nil
		}
	}
	switch {
	case err == nil:
		return nil
	case errors.Is(err, natsjs.ErrStreamNotFound):
		return fmt.Errorf("%w: %w: %w: stream %s no longer exists: recreate it (./scripts/setup-nats-streams.sh) and restart: %w",
			transport.ErrConsumerEnded, ErrSubscribe, ErrNoStream, c.spec.Stream, err)
	case isPermission(err):
		return fmt.Errorf("%w: %w: %w: durable %s on stream %s: %w", transport.ErrConsumerEnded, ErrSubscribe, ErrPermission, c.spec.Durable, c.spec.Stream, err)
	}
	return err
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
	if w, ok := c.log.(interface {
		Warn(string, error, watermill.LogFields)
	}); ok {
		w.Warn(msg, err, fields)
		return
	}
	if err != nil {
		fields = fields.Add(watermill.LogFields{"error": err.Error()})
	}
	c.log.Info(msg, fields)
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
func (c *pullConsumer) Stop() {
	c.stopOnce.Do(func() {
		c.mu.Lock()
		c.stopped = true
		c.mu.Unlock()
		close(c.stopCh)
		c.stopCancel()
		<-c.loopDone
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
	st := transport.ConsumerState{
		Pending:     info.NumPending,
		AckPending:  info.NumAckPending,
		Redelivered: info.NumRedelivered,
		Waiting:     info.NumWaiting,
	}
	if info.Delivered.Last != nil {
		st.LastActive = *info.Delivered.Last
	}
	return st, nil
}

// jsDelivery is a delivery with its settlement on the connection: one
// allocation per message holds both.
type jsDelivery struct {
	transport.Delivery
	nc    *nats.Conn
	reply string
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
		i := indexByte(s, '.')
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
		return nil, fmt.Errorf("%w: reply %q is not a JetStream ack subject", ErrSubscribe, m.Reply)
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
		return nil, fmt.Errorf("%w: reply %q: %w", ErrSubscribe, m.Reply, err)
	}
	d := &jsDelivery{nc: c.t.nc, reply: m.Reply}
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

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}

// Ack acks; with sync it waits for the server's confirmation.
func (d *jsDelivery) Ack(ctx context.Context, sync bool) error {
	if !sync {
		return d.settleErr("ack", d.nc.Publish(d.reply, ackAck))
	}
	_, err := d.nc.RequestWithContext(ctx, d.reply, ackAck)
	return d.settleErr("ack sync", err)
}

// Nak asks for a redelivery after delay.
func (d *jsDelivery) Nak(delay time.Duration) error {
	if delay <= 0 {
		return d.settleErr("nak", d.nc.Publish(d.reply, ackNak))
	}
	var buf [48]byte
	b := append(buf[:0], `-NAK {"delay":`...)
	b = strconv.AppendInt(b, delay.Nanoseconds(), 10)
	b = append(b, '}')
	return d.settleErr("nak with delay", d.nc.Publish(d.reply, b))
}

// Term terminates with reason (cut to maxTermReason bytes).
func (d *jsDelivery) Term(reason string) error {
	return d.settleErr("term", d.nc.Publish(d.reply, []byte("+TERM "+truncateReason(reason, maxTermReason))))
}

// InProgress renews the lease.
func (d *jsDelivery) InProgress() error {
	return d.settleErr("in progress", d.nc.Publish(d.reply, ackInProgress))
}

func (d *jsDelivery) settleErr(op string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %s %s seq %d: %w", ErrSettle, op, d.Stream, d.StreamSeq, err)
}

func containsFold(s, sub string) bool {
	n := len(sub)
	for i := 0; i+n <= len(s); i++ {
		if equalFoldASCII(s[i:i+n], sub) {
			return true
		}
	}
	return false
}

func equalFoldASCII(a, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
