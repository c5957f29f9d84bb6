package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/transport"
)

// Publisher publishes events to JetStream: synchronously (Publish waits for
// the stream's ack), asynchronously (PublishAsync returns once queued, with
// bounded pending acks whose failures all reach OnAsyncError), or in
// pipelined batches. It is safe for concurrent use.
//
// Why not watermill-nats' pkg/jetstream publisher: it does one synchronous
// round trip per message (no pipelining, so a batch costs N round trips),
// marshals onto the stream's name instead of the caller's subject, has no
// async mode nor bounded pending acks, and its Close closes (drains) the
// *nats.Conn it was handed, which breaks every other user of a shared
// connection. This publisher builds on nats.go's jetstream API directly,
// encodes with marshaler.EventToNATS (no Watermill message in between), and
// never closes the caller's connection.
type Publisher struct {
	nc  *nats.Conn
	js  natsjs.JetStream
	m   *marshaler.Marshaler
	cfg PublisherConfig

	// slots is the pending-ack semaphore: one token per async or batch
	// publish from its enqueue until its outcome is fully handled (for an
	// async failure: until OnAsyncError returned). Its capacity bounds
	// reports too, so sending on reports never blocks.
	slots   chan struct{}
	reports chan asyncReport

	closing      chan struct{} // closed when Close starts: wakes blocked enqueues
	stopReporter chan struct{} // closed when Close is done waiting
	reporterDone chan struct{}

	mu       sync.Mutex
	closed   bool
	pending  map[*nats.Msg]pendingPub // sent, outcome not seen yet
	inflight int                      // pending + reports not handled yet
	idle     chan struct{}            // closed when inflight drops to 0
	// Flush waits for what was queued before it was called, not for the
	// publisher to go idle (which concurrent PublishAsync callers could put
	// off forever): each publish counts in the epoch it was queued in, and a
	// Flush closes the current epoch and waits for it and those before.
	epoch    uint64
	byEpoch  map[uint64]int
	flushers []flushWaiter
	closeErr error

	probe jetStreamProbe // transport.ErrNoStream or transport.ErrNoJetStream? (publisher_nojetstream.go)

	published, acked, duplicates, failed, asyncFailed atomic.Uint64
}

// pendingPub is what the ack callbacks need to route an outcome: to a batch
// waiter (batch != nil) or to the async error handler.
type pendingPub struct {
	batch *batchWait
	idx   int
	epoch uint64
	done  func(PublishResult) // the observers' outcome report, or nil
}

type asyncReport struct {
	msg   *nats.Msg
	err   error
	epoch uint64
	done  func(PublishResult)
}

// flushWaiter is a Flush waiting for every publish of epochs <= epoch.
type flushWaiter struct {
	epoch uint64
	done  chan struct{}
}

// PubAck is the stream's confirmation of a stored event.
type PubAck struct {
	// Stream that stored the event.
	Stream string
	// Sequence of the event in the stream (of the first copy for a duplicate).
	Sequence uint64
	// Duplicate is true when the stream already held an event with this id
	// inside its duplicates window: nothing was stored again, and the publish
	// counts as a success.
	Duplicate bool
	// Domain of the stream, if any.
	Domain string
}

// AsyncError is a PublishAsync that was sent but not confirmed.
type AsyncError struct {
	Subject   string
	EventID   string
	EventType string
	// Msg is the message as sent. Publishing it again is safe: its
	// Nats-Msg-Id (the event id) makes the stream drop a second copy inside
	// the duplicates window.
	Msg *nats.Msg
	// Err matches transport.ErrPublish and, when it applies, transport.ErrTimeout, transport.ErrNoStream,
	// envelope.ErrTooLarge, transport.ErrClosed or transport.ErrPermission.
	Err error
}

// Error is Err's message.
func (e AsyncError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("publish %s event %s: %v", e.Subject, e.EventID, transport.ErrPublish)
	}
	return e.Err.Error()
}

// Unwrap returns Err, so errors.Is works on an AsyncError.
func (e AsyncError) Unwrap() error { return e.Err }

