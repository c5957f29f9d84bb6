package jetstream

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/transport"
)

// Exclusive consumers (transport.ConsumerSpec.Exclusive: a partition of a
// partitioned group) are durables with a pinned priority group (nats-server
// 2.11, ADR-42): the server delivers only to the pull requests that carry
// the pin id it gave the consumer it pinned; the other processes' requests
// wait, receiving nothing but heartbeats. Why pinning rather than a lock of
// our own: the server enforces it at delivery, so two processes that both
// believe they own a partition (a stale member list, a process frozen and
// thawed) still never both receive its messages.
//
// The pin moves in two ways, both ordered so that nothing of a key
// overtakes an earlier message of it:
//   - Handover: the owner stops, waits for its outstanding pulls to end
//     (taking what they still bring), settles or releases everything in
//     stream order, and unpins; the next owner's waiting pull is pinned at
//     once and its first deliveries are the released messages, in that
//     order (redeliveries come first).
//   - Takeover: an owner that stops pulling (killed) keeps the pin for
//     PinnedTTL after its last pull request. PinnedTTL is AckWait plus a
//     pull's expiry plus a heartbeat, so its messages are already due for
//     redelivery when another process is pinned, and are delivered first.

// pinGroup is the priority group of every exclusive durable.
const pinGroup = "jetevents"

// Exclusive consumers pull with a short expiry, so that a handover waits
// little for the pulls to end: a heartbeat of at most exclusiveHeartbeat and
// requests expiring after two of them.
const exclusiveHeartbeat = time.Second

// pullTiming is the heartbeat and pull expiry of a consumer of spec.
func (t *Transport) pullTiming(spec transport.ConsumerSpec) (hb, expiry time.Duration) {
	if !spec.Exclusive {
		return t.cfg.Heartbeat, t.cfg.PullExpiry
	}
	hb = min(t.cfg.Heartbeat, exclusiveHeartbeat)
	return hb, 2 * hb
}

// PinnedTTL is how long an exclusive consumer that stopped pulling keeps
// its messages from the other processes (the takeover time of a crashed
// partition owner): AckWait + a pull's expiry + a heartbeat.
func (t *Transport) PinnedTTL(spec transport.ConsumerSpec) time.Duration {
	hb, expiry := t.pullTiming(spec)
	return spec.AckWait + expiry + hb
}

// pinned sets the priority group settings of an exclusive durable.
func (t *Transport) pinned(cc *natsjs.ConsumerConfig, spec transport.ConsumerSpec) {
	if !spec.Exclusive {
		return
	}
	cc.PriorityPolicy = natsjs.PriorityPolicyPinned
	cc.PriorityGroups = []string{pinGroup}
	cc.PinnedTTL = t.PinnedTTL(spec)
}

// notePin records the pin id of a delivery of an exclusive consumer.
func (c *pullConsumer) notePin(m *nats.Msg) {
	id := m.Header.Get("Nats-Pin-Id")
	if id == "" {
		return
	}
	c.mu.Lock()
	if c.pinID != id {
		c.pinID = id
		c.mu.Unlock()
		c.log.Debug("Pinned: this process receives the partition", watermill.LogFields{"pin": id})
		c.fence.raise(c, id)
		return
	}
	c.mu.Unlock()
}

// pinLost handles a 423: the request carried a pin id that is no longer
// the consumer's (it stopped pulling for PinnedTTL: a long disconnect, a
// frozen process); another process may hold the partition now. The
// request's credit comes back and the next pull waits unpinned.
func (c *pullConsumer) pinLost(m *nats.Msg) {
	c.mu.Lock()
	old := c.pinID
	c.pinID = ""
	c.mu.Unlock()
	if old != "" {
		c.warn("Pin lost: another process may receive this partition now; pulling again without it", nil, watermill.LogFields{"pin": old})
	}
	if !c.requestEnded(m) {
		c.askRecover("pin lost")
	}
}

// awaitPullsEnded waits, while stopping, until every pull request sent has
// ended (filled, or expired at the server), at most a pull's expiry and two
// heartbeats. Deliveries meanwhile still reach the sink: the router
// releases everything it holds once the consumer stopped, in stream order
// (released while a pull of the pinned consumer is open, they would come
// straight back to it; released apart, out of order).
func (c *pullConsumer) awaitPullsEnded() {
	c.mu.Lock()
	if c.outstanding <= 0 {
		c.mu.Unlock()
		return
	}
	if !c.t.nc.IsConnected() {
		// The requests' answers cannot arrive: what they bring is lost on
		// its way until AckWait.
		c.pullsOpen = true
		c.mu.Unlock()
		return
	}
	ended := make(chan struct{})
	c.pullsEnded = ended
	c.mu.Unlock()
	select {
	case <-ended:
	case <-time.After(c.expiry + 2*c.hb):
		c.mu.Lock()
		c.pullsOpen = true
		c.mu.Unlock()
		c.log.Debug("Pull requests did not all end in time while stopping", nil)
	}
}

// pullEndedLocked closes pullsEnded once nothing is outstanding.
func (c *pullConsumer) pullEndedLocked() {
	if c.pullsEnded != nil && c.outstanding <= 0 {
		close(c.pullsEnded)
		c.pullsEnded = nil
	}
}

