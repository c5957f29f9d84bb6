package memory

import (
	"bytes"
	"container/heap"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// durable is one durable consumer of a stream: its position, what it
// delivered and not yet got a verdict for (pending), what waits for a
// redelivery, and the Consume calls bound to it (pullers), which share its
// messages.
type durable struct {
	s    *stream
	name string
	spec transport.ConsumerSpec

	nextSeq    uint64 // the next stream sequence to consider for a first delivery
	numPending uint64 // messages from nextSeq on that the filter takes
	cseq       uint64 // consumer sequence: one per delivery
	pending    map[uint64]*entry
	redeliver  entryHeap // waiting entries by (due, stream seq)
	pullers    []*consumer
	rr         int
	// pinned is the one consumer an Exclusive durable delivers to; it
	// moves to another puller once it stopped and nothing it was given is
	// out (settled, released, or its ack deadline passed): see
	// nextPullerLocked.
	pinned     *consumer
	lastActive time.Time
	deleted    bool
	// pausedUntil: nothing is delivered before it (see pause.go).
	pausedUntil time.Time
}

// entry is a delivered message without a verdict yet: out at a consumer
// (deadline is its ack deadline) or waiting for a redelivery (due).
type entry struct {
	msg        *storedMsg
	deliveries uint64
	token      uint64 // which delivery is the current one
	waiting    bool
	due        time.Time
	deadline   time.Time
	hidx       int // index in redeliver, -1 when not in it
}

type entryHeap []*entry

func (h entryHeap) Len() int { return len(h) }
func (h entryHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].msg.seq < h[j].msg.seq
}
func (h entryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].hidx, h[j].hidx = i, j
}
func (h *entryHeap) Push(x any) {
	e := x.(*entry)
	e.hidx = len(*h)
	*h = append(*h, e)
}
func (h *entryHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	e.hidx = -1
	return e
}

// newDurable creates the durable of spec, placed by spec's start position.
func newDurable(s *stream, spec transport.ConsumerSpec) *durable {
	d := &durable{s: s, name: spec.Durable, spec: spec, pending: make(map[uint64]*entry)}
	last := uint64(len(s.msgs))
	switch spec.Start {
	case transport.StartNew:
		d.nextSeq = last + 1
	case transport.StartAtSequence:
		d.nextSeq = max(spec.StartSeq, 1)
	case transport.StartAtTime:
		d.nextSeq = last + 1
		for _, m := range s.msgs {
			if !m.time.Before(spec.StartTime) {
				d.nextSeq = m.seq
				break
			}
		}
	default:
		d.nextSeq = 1
	}
	d.recount()
	return d
}

// recount counts the messages from nextSeq on that the filter takes.
func (d *durable) recount() {
	d.numPending = 0
	for seq := d.nextSeq; seq <= uint64(len(d.s.msgs)); seq++ {
		if matchAny(d.spec.FilterSubjects, d.s.msgs[seq-1].subject) {
			d.numPending++
		}
	}
}

// update makes an existing durable match spec (filters, AckWait,
// MaxAckPending, description); its position and pending messages stay, as
// the jetstream transport updates a durable to its group's config. It
// returns the differences.
func (d *durable) update(spec transport.ConsumerSpec) []string {
	var diff []string
	have := d.spec
	if !slices.Equal(have.FilterSubjects, spec.FilterSubjects) {
		diff = append(diff, fmt.Sprintf("filter_subjects %v -> %v", have.FilterSubjects, spec.FilterSubjects))
	}
	if have.AckWait != spec.AckWait {
		diff = append(diff, fmt.Sprintf("ack_wait %s -> %s", have.AckWait, spec.AckWait))
	}
	if have.MaxAckPending != spec.MaxAckPending {
		diff = append(diff, fmt.Sprintf("max_ack_pending %d -> %d", have.MaxAckPending, spec.MaxAckPending))
	}
	if have.Description != spec.Description {
		diff = append(diff, fmt.Sprintf("description %q -> %q", have.Description, spec.Description))
	}
	// The start position only matters at creation.
	spec.Start, spec.StartSeq, spec.StartTime = have.Start, have.StartSeq, have.StartTime
	refilter := !slices.Equal(have.FilterSubjects, spec.FilterSubjects)
	d.spec = spec
	if refilter {
		d.recount()
	}
	return diff
}