// PublisherStats are counters since NewPublisher.
type PublisherStats struct {
	// Published counts events handed to NATS (sync, async and batch).
	Published uint64
	// Acked counts publishes confirmed by a stream, duplicates included.
	Acked uint64
	// Duplicates counts acks saying the event was already stored.
	Duplicates uint64
	// Failed counts publishes handed to NATS but not confirmed, on every path.
	Failed uint64
	// AsyncFailed counts the failures reported to OnAsyncError (part of Failed).
	AsyncFailed uint64
	// Pending is the number of async and batch publishes awaiting their
	// outcome now.
	Pending int
}

// NewPublisher returns a Publisher on nc. It does not take ownership of nc:
// Close leaves it open. Errors match envelope.ErrInvalidConfig.
func NewPublisher(nc *nats.Conn, config ...PublisherConfig) (*Publisher, error) {
	if nc == nil {
		return nil, fmt.Errorf("jetstream publisher: %w: nil *nats.Conn", envelope.ErrInvalidConfig)
	}
	cfg, err := onePublisherConfig(config)
	if err != nil {
		return nil, err
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("jetstream publisher: %w", err)
	}
	p := &Publisher{
		nc:           nc,
		m:            cfg.Marshaler,
		cfg:          cfg,
		slots:        make(chan struct{}, cfg.MaxPending),
		reports:      make(chan asyncReport, cfg.MaxPending),
		closing:      make(chan struct{}),
		stopReporter: make(chan struct{}),
		reporterDone: make(chan struct{}),
		pending:      make(map[*nats.Msg]pendingPub),
	}
	jsOpts := []natsjs.JetStreamOpt{
		natsjs.WithPublishAsyncAckHandler(p.onAck),
		natsjs.WithPublishAsyncErrHandler(p.onAsyncErr),
		// Our slots are the real bound. nats.go's own window is twice as
		// large so that it never stalls (it would fail after 200ms with
		// ErrTooManyStalledMsgs) in the instants between its bookkeeping
		// and ours.
		natsjs.WithPublishAsyncMaxPending(2 * cfg.MaxPending),
		natsjs.WithPublishAsyncTimeout(cfg.AckTimeout),
		natsjs.WithDefaultTimeout(cfg.PublishTimeout),
	}
	if cfg.Domain != "" {
		p.js, err = natsjs.NewWithDomain(nc, cfg.Domain, jsOpts...)
	} else {
		p.js, err = natsjs.New(nc, jsOpts...)
	}
	if err != nil {
		return nil, fmt.Errorf("jetstream publisher: %w: %w", envelope.ErrInvalidConfig, err)
	}
	go p.reportLoop()
	return p, nil
}

// Publish publishes e on subject and waits for the stream's ack. The wait
// ends at ctx's deadline, or after PublishTimeout (default 5s) when ctx has
// none. Correlation and causation ids in ctx travel as headers.
//
// Errors: envelope.ErrInvalidSubject or envelope.ErrInvalidEvent (nothing sent); transport.ErrNoStream
// (no stream listens on subject); transport.ErrTimeout; envelope.ErrTooLarge (with
// envelope.ErrInvalidEvent, nothing sent, when the event is over the connection's
// max payload; with transport.ErrPublish when the stream refuses it); transport.ErrClosed;
// transport.ErrPermission (a *PermissionError: the user may not publish on subject,
// or not receive acks on its inbox; NATS reports that to the connection,
// not to the publish, so it surfaces when the publish times out); other
// failures match transport.ErrPublish. A duplicate (same event id inside the stream's
// duplicates window) is a success; PublishAck tells it apart.
func (p *Publisher) Publish(ctx context.Context, subject string, e *envelope.Event, opts ...PublishOption) error {
	_, err := p.PublishAck(ctx, subject, e, opts...)
	return err
}

// PublishAck is Publish returning the stream's ack (for a scheduled
// publish: of the stored schedule).
func (p *Publisher) PublishAck(ctx context.Context, subject string, e *envelope.Event, opts ...PublishOption) (PubAck, error) {
	if !p.observing() {
		return p.publishAck(ctx, subject, e, opts)
	}
	ctx, done := p.observe(ctx, eventInfo(subject, e, ModeSync))
	ack, err := p.publishAck(ctx, subject, e, opts)
	if done != nil {
		done(PublishResult{Err: err, Duplicate: ack.Duplicate, Stream: ack.Stream, Sequence: ack.Sequence})
	}
	return ack, err
}

