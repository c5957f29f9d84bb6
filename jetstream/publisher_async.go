package jetstream

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/transport"
)

// How outcomes are observed exactly once: nats.go calls the ack handler or
// the error handler of our JetStream context for each async publish (ack,
// error reply, no responders after retries, ack timeout, disconnect,
// CleanupPublisher). Each callback first claims the message's entry in
// p.pending under p.mu; a callback that finds no entry does nothing. So an
// outcome nats.go would report twice (a rare race between its reconnect
// reset and a no-responders retry), or one that arrives after Close gave up
// on the message, is ignored, and every message is settled once: by a
// callback, by the synchronous error of PublishMsgAsync, or by Close.
// AckTimeout guarantees a callback eventually comes for every sent message.

// ackResult is the observers' view of an ack or a failure.
func ackResult(ack *natsjs.PubAck, err error) PublishResult {
	res := PublishResult{Err: err}
	if err == nil && ack != nil {
		res.Duplicate, res.Stream, res.Sequence = ack.Duplicate, ack.Stream, ack.Sequence
	}
	return res
}

// enqueue registers msg as pending and sends it asynchronously. The outcome
// goes to batch (if not nil) or, for a failure, to OnAsyncError, and to done
// (the observers, if any) in every case, exactly once. An error return means
// the outcome is that error and nothing else will report it.
func (p *Publisher) enqueue(ctx context.Context, msg *nats.Msg, batch *batchWait, idx int, done func(PublishResult)) error {
	if err := p.acquire(ctx, msg); err != nil {
		return finish(done, err)
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		<-p.slots
		return finish(done, fmt.Errorf("publish %s event %s: %w", msg.Subject, eventIDOf(msg), transport.ErrClosed))
	}
	// Registered before sending: the ack can arrive before PublishMsgAsync returns.
	p.pending[msg] = pendingPub{batch: batch, idx: idx, epoch: p.epoch, done: done}
	p.inflight++
	if p.byEpoch == nil {
		p.byEpoch = make(map[uint64]int)
	}
	p.byEpoch[p.epoch]++
	p.mu.Unlock()

	p.published.Add(1)
	if _, err := p.js.PublishMsgAsync(msg); err != nil {
		p.mu.Lock()
		rec, ok := p.pending[msg]
		if !ok {
			// A callback settled it first and reported that outcome.
			p.mu.Unlock()
			return nil
		}
		delete(p.pending, msg)
		p.doneLocked(rec.epoch)
		p.mu.Unlock()
		<-p.slots
		p.failed.Add(1)
		return finish(done, publishErr(msg, err))
	}
	return nil
}

// acquire takes a pending slot, waiting for one while ctx lasts.
func (p *Publisher) acquire(ctx context.Context, msg *nats.Msg) error {
	select {
	case p.slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case p.slots <- struct{}{}:
		return nil
	case <-p.closing:
		return fmt.Errorf("publish %s event %s: %w", msg.Subject, eventIDOf(msg), transport.ErrClosed)
	case <-ctx.Done():
		return fmt.Errorf("publish %s event %s: %w: %d acks outstanding: %w",
			msg.Subject, eventIDOf(msg), transport.ErrTooManyPending, p.cfg.MaxPending, ctxErr(ctx))
	}
}

func (p *Publisher) onAck(_ natsjs.JetStream, msg *nats.Msg, ack *natsjs.PubAck) {
	p.settle(msg, ack, nil)
}

func (p *Publisher) onAsyncErr(_ natsjs.JetStream, msg *nats.Msg, err error) {
	p.settle(msg, nil, err)
}

// settle routes the outcome of msg. It runs on nats.go's goroutines (reply
// subscription, ack timer, reconnect watcher), some of which hold nats.go's
// publisher lock, so it must not block nor call into p.js: it only updates
// state and hands failures to the reporter goroutine.
func (p *Publisher) settle(msg *nats.Msg, ack *natsjs.PubAck, err error) {
	p.mu.Lock()
	rec, ok := p.pending[msg]
	if !ok {
		p.mu.Unlock()
		return
	}
	delete(p.pending, msg)
	if err != nil {
		err = publishErr(msg, refusalErr(msg, publishPermission(p.nc, msg, err), nil))
		p.failed.Add(1)
	} else {
		p.acked.Add(1)
		if ack != nil && ack.Duplicate {
			p.duplicates.Add(1)
		}
	}
	if rec.batch == nil && err != nil {
		p.asyncFailed.Add(1)
		// Never blocks: the message holds a slot until the report is
		// handled, and reports has as many places as there are slots. The
		// observers hear of it from the reporter too.
		p.reports <- asyncReport{msg: msg, err: err, epoch: rec.epoch, done: rec.done}
		p.mu.Unlock()
		return
	}
	if rec.done != nil {
		// Reported before the publish counts as done, so that Flush and
		// PublishBatch return after the observers heard of it; outside p.mu,
		// so that an observer may read Stats. The entry is already claimed:
		// nothing else settles it meanwhile.
		p.mu.Unlock()
		rec.done(ackResult(ack, err))
		p.mu.Lock()
	}
	p.doneLocked(rec.epoch)
	p.mu.Unlock()
	<-p.slots
	if rec.batch != nil {
		rec.batch.set(rec.idx, err)
	}
}