// dispatchLocked hands messages to the durable's consumers while one of
// them has credit and a message is ready: due redeliveries first (oldest due
// first), then new messages in stream order within MaxAckPending. Consumers
// with credit take turns. A paused durable hands out nothing.
func (d *durable) dispatchLocked(now time.Time) {
	if d.deleted || now.Before(d.pausedUntil) {
		return
	}
	for {
		if d.nextPullerLocked(false) == nil {
			return
		}
		e := d.nextEntryLocked(now)
		if e == nil {
			return
		}
		d.deliverLocked(d.nextPullerLocked(true), e, now)
	}
}

// ackFloorLocked is the highest stream sequence below which every message
// of the durable was settled (0: none).
func (d *durable) ackFloorLocked() uint64 {
	floor := d.nextSeq - 1
	for seq := range d.pending {
		floor = min(floor, seq-1)
	}
	return floor
}

// nextPullerLocked returns the consumer whose turn it is among those with
// credit (nil: none); with take, the turn passes to the next one.
func (d *durable) nextPullerLocked(take bool) *consumer {
	if d.spec.Exclusive {
		return d.pinnedPullerLocked(take)
	}
	n := len(d.pullers)
	for i := range n {
		idx := (d.rr + i) % n
		if c := d.pullers[idx]; c.credit > 0 && !c.stopped {
			if take {
				d.rr = idx + 1
			}
			return c
		}
	}
	return nil
}

// pinnedPullerLocked is nextPullerLocked for an Exclusive durable: only the
// pinned consumer receives. When it stopped, the pin stays until nothing it
// was given is out (what it held was settled or released, or its ack
// deadline passed and it waits for a redelivery), so that the next consumer
// receives the old one's messages before anything later: the JetStream
// transport's handover and takeover, without the wait for a pin timeout.
func (d *durable) pinnedPullerLocked(take bool) *consumer {
	if p := d.pinned; p != nil && p.stopped {
		for _, e := range d.pending {
			if !e.waiting {
				return nil
			}
		}
		d.pinned = nil
	}
	if p := d.pinned; p != nil {
		if p.credit > 0 {
			return p
		}
		return nil
	}
	for _, c := range d.pullers {
		if c.credit > 0 && !c.stopped {
			if take {
				d.pinned = c
			}
			return c
		}
	}
	return nil
}

func (d *durable) nextEntryLocked(now time.Time) *entry {
	if len(d.redeliver) > 0 && !d.redeliver[0].due.After(now) {
		return heap.Pop(&d.redeliver).(*entry)
	}
	if d.spec.MaxAckPending != -1 && len(d.pending) >= d.spec.MaxAckPending {
		return nil
	}
	for d.nextSeq <= uint64(len(d.s.msgs)) {
		m := d.s.msgs[d.nextSeq-1]
		d.nextSeq++
		if matchAny(d.spec.FilterSubjects, m.subject) {
			d.numPending--
			e := &entry{msg: m, hidx: -1}
			d.pending[m.seq] = e
			return e
		}
	}
	return nil
}

func (d *durable) deliverLocked(c *consumer, e *entry, now time.Time) {
	e.deliveries++
	e.token++
	e.waiting = false
	e.deadline = now.Add(d.spec.AckWait)
	d.cseq++
	d.lastActive = now
	c.credit--
	dv := &delivery{d: d, e: e, token: e.token}
	dv.Delivery = transport.Delivery{
		Subject:     e.msg.subject,
		Header:      cloneHeader(e.msg.header),
		Data:        bytes.Clone(e.msg.data),
		Stream:      d.s.cfg.Name,
		Consumer:    d.name,
		StreamSeq:   e.msg.seq,
		ConsumerSeq: d.cseq,
		Attempt:     e.deliveries,
		Pending:     d.numPending,
		Published:   e.msg.time,
	}
	dv.Settler = dv
	c.outbox = append(c.outbox, dv)
	c.cond.Signal()
	d.s.b.scheduleLocked(e.deadline)
}

// expireLocked queues for redelivery every delivery whose ack deadline
// passed.
func (d *durable) expireLocked(now time.Time) {
	for _, e := range d.pending {
		if !e.waiting && !e.deadline.After(now) {
			e.waiting, e.due = true, now
			heap.Push(&d.redeliver, e)
		}
	}
}

func (d *durable) removeLocked(e *entry) {
	if e.hidx >= 0 {
		heap.Remove(&d.redeliver, e.hidx)
	}
	delete(d.pending, e.msg.seq)
}