func (p *Publisher) publishAck(ctx context.Context, subject string, e *envelope.Event, opts []PublishOption) (PubAck, error) {
	if p.isClosed() {
		return PubAck{}, closedErr(subject, e)
	}
	msg, err := p.encodeWith(ctx, subject, e, opts)
	if err != nil {
		return PubAck{}, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, p.cfg.PublishTimeout)
		defer cancel()
	}
	p.published.Add(1)
	ack, err := p.js.PublishMsg(ctx, msg)
	if err != nil {
		p.failed.Add(1)
		return PubAck{}, p.noJetStream(msg, publishErr(msg, p.refusal(ctx, msg, publishPermission(p.nc, msg, err))))
	}
	p.acked.Add(1)
	if ack.Duplicate {
		p.duplicates.Add(1)
	}
	return PubAck{Stream: ack.Stream, Sequence: ack.Sequence, Duplicate: ack.Duplicate, Domain: ack.Domain}, nil
}

// PublishAsync validates and encodes e, queues it for sending and returns
// without waiting for the ack. When MaxPending acks are outstanding it
// blocks until one frees a slot; if ctx ends first it fails with
// transport.ErrTooManyPending (and transport.ErrTimeout for a deadline). ctx bounds only that
// wait and carries the correlation ids: the ack is awaited in the background
// for up to AckTimeout. Every ack that fails or times out reaches
// OnAsyncError exactly once and is counted in Stats().AsyncFailed; Flush and
// Close wait for all outcomes. A nil return means "queued", not "stored".
func (p *Publisher) PublishAsync(ctx context.Context, subject string, e *envelope.Event, opts ...PublishOption) error {
	var done func(PublishResult)
	if p.observing() {
		ctx, done = p.observe(ctx, eventInfo(subject, e, ModeAsync))
	}
	if p.isClosed() {
		return finish(done, closedErr(subject, e))
	}
	msg, err := p.encodeWith(ctx, subject, e, opts)
	if err != nil {
		return finish(done, err)
	}
	return p.enqueue(ctx, msg, nil, 0, done)
}

// Flush waits until every async and batch publish queued so far has its
// outcome (ack, or failure handed to OnAsyncError). It returns nil then,
// whatever the outcomes; or, when ctx ends first, an error matching
// transport.ErrTimeout (deadline) or ctx's error.
func (p *Publisher) Flush(ctx context.Context) error {
	p.mu.Lock()
	if p.inflight == 0 {
		p.mu.Unlock()
		return nil
	}
	w := flushWaiter{epoch: p.epoch, done: make(chan struct{})}
	p.epoch++
	p.flushers = append(p.flushers, w)
	p.mu.Unlock()
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		p.mu.Lock()
		n := 0
		for e, c := range p.byEpoch {
			if e <= w.epoch {
				n += c
			}
		}
		p.mu.Unlock()
		return fmt.Errorf("jetstream publisher flush: %d publishes pending: %w", n, ctxErr(ctx))
	}
}

// Stats returns the publisher's counters.
func (p *Publisher) Stats() PublisherStats {
	p.mu.Lock()
	n := p.inflight
	p.mu.Unlock()
	return PublisherStats{
		Published:   p.published.Load(),
		Acked:       p.acked.Load(),
		Duplicates:  p.duplicates.Load(),
		Failed:      p.failed.Load(),
		AsyncFailed: p.asyncFailed.Load(),
		Pending:     n,
	}
}

// Close stops accepting publishes (they fail with transport.ErrClosed), waits up to
// CloseTimeout for the outcome of every pending async and batch publish, and
// releases nats.go's async-publish state. It never closes the *nats.Conn.
// When the deadline passes it returns a *CloseError listing the publishes
// that were not confirmed (matching transport.ErrTimeout); their later acks are
// ignored. Close is idempotent: later calls return the first result.
func (p *Publisher) Close() error {
	p.mu.Lock()
	if p.closed {
		err := p.closeErr
		p.mu.Unlock()
		return err
	}
	p.closed = true
	close(p.closing)
	p.mu.Unlock()

	var err error
	if ch, _ := p.idleChan(); ch != nil {
		t := time.NewTimer(p.cfg.CloseTimeout)
		select {
		case <-ch:
		case <-t.C:
			err = p.abandon()
		}
		t.Stop()
	}
	close(p.stopReporter)
	if err == nil {
		// Idle: the reporter is not inside OnAsyncError, so this is quick.
		// After a timeout OnAsyncError may be what is stuck: do not wait.
		<-p.reporterDone
	}
	// Unsubscribes the async reply subject and stops nats.go's reconnect
	// watcher goroutine; its error callbacks find nothing left to report.
	p.js.CleanupPublisher()

	p.mu.Lock()
	p.closeErr = err
	p.mu.Unlock()
	return err
}