// reportLoop hands async failures to OnAsyncError, one at a time, outside
// nats.go's goroutines (the handler may block or publish again).
func (p *Publisher) reportLoop() {
	defer close(p.reporterDone)
	for {
		select {
		case r := <-p.reports:
			r.err = p.noJetStream(r.msg, r.err)
			ae := asyncErrorOf(r)
			finish(r.done, ae.Err)
			if p.cfg.OnAsyncError != nil {
				p.cfg.OnAsyncError(ae)
			} else {
				p.defaultAsyncError(ae)
			}
			p.mu.Lock()
			p.doneLocked(r.epoch)
			p.mu.Unlock()
			<-p.slots
		case <-p.stopReporter:
			return
		}
	}
}

// doneLocked counts one outcome of epoch as fully handled, and releases the
// Flush calls that waited for it. p.mu must be held.
func (p *Publisher) doneLocked(epoch uint64) {
	p.inflight--
	if p.inflight == 0 && p.idle != nil {
		close(p.idle)
		p.idle = nil
	}
	if p.byEpoch[epoch]--; p.byEpoch[epoch] <= 0 {
		delete(p.byEpoch, epoch)
	}
	if len(p.flushers) == 0 {
		return
	}
	oldest, any := uint64(0), false
	for e := range p.byEpoch {
		if !any || e < oldest {
			oldest, any = e, true
		}
	}
	kept := p.flushers[:0]
	for _, w := range p.flushers {
		if any && oldest <= w.epoch {
			kept = append(kept, w)
			continue
		}
		close(w.done)
	}
	p.flushers = kept
}

// idleChan returns a channel closed when nothing is in flight (nil if
// nothing is now) and the number in flight.
func (p *Publisher) idleChan() (<-chan struct{}, int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.inflight == 0 {
		return nil, 0
	}
	if p.idle == nil {
		p.idle = make(chan struct{})
	}
	return p.idle, p.inflight
}

// abandon gives up on everything in flight when Close's deadline passes:
// pending messages and failures not yet handed to OnAsyncError. They are
// returned in a *CloseError (batch waiters get transport.ErrClosed), and their slots
// are released; later callbacks for them find nothing to settle.
func (p *Publisher) abandon() error {
	p.mu.Lock()
	var lost []AsyncError
	var batches []pendingPub
	var unreported []func() // observers' reports, made after p.mu is released
	for msg, rec := range p.pending {
		delete(p.pending, msg)
		p.failed.Add(1)
		if rec.batch != nil {
			batches = append(batches, rec)
		}
		ae := asyncErrorOf(asyncReport{msg: msg, err: fmt.Errorf("publish %s event %s: %w: %w: no ack before the close deadline (%s)",
			msg.Subject, eventIDOf(msg), transport.ErrPublish, transport.ErrTimeout, p.cfg.CloseTimeout)})
		lost = append(lost, ae)
		if rec.done != nil {
			unreported = append(unreported, func() { finish(rec.done, ae.Err) })
		}
		p.doneLocked(rec.epoch)
		<-p.slots
	}
drain:
	for {
		select {
		case r := <-p.reports:
			lost = append(lost, asyncErrorOf(r))
			if r.done != nil {
				unreported = append(unreported, func() { finish(r.done, r.err) })
			}
			p.doneLocked(r.epoch)
			<-p.slots
		default:
			break drain
		}
	}
	p.mu.Unlock()
	for _, report := range unreported {
		report() // outside p.mu, as everywhere
	}
	for _, rec := range batches {
		rec.batch.set(rec.idx, fmt.Errorf("%w: %w before its ack", transport.ErrPublish, transport.ErrClosed))
	}
	if len(lost) == 0 {
		// Everything settled between the deadline and the lock; only a
		// report being handled right now is left, and it is reported.
		return nil
	}
	return &CloseError{Unconfirmed: lost, Timeout: p.cfg.CloseTimeout}
}

// CloseError is returned by Close when its deadline passed before every
// pending publish had its outcome. It matches transport.ErrTimeout.
type CloseError struct {
	// Unconfirmed lists the publishes whose outcome is unknown (or whose
	// failure had not been handed to OnAsyncError yet). Their Msg can be
	// published again safely (de-duplicated by event id).
	Unconfirmed []AsyncError
	// Timeout is the CloseTimeout that passed.
	Timeout time.Duration
}

func (e *CloseError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "jetstream publisher close: %d publishes not confirmed within %s:", len(e.Unconfirmed), e.Timeout)
	for i, u := range e.Unconfirmed {
		if i == 20 {
			fmt.Fprintf(&b, " ... and %d more", len(e.Unconfirmed)-i)
			break
		}
		fmt.Fprintf(&b, " %s/%s", u.Subject, u.EventID)
	}
	return b.String()
}