// nakLocked queues the current delivery dv for a redelivery after delay. A
// settlement of an older delivery, or of a message already settled, changes
// nothing.
func (d *durable) nakLocked(dv *delivery, delay time.Duration, now time.Time) {
	e := d.pending[dv.e.msg.seq]
	if d.deleted || e != dv.e || e.token != dv.token || e.waiting {
		return
	}
	e.waiting, e.due = true, now.Add(max(delay, 0))
	heap.Push(&d.redeliver, e)
	if delay > 0 {
		d.s.b.scheduleLocked(e.due)
	}
}

// releaseLocked hands the current delivery dv back unhandled: redelivered
// after delay, and its delivery uncounted, so that the next delivery's
// Attempt is this one's.
func (d *durable) releaseLocked(dv *delivery, delay time.Duration, now time.Time) {
	e := d.pending[dv.e.msg.seq]
	if d.deleted || e != dv.e || e.token != dv.token || e.waiting {
		return
	}
	e.deliveries--
	d.nakLocked(dv, delay, now)
}

func (d *durable) detachLocked(c *consumer) {
	d.pullers = slices.DeleteFunc(d.pullers, func(o *consumer) bool { return o == c })
}

func (d *durable) stateLocked(now time.Time) transport.ConsumerState {
	st := transport.ConsumerState{Pending: d.numPending, AckPending: len(d.pending), LastActive: d.lastActive}
	if now.Before(d.pausedUntil) {
		st.PausedUntil = d.pausedUntil
	}
	for _, e := range d.pending {
		if e.deliveries > 1 {
			st.Redelivered++
		}
	}
	for _, c := range d.pullers {
		if c.credit > 0 {
			st.Waiting++
		}
	}
	return st
}

// Consume binds the durable of spec (creating it at spec's start position
// when missing, updating its filters, AckWait, MaxAckPending and description
// to spec when it exists) and starts delivering to sink under credit: see
// transport.Transport. Several Consume calls on one durable share its
// messages, taking turns. sink is called from the consumer's own goroutine,
// one delivery at a time; it must not call the consumer's Stop. A zero
// AckWait is transport.DefaultAckWait; a zero MaxAckPending transport.DefaultMaxAckPending.
// Errors match transport.ErrSubscribe, with transport.ErrNoStream for a missing stream,
// envelope.ErrInvalidConfig for a bad spec, transport.ErrClosed for a closed bus.
func (b *Bus) Consume(ctx context.Context, spec transport.ConsumerSpec, sink func(*transport.Delivery)) (transport.Consumer, error) {
	if err := b.checkSpec(&spec); err != nil {
		return nil, fmt.Errorf("%w: consume: %w", transport.ErrSubscribe, err)
	}
	if sink == nil {
		return nil, fmt.Errorf("%w: consume %s: %w: nil sink", transport.ErrSubscribe, spec.Durable, envelope.ErrInvalidConfig)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("%w: consume %s: %w", transport.ErrSubscribe, spec.Durable, err)
	}
	spec.FilterSubjects = slices.Clone(spec.FilterSubjects)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil, fmt.Errorf("%w: consume %s: %w", transport.ErrSubscribe, spec.Durable, transport.ErrClosed)
	}
	d, err := b.bindLocked(spec)
	if err != nil {
		return nil, err
	}
	c := &consumer{b: b, d: d, spec: spec, sink: sink, done: make(chan struct{}), loopDone: make(chan struct{})}
	c.cond = sync.NewCond(&b.mu)
	d.pullers = append(d.pullers, c)
	b.wg.Add(1)
	go c.run()
	return c, nil
}

// checkSpec validates spec and fills its defaults.
func (b *Bus) checkSpec(spec *transport.ConsumerSpec) error {
	if err := validName("stream", spec.Stream); err != nil {
		return err
	}
	if err := validName("durable", spec.Durable); err != nil {
		return err
	}
	if len(spec.FilterSubjects) == 0 {
		return fmt.Errorf("%w: durable %s: no filter subject", envelope.ErrInvalidConfig, spec.Durable)
	}
	for _, f := range spec.FilterSubjects {
		if err := validSubject(f, true); err != nil {
			return fmt.Errorf("%w: durable %s: %w", envelope.ErrInvalidConfig, spec.Durable, err)
		}
	}
	if spec.AckWait == 0 {
		spec.AckWait = transport.DefaultAckWait
	}
	if spec.MaxAckPending == 0 {
		spec.MaxAckPending = transport.DefaultMaxAckPending
	}
	switch {
	case spec.AckWait < 0:
		return fmt.Errorf("%w: durable %s: negative AckWait %s", envelope.ErrInvalidConfig, spec.Durable, spec.AckWait)
	case spec.MaxAckPending < -1:
		return fmt.Errorf("%w: durable %s: MaxAckPending %d (>= 1, or -1 for no cap)", envelope.ErrInvalidConfig, spec.Durable, spec.MaxAckPending)
	case spec.Start < transport.StartAll || spec.Start > transport.StartAtTime:
		return fmt.Errorf("%w: durable %s: start position %d", envelope.ErrInvalidConfig, spec.Durable, spec.Start)
	}
	return nil
}