func (p *Publisher) isClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.closed
}

// encode validates subject and event and builds the NATS message
// (marshaler.PublishMsg: the same bytes on every transport), refusing one
// larger than the connection's max payload. Sync, async and batch publishes
// all encode here, so an oversized event is refused the same way by each,
// before anything is sent.
func (p *Publisher) encode(ctx context.Context, subject string, e *envelope.Event) (*nats.Msg, error) {
	placed, header := partition.Specs(p.cfg.Partitions).Place(subject, e)
	if header == "" {
		return p.m.PublishMsg(ctx, subject, e, p.nc.MaxPayload())
	}
	msg, err := p.m.PublishMsg(ctx, placed, e, p.nc.MaxPayload())
	if err != nil {
		return nil, err
	}
	msg.Header.Set(partition.Header, header)
	if err := marshaler.CheckMaxPayload(msg, p.nc.MaxPayload()); err != nil {
		return nil, fmt.Errorf("publish %s: event %s: %w", subject, e.ID, err)
	}
	return msg, nil
}

func closedErr(subject string, e *envelope.Event) error {
	id := ""
	if e != nil {
		id = e.ID
	}
	return fmt.Errorf("publish %s event %s: %w", subject, id, transport.ErrClosed)
}

// publishErr wraps a failure of a sent message, once, in a transport.Error
// of kind transport.ErrPublish and the specific kind that applies, keeping
// the cause.
func publishErr(msg *nats.Msg, err error) error {
	e := &transport.Error{Op: "publish", Subject: subjectOf(msg), EventID: eventIDOf(msg), Kinds: []error{transport.ErrPublish}, Err: err}
	var apiErr *natsjs.APIError
	switch {
	case errors.Is(err, transport.ErrPermission):
	case errors.Is(err, natsjs.ErrNoStreamResponse) || errors.Is(err, nats.ErrNoResponders):
		e.Kinds = append(e.Kinds, transport.ErrNoStream)
		e.Hint = fmt.Sprintf("%q: create a stream whose subjects match it (./scripts/setup-nats-streams.sh, or jetstream.Ensure with a StreamSpec)", e.Subject)
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, natsjs.ErrAsyncPublishTimeout):
		e.Kinds = append(e.Kinds, transport.ErrTimeout)
	case errors.Is(err, nats.ErrMaxPayload) ||
		(errors.As(err, &apiErr) && apiErr.ErrorCode == natsjs.JSErrCodeStreamMessageExceedsMaximum):
		e.Kinds = append(e.Kinds, envelope.ErrTooLarge)
		e.Hint = fmt.Sprintf("%d bytes", len(msg.Data))
	case errors.Is(err, natsjs.ErrJetStreamPublisherClosed):
		e.Kinds = append(e.Kinds, transport.ErrClosed)
	}
	return e
}

// ctxErr is ctx's error, matching transport.ErrTimeout when its deadline passed.
func ctxErr(ctx context.Context) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%w: %w", transport.ErrTimeout, err)
	}
	return err
}

func (p *Publisher) defaultAsyncError(ae AsyncError) {
	p.cfg.Logger.Error("jetstream async publish failed", ae.Err, watermill.LogFields{
		"subject": ae.Subject, "event_id": ae.EventID, "event_type": ae.EventType,
	})
}

func asyncErrorOf(r asyncReport) AsyncError {
	return AsyncError{
		Subject:   subjectOf(r.msg),
		EventID:   eventIDOf(r.msg),
		EventType: r.msg.Header.Get(marshaler.HeaderType),
		Msg:       r.msg,
		Err:       r.err,
	}
}