// Handover unpins the durable, so that the next process receives at once.
// Called after the group settled or released everything it held. Nothing
// it was delivered is lost on its way: Stop waited for every pull request
// to end, holding what they brought, and released it; what it released
// waits in the server's redelivery queue, which the next owner receives
// first. When Stop could not see its pulls end (a disconnect), it does not
// unpin: the pin times out after PinnedTTL, when anything lost on its way
// is due for redelivery.
func (c *pullConsumer) Handover(ctx context.Context) error {
	if !c.spec.Exclusive {
		return nil
	}
	c.mu.Lock()
	pin, open := c.pinID, c.pullsOpen
	c.mu.Unlock()
	// From here the pin is not kept: unpinned below, or left to time out.
	defer c.pin.stop()
	switch {
	case pin == "":
		return nil // never pinned: nothing to hand over
	case open:
		c.warn("Partition not handed over: its pull requests did not end while it stopped; the next process receives after the pin times out", nil,
			watermill.LogFields{"pinned_ttl": c.t.PinnedTTL(c.spec).String()})
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, c.t.cfg.APITimeout)
	defer cancel()
	// The settlements were published without waiting: the server has them
	// all (the releases in its redelivery queue) once a flush returns.
	if err := c.t.nc.FlushWithContext(ctx); err != nil {
		return fmt.Errorf("%w: handover of %s: flush: %w", transport.ErrTimeout, c.spec.Durable, err)
	}
	info, err := c.info(ctx)
	if err != nil {
		return fmt.Errorf("handover of %s: %w", c.spec.Durable, err)
	}
	for _, g := range info.PriorityGroups {
		if g.Group == pinGroup && g.PinnedClientID != pin {
			return nil // pinned to another process already (or to none): nothing of ours to hand over
		}
	}
	c.pin.stop() // no keep-alive may follow the unpin
	st, err := c.t.js.Stream(ctx, c.spec.Stream)
	if err == nil {
		err = st.UnpinConsumer(ctx, c.spec.Durable, pinGroup)
	}
	if err != nil {
		return fmt.Errorf("handover of %s: unpin: %w", c.spec.Durable, err)
	}
	return nil
}

var _ transport.Handover = (*pullConsumer)(nil)

// pinKeeper keeps an Exclusive consumer's pin while it needs it. The server
// moves a pin to another process when the pinned one sent no pull request
// for PinnedTTL, and a consumer sends none while the router's whole
// capacity is held (slow handlers, a key waiting for its retry) nor while
// it stops: its messages would then go to another process while its own
// handlers still run earlier messages of the same keys. So, while the
// consumer runs, and after Stop while something it delivered is unsettled
// and leased (until Handover, or AckWait after its last renewal), a pull
// request with max_bytes 1 is sent whenever no real one is open: the
// server resets the pin's timer on receiving it, and it takes no message
// (one would not fit: the server ends the request instead).
type pinKeeper struct {
	c         *pullConsumer
	inbox     string
	sub       *nats.Subscription
	unsettled atomic.Int64
	lastLease atomic.Int64 // UnixNano of the last delivery or renewal
	handed    atomic.Bool
	done      chan struct{}
}

func (k *pinKeeper) start(c *pullConsumer) error {
	k.c, k.inbox, k.done = c, c.t.nc.NewInbox(), make(chan struct{})
	sub, err := c.t.nc.Subscribe(k.inbox, k.onMsg)
	if err != nil {
		return fmt.Errorf("%w: subscribe pin inbox: %w", transport.ErrSubscribe, err)
	}
	k.sub = sub
	k.active()
	go k.loop()
	return nil
}

func (k *pinKeeper) delivered()  { k.unsettled.Add(1); k.active() }
func (k *pinKeeper) settledOne() { k.unsettled.Add(-1) }
func (k *pinKeeper) active()     { k.lastLease.Store(time.Now().UnixNano()) }

// needed reports whether the pin must still be kept.
func (k *pinKeeper) needed() bool {
	if k.handed.Load() {
		return false
	}
	k.c.mu.Lock()
	stopped := k.c.stopped
	k.c.mu.Unlock()
	if !stopped {
		return true
	}
	return k.unsettled.Load() > 0 && time.Since(time.Unix(0, k.lastLease.Load())) < k.c.spec.AckWait
}

// loop sends a keep-alive every half pull expiry when no pull is open,
// until the pin is no longer needed.
func (k *pinKeeper) loop() {
	defer close(k.done)
	defer func() { _ = k.sub.Unsubscribe() }()
	t := time.NewTicker(k.c.expiry / 2)
	defer t.Stop()
	for range t.C {
		if !k.needed() {
			return
		}
		c := k.c
		c.mu.Lock()
		pin, open := c.pinID, c.outstanding > 0 && !c.stopped
		c.mu.Unlock()
		if pin == "" || open || !c.t.nc.IsConnected() {
			continue
		}
		req, err := json.Marshal(pullRequest{Batch: 1, MaxBytes: 1, Expires: c.expiry, Group: pinGroup, ID: pin})
		if err == nil {
			_ = c.t.nc.PublishRequest(c.nextSubj, k.inbox, req)
		}
	}
}