// Unwrap makes a CloseError match transport.ErrTimeout and each publish's error.
func (e *CloseError) Unwrap() []error {
	errs := make([]error, 0, len(e.Unconfirmed)+1)
	errs = append(errs, transport.ErrTimeout)
	for _, u := range e.Unconfirmed {
		errs = append(errs, u.Err)
	}
	return errs
}

// PublishBatch publishes events on subject, pipelined (all sent before any
// ack is awaited), and waits for every ack. All events are validated first,
// against the envelope rules and the connection's max payload: if one is
// invalid nothing is sent. The error, when not nil, is a
// *BatchError whose Errs[i] is the outcome of events[i] (nil: stored, or a
// duplicate); errors.Is works through it (e.g. transport.ErrNoStream). The wait ends
// with ctx: events not confirmed by then get transport.ErrTimeout (deadline) or ctx's
// error; acks still count in Stats when they arrive later. Pending slots are
// shared with PublishAsync.
func (p *Publisher) PublishBatch(ctx context.Context, subject string, events ...*envelope.Event) error {
	if len(events) == 0 {
		return nil
	}
	if p.isClosed() {
		err := closedErr(subject, events[0])
		if p.observing() {
			for _, e := range events {
				_, done := p.observe(ctx, eventInfo(subject, e, ModeBatch))
				finish(done, err)
			}
		}
		return err
	}
	msgs := make([]*nats.Msg, len(events))
	errs := make([]error, len(events))
	var dones []func(PublishResult)
	if p.observing() {
		dones = make([]func(PublishResult), len(events))
	}
	var invalid bool
	for i, e := range events {
		ectx := ctx
		if dones != nil {
			ectx, dones[i] = p.observe(ctx, eventInfo(subject, e, ModeBatch))
		}
		msgs[i], errs[i] = p.encode(ectx, subject, e)
		invalid = invalid || errs[i] != nil
	}
	if invalid {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("publish %s event %s: %w: another event of the batch is invalid", subject, events[i].ID, transport.ErrNotSent)
			}
			finish(doneAt(dones, i), errs[i])
		}
		return &BatchError{Errs: errs}
	}
	return p.sendBatch(ctx, msgs, dones)
}

// doneAt is dones[i], or nil without observers.
func doneAt(dones []func(PublishResult), i int) func(PublishResult) {
	if dones == nil {
		return nil
	}
	return dones[i]
}

// sendBatch pipelines msgs and waits for their outcomes; dones (nil without
// observers) has one outcome report per message.
func (p *Publisher) sendBatch(ctx context.Context, msgs []*nats.Msg, dones []func(PublishResult)) error {
	b := newBatchWait(len(msgs))
	for i, msg := range msgs {
		if err := p.enqueue(ctx, msg, b, i, doneAt(dones, i)); err != nil {
			b.set(i, err)
			for j := i + 1; j < len(msgs); j++ {
				b.set(j, finish(doneAt(dones, j), fmt.Errorf("publish %s event %s: %w: %w", msgs[j].Subject, eventIDOf(msgs[j]), transport.ErrNotSent, err)))
			}
			break
		}
	}
	errs := b.wait(ctx)
	failed := false
	for i, err := range errs {
		if err != nil {
			errs[i], failed = p.noJetStream(msgs[i], err), true
		}
	}
	if failed {
		return &BatchError{Errs: errs}
	}
	return nil
}

// batchWait collects the outcomes of one batch.
type batchWait struct {
	mu        sync.Mutex
	errs      []error
	have      []bool
	remaining int
	sealed    bool // the waiter returned: later outcomes are not recorded
	done      chan struct{}
}

func newBatchWait(n int) *batchWait {
	return &batchWait{errs: make([]error, n), have: make([]bool, n), remaining: n, done: make(chan struct{})}
}

func (b *batchWait) set(i int, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.sealed || b.have[i] {
		return
	}
	b.have[i], b.errs[i] = true, err
	b.remaining--
	if b.remaining == 0 {
		close(b.done)
	}
}

// wait returns the outcomes once all are in, or when ctx ends with the
// missing ones set to ctx's error.
func (b *batchWait) wait(ctx context.Context) []error {
	select {
	case <-b.done:
	case <-ctx.Done():
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sealed = true
	out := make([]error, len(b.errs))
	for i := range b.errs {
		if b.have[i] {
			out[i] = b.errs[i]
		} else {
			out[i] = fmt.Errorf("%w: no ack yet: %w", transport.ErrPublish, ctxErr(ctx))
		}
	}
	return out
}

// BatchError reports a batch in which at least one event failed: Errs[i]
// is the i-th event's outcome (see transport.BatchError).
type BatchError = transport.BatchError

var _ error = (*BatchError)(nil)