// ConsumerState reads a durable's state, as Consumer.State does. Errors
// match transport.ErrNoStream or ErrNoConsumer.
func (b *Bus) ConsumerState(streamName, durableName string) (transport.ConsumerState, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	d, err := b.durableLocked(streamName, durableName)
	if err != nil {
		return transport.ConsumerState{}, err
	}
	return d.stateLocked(b.now()), nil
}

func (b *Bus) durableLocked(streamName, durableName string) (*durable, error) {
	s := b.streams[streamName]
	if s == nil {
		return nil, fmt.Errorf("consumer %s: %w: stream %s", durableName, transport.ErrNoStream, streamName)
	}
	d := s.consumers[durableName]
	if d == nil {
		return nil, fmt.Errorf("%w: %s on stream %s", ErrNoConsumer, durableName, streamName)
	}
	return d, nil
}

// DeleteConsumer deletes a durable: its position and pending messages are
// gone. Consumers bound to it do as jetstream's transport does for a durable
// deleted under it: they report StateStalled then StateActive (OnStatus),
// and the durable is recreated at once from their spec (at its start
// position: StartAll redelivers the stream). Settling a message delivered by
// the deleted durable changes nothing. Errors match transport.ErrNoStream or
// ErrNoConsumer.
func (b *Bus) DeleteConsumer(streamName, durableName string) error {
	b.mu.Lock()
	d, err := b.durableLocked(streamName, durableName)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	s := d.s
	delete(s.consumers, durableName)
	d.deleted = true
	pullers := d.pullers
	d.pullers = nil
	if len(pullers) > 0 {
		now := b.now()
		// As the jetstream transport does: recreated after the ack floor
		// (the first message not settled), not at the start position.
		spec := pullers[0].spec
		if floor := d.ackFloorLocked(); floor > 0 {
			spec.Start, spec.StartSeq = transport.StartAtSequence, floor+1
		}
		nd := newDurable(s, spec)
		nd.pullers = pullers
		for _, c := range pullers {
			c.d = nd
		}
		s.consumers[durableName] = nd
		nd.dispatchLocked(now)
	}
	b.mu.Unlock()
	cause := fmt.Errorf("durable %s on stream %s was deleted; recreated from the spec after its ack floor", durableName, streamName)
	for _, c := range pullers {
		if c.spec.OnStatus != nil {
			c.spec.OnStatus(transport.Status{State: transport.StateStalled, Err: cause})
			c.spec.OnStatus(transport.Status{State: transport.StateActive})
		}
	}
	return nil
}

// EndConsumer ends every consumer bound to the durable for good, as a
// JetStream consumer ends when its durable can no longer be recovered (its
// permissions withdrawn): their Done closes and Err matches
// transport.ErrConsumerEnded (wrapping cause). The durable itself stays;
// the messages they hold stay settleable. For failure tests (a router group
// whose subscription ends). Errors match transport.ErrNoStream or ErrNoConsumer.
func (b *Bus) EndConsumer(streamName, durableName string, cause error) error {
	if cause == nil {
		cause = fmt.Errorf("ended by EndConsumer")
	}
	b.mu.Lock()
	d, err := b.durableLocked(streamName, durableName)
	if err != nil {
		b.mu.Unlock()
		return err
	}
	var ended []*consumer
	for _, c := range slices.Clone(d.pullers) {
		c.endLocked(fmt.Errorf("%w: %w: durable %s on stream %s: %w", transport.ErrConsumerEnded, transport.ErrSubscribe, durableName, streamName, cause))
		ended = append(ended, c)
	}
	b.mu.Unlock()
	notifyEnded(ended)
	return nil
}