// onMsg reads the answers to keep-alives: a 423 says the pin moved;
// anything else (408 expired, 409 max bytes) only ends the request. A
// message (none fits in one byte) is handed back at once.
func (k *pinKeeper) onMsg(m *nats.Msg) {
	if len(m.Data) == 0 && m.Header.Get("Status") == "423" {
		c := k.c
		c.mu.Lock()
		old := c.pinID
		c.pinID = ""
		c.mu.Unlock()
		if old != "" && !k.handed.Load() {
			c.warn("Pin lost: another process may receive this partition now", nil, watermill.LogFields{"pin": old})
		}
		return
	}
	if m.Reply != "" && len(m.Data) > 0 {
		_ = m.Respond(ackNak)
	}
}

// stop ends the keep-alives (Handover).
func (k *pinKeeper) stop() {
	if k.done == nil {
		return
	}
	k.handed.Store(true)
}

// takeoverFence puts in stream order what a consumer receives when it is
// newly pinned. The messages its previous owner had (released at a
// handover, or due for redelivery after a crash) come first, but not in
// stream order: nats-server pops a redelivery it cannot hand to anyone at
// that moment (the new owner's requests wait unpinned) and queues it again
// at the end, so the queue rotates. Handed to the router as they come, a
// key's later event could run before its earlier one. So, from the first
// delivery of a new pin, deliveries are held until every message pending
// at the server is held here (consumer info: nothing ack pending but
// them), then handed to the router sorted by stream sequence. The fence
// also lifts when the consumer can receive no more (its credit is spent:
// more was pending than it may hold), after AckWait/2 (the held messages
// are not leased meanwhile), and when the consumer stops; those three
// lifts are logged, since order across the takeover may then not hold.
type takeoverFence struct {
	mu      sync.Mutex
	on      bool
	pin     string
	since   time.Time
	renewed time.Time
	held    []*jsDelivery
}

// fenceCheckEvery is how often a raised fence asks the server what is
// still pending.
const fenceCheckEvery = 20 * time.Millisecond

// raise starts holding deliveries for the new pin.
func (f *takeoverFence) raise(c *pullConsumer, pin string) {
	f.mu.Lock()
	f.on, f.pin, f.since, f.renewed = true, pin, time.Now(), time.Now()
	f.mu.Unlock()
	go f.watch(c, pin)
}

// sink hands d to the router, or holds it while the fence is up.
func (f *takeoverFence) sink(c *pullConsumer, d *jsDelivery) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		c.sink(&d.Delivery)
		return
	}
	f.held = append(f.held, d)
}

// watch lifts the fence once nothing but what it holds is pending.
func (f *takeoverFence) watch(c *pullConsumer, pin string) {
	t := time.NewTicker(fenceCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-c.stopCh:
			return
		case <-t.C:
		}
		f.mu.Lock()
		if !f.on || f.pin != pin {
			f.mu.Unlock()
			return
		}
		n, since := len(f.held), f.since
		var renew []*jsDelivery
		if time.Since(f.renewed) >= c.spec.AckWait/3 {
			// Held here, they are not the router's yet: their leases are
			// kept here.
			renew = slices.Clone(f.held)
			f.renewed = time.Now()
		}
		f.mu.Unlock()
		for _, d := range renew {
			_ = d.InProgress()
		}
		if time.Since(since) > c.spec.AckWait/2 {
			f.lift(c, "not everything pending arrived within AckWait/2")
			return
		}
		c.mu.Lock()
		spent := c.outstanding <= 0 && c.credit <= 0
		c.mu.Unlock()
		ctx, cancel := context.WithTimeout(c.stopCtx, max(c.hb, 250*time.Millisecond))
		info, err := c.info(ctx)
		cancel()
		why := ""
		switch {
		case err != nil:
			continue
		case info.NumAckPending > n && spent:
			// Credit spent before the question: nothing more can come.
			why = "more was pending than the group may hold (FetchBatch)"
		case info.NumAckPending > n:
			continue
		}
		// Everything pending when the server answered was delivered
		// before the question: it is all here.
		f.mu.Lock()
		if f.on && f.pin == pin {
			f.liftLocked(c, why)
		}
		f.mu.Unlock()
		return
	}
}

// lift hands what the fence holds to the router, in stream order.
func (f *takeoverFence) lift(c *pullConsumer, why string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.on {
		f.liftLocked(c, why)
	}
}

func (f *takeoverFence) liftLocked(c *pullConsumer, why string) {
	held := f.held
	f.on, f.held = false, nil
	slices.SortFunc(held, func(a, b *jsDelivery) int { return cmp.Compare(a.StreamSeq, b.StreamSeq) })
	if why != "" && len(held) > 0 {
		c.warn("Partition taken over before everything pending arrived: order across the takeover may not hold for the keys of what is still out", nil,
			watermill.LogFields{"cause": why, "held": len(held)})
	}
	for _, d := range held {
		c.sink(&d.Delivery)
	}
}