// consumer is one Consume call: a puller of its durable with its own credit
// and a goroutine that hands its deliveries to the sink in order.
type consumer struct {
	b    *Bus
	d    *durable // the durable it is bound to (replaced when recreated)
	spec transport.ConsumerSpec
	sink func(*transport.Delivery)

	// Guarded by b.mu.
	credit  int
	outbox  []*delivery // assigned to this consumer, not yet given to sink
	cond    *sync.Cond  // on b.mu: outbox filled or stopped
	stopped bool        // nothing more reaches the sink
	handing bool        // the goroutine is handing a delivery to the sink
	ended   bool        // done is closed
	err     error

	done     chan struct{}
	loopDone chan struct{}
	stopOnce sync.Once
}

var _ transport.Consumer = (*consumer)(nil)

// run hands the outbox to the sink, one delivery at a time, until stopped.
func (c *consumer) run() {
	defer c.b.wg.Done()
	defer close(c.loopDone)
	c.b.mu.Lock()
	for {
		for len(c.outbox) == 0 && !c.stopped {
			c.cond.Wait()
		}
		if c.stopped {
			c.b.mu.Unlock()
			return
		}
		dv := c.outbox[0]
		c.outbox[0] = nil
		c.outbox = c.outbox[1:]
		c.handing = true
		c.b.mu.Unlock()
		dv.Received = time.Now() // the router's lease clock is the real one
		c.sink(&dv.Delivery)
		c.b.mu.Lock()
		c.handing = false
	}
}

// Credit allows n more deliveries.
func (c *consumer) Credit(n int) {
	if n <= 0 {
		return
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if c.stopped {
		return
	}
	c.credit += n
	c.d.dispatchLocked(c.b.now())
}

// haltLocked stops deliveries to the sink: what is assigned and not yet
// handed over goes back to the durable at once, released (not counted as a
// delivery), and the consumer leaves its durable.
func (c *consumer) haltLocked() {
	if c.stopped {
		return
	}
	c.stopped = true
	now := c.b.now()
	for _, dv := range c.outbox {
		dv.d.releaseLocked(dv, 0, now)
	}
	c.outbox = nil
	c.credit = 0
	c.d.detachLocked(c)
	c.cond.Broadcast()
	c.d.dispatchLocked(now)
}

// endLocked ends the consumer with err (its goroutine exits by itself;
// Stop, or the bus's Close, waits for it).
func (c *consumer) endLocked(err error) {
	c.haltLocked()
	if !c.ended {
		c.ended, c.err = true, err
		close(c.done)
	}
}

// notifyEnded reports StateEnded to the OnStatus of consumers that ended
// with an error (lock not held).
func notifyEnded(cs []*consumer) {
	for _, c := range cs {
		c.b.cfg.Logger.Error("Consumer ended", c.err, watermill.LogFields{"stream": c.spec.Stream, "consumer": c.spec.Durable})
		if c.spec.OnStatus != nil {
			c.spec.OnStatus(transport.Status{State: transport.StateEnded, Err: c.err})
		}
	}
}

// Done is closed when the consumer ended (Stop, or for good: Err).
func (c *consumer) Done() <-chan struct{} { return c.done }

// Err is nil after Stop, else why the consumer ended (matches
// transport.ErrConsumerEnded).
func (c *consumer) Err() error {
	select {
	case <-c.done:
		return c.err
	default:
		return nil
	}
}

// Stop ends delivery: after it returns the sink is not called again, and
// messages assigned to this consumer but not handed over are redelivered
// (to the durable's other consumers, if any). Messages already delivered
// stay settleable. Idempotent; must not be called from the sink.
func (c *consumer) Stop() {
	c.stopOnce.Do(func() {
		c.b.mu.Lock()
		c.haltLocked()
		c.b.mu.Unlock()
		<-c.loopDone
		c.b.mu.Lock()
		if !c.ended {
			c.ended = true
			close(c.done)
		}
		c.b.mu.Unlock()
	})
}

// State reads the durable's state. Errors match transport.ErrNoStream or
// ErrNoConsumer once it is gone.
func (c *consumer) State(ctx context.Context) (transport.ConsumerState, error) {
	if err := ctx.Err(); err != nil {
		return transport.ConsumerState{}, err
	}
	c.b.mu.Lock()
	defer c.b.mu.Unlock()
	if c.d.deleted {
		return transport.ConsumerState{}, fmt.Errorf("consumer %s: %w on stream %s", c.spec.Durable, ErrNoConsumer, c.spec.Stream)
	}
	return c.d.stateLocked(c.b.now()), nil
}

// delivery is one delivery with its settlement on the bus.
type delivery struct {
	transport.Delivery
	d     *durable
	e     *entry
	token uint64
}

// settle runs op under the bus lock on a live bus.
func (dv *delivery) settle(name string, op func(now time.Time)) error {
	b := dv.d.s.b
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("%s %s seq %d: %w", name, dv.Stream, dv.StreamSeq, transport.ErrClosed)
	}
	now := b.now()
	op(now)
	dv.d.dispatchLocked(now)
	return nil
}

// Ack settles the message for good (whichever of its deliveries this is,
// as JetStream acks by stream sequence). A message already settled is left
// as it is. With sync, ctx must be live.
func (dv *delivery) Ack(ctx context.Context, sync bool) error {
	if sync {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("ack sync %s seq %d: %w", dv.Stream, dv.StreamSeq, err)
		}
	}
	return dv.settle("ack", func(time.Time) {
		if e := dv.d.pending[dv.StreamSeq]; !dv.d.deleted && e == dv.e {
			dv.d.removeLocked(e)
		}
	})
}

// Nak asks for a redelivery after delay (at once when delay <= 0). Only the
// current delivery of a message can nak it.
func (dv *delivery) Nak(delay time.Duration) error {
	return dv.settle("nak", func(now time.Time) { dv.d.nakLocked(dv, delay, now) })
}

// InProgress restarts the message's ack timer (current delivery only, and
// not once it was nacked), and records the renewal on the delivery
// (Renewed): the bus confirms it at once.
func (dv *delivery) InProgress() error {
	sent := time.Now() // the router's lease clock is the real one
	return dv.settle("in progress", func(now time.Time) {
		if e := dv.d.pending[dv.StreamSeq]; !dv.d.deleted && e == dv.e && e.token == dv.token && !e.waiting {
			e.deadline = now.Add(dv.d.spec.AckWait)
			dv.Renewed(sent)
		}
	})
}

// Release hands the message back unhandled: redelivered after delay (on
// the bus's clock), this delivery not counted (current delivery only).
func (dv *delivery) Release(delay time.Duration) error {
	return dv.settle("release", func(now time.Time) { dv.d.releaseLocked(dv, delay, now) })
}

// ExactAttempt is Attempt: the bus uncounts a release when it happens.
func (dv *delivery) ExactAttempt(context.Context) (uint64, error) { return dv.Attempt, nil }

// AddConsumer creates the durable of spec without consuming (at its start
// position), or updates an existing one to spec, so that messages are kept
// for it from now on. Errors as Consume's.
func (b *Bus) AddConsumer(spec transport.ConsumerSpec) error {
	if err := b.checkSpec(&spec); err != nil {
		return fmt.Errorf("%w: add consumer: %w", transport.ErrSubscribe, err)
	}
	spec.FilterSubjects = slices.Clone(spec.FilterSubjects)
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return fmt.Errorf("%w: add consumer %s: %w", transport.ErrSubscribe, spec.Durable, transport.ErrClosed)
	}
	_, err := b.bindLocked(spec)
	return err
}

// bindLocked returns the durable of spec: created at its start position
// when missing, updated to spec (logged) when it differs.
func (b *Bus) bindLocked(spec transport.ConsumerSpec) (*durable, error) {
	s := b.streams[spec.Stream]
	if s == nil {
		return nil, fmt.Errorf("%w: %w: stream %s does not exist (create it first: Config.Streams or AddStream)", transport.ErrSubscribe, transport.ErrNoStream, spec.Stream)
	}
	for _, f := range spec.FilterSubjects {
		if !matchAny(s.cfg.Subjects, f) {
			return nil, fmt.Errorf("%w: %w: durable %s: filter %q is outside stream %s's subjects %v", transport.ErrSubscribe, envelope.ErrInvalidConfig, spec.Durable, f, s.cfg.Name, s.cfg.Subjects)
		}
	}
	now := b.now()
	d := s.consumers[spec.Durable]
	if d == nil {
		d = newDurable(s, spec)
		s.consumers[spec.Durable] = d
		return d, nil
	}
	if diff := d.update(spec); len(diff) > 0 {
		b.cfg.Logger.Info("Durable consumer differed from the spec and was updated to it", watermill.LogFields{
			"stream": spec.Stream, "consumer": spec.Durable, "changes": diff,
		})
		d.dispatchLocked(now)
	}
	return d, nil
}
