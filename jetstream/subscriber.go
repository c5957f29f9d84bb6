package jetstream

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/transport"
)

// Why not watermill-nats' pkg/jetstream Subscriber: at v2.1.3 it closes the
// output channel while handler goroutines may still send on it (a data race
// and a possible panic under -race), panics on a message whose unmarshal fails
// (it dereferences the nil message, which a repeated header triggers with our
// marshaler), never applies its ConsumerConfigurator to the consumer it
// creates, keeps one message in flight per subscription, and drains the
// *nats.Conn on Close even when the caller owns it. This Subscriber is built
// directly on nats.go's jetstream API (durable pull consumer, Messages()).

// errCloseDeadline is the cause (context.Cause) of a message context canceled
// at the close deadline: the handler can tell it from a settlement.
func errCloseDeadline(d time.Duration) error {
	return fmt.Errorf("%w: not settled within CloseTimeout %s of the stop, nacked for redelivery", ErrCloseTimeout, d)
}

// closeGrace is how long Close waits, beyond CloseTimeout, for the final naks
// and the iterator's drain (handBackWait) before giving up on a subscription.
const closeGrace = 10 * time.Second

// handBackWait bounds the hand-back of messages pulled but never dispatched.
const handBackWait = 5 * time.Second

// nextPoll bounds each wait for the iterator's next message (see next).
const nextPoll = 100 * time.Millisecond

// initTimeout bounds the JetStream API calls of Subscribe and
// SubscribeInitialize (nats.go's own default, 5s, is short for a loaded
// server at startup).
const initTimeout = 30 * time.Second

// Subscriber consumes JetStream durable pull consumers as Watermill
// subscriptions. It implements message.Subscriber and
// message.SubscribeInitializer. Every Subscribe binds to the durable consumer
// of its topic (created or updated to match the config), so several
// Subscribers, in one process or many, bound to one durable share its
// messages. Close never closes the *nats.Conn.
type Subscriber struct {
	js  natsjs.JetStream
	cfg SubscriberConfig
	log watermill.LoggerAdapter

	mu        sync.Mutex
	closed    bool
	closeDone chan struct{} // closed when the first Close returns
	subs      map[*subscription]struct{}
	wg        sync.WaitGroup // one count per running subscription
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber returns a Subscriber on nc, which the caller keeps owning.
// It fills cfg's defaults and validates it (errors match ErrInvalidConfig).
func NewSubscriber(nc *nats.Conn, cfg SubscriberConfig) (*Subscriber, error) {
	if nc == nil {
		return nil, fmt.Errorf("new subscriber: %w: nil *nats.Conn", ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new subscriber: %w", err)
	}
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("new subscriber: %w: %w", ErrSubscribe, err)
	}
	return &Subscriber{
		js:        js,
		cfg:       cfg,
		log:       cfg.Logger,
		closeDone: make(chan struct{}),
		subs:      make(map[*subscription]struct{}),
	}, nil
}

// SubscribeInitialize creates or updates the stream of topic when
// InitializeStream is set, then creates or updates the durable consumer of
// topic, so messages published from now on are kept for it even before
// Subscribe.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if s.isClosed() {
		return fmt.Errorf("subscribe initialize %s: %w", topic, ErrSubscriberClosed)
	}
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	stream, err := s.cfg.streamFor(topic)
	if err != nil {
		return fmt.Errorf("subscribe initialize: %w", err)
	}
	if s.cfg.InitializeStream != nil {
		sc := s.cfg.InitializeStream(topic)
		if sc.Name == "" {
			sc.Name = stream
		}
		if _, err := s.js.CreateOrUpdateStream(ctx, sc); err != nil {
			return fmt.Errorf("subscribe initialize %s: stream %s: %w: %w", topic, sc.Name, ErrSubscribe, explainNoJetStream(err))
		}
	}
	_, err = s.consumer(ctx, topic)
	return err
}

// consumer creates or updates the durable consumer of topic.
func (s *Subscriber) consumer(ctx context.Context, topic string) (natsjs.Consumer, error) {
	stream, err := s.cfg.streamFor(topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	cc := s.cfg.consumerConfig(topic)
	c, err := s.js.CreateOrUpdateConsumer(ctx, stream, cc)
	if err != nil {
		if errors.Is(err, natsjs.ErrStreamNotFound) {
			return nil, fmt.Errorf("subscribe %s: %w: %w: stream %s does not exist (provision it first: jetevents streams apply, or jetstream.Ensure): %w",
				topic, ErrSubscribe, ErrNoStream, stream, err)
		}
		return nil, fmt.Errorf("subscribe %s: durable %s on stream %s: %w: %w", topic, cc.Durable, stream, ErrSubscribe, explainNoJetStream(err))
	}
	return c, nil
}

// Subscribe binds to the durable consumer of topic (creating or updating it)
// and returns the channel of its messages. At most Concurrency messages are
// in flight: each is sent, then held until it is acked or nacked (or the
// close deadline passes) before its slot is released. Ack settles it with
// Ack (or DoubleAck with AckSync); Nack with NakWithDelay (NakDelay or the
// NakWithDelay mark) or TermWithReason (Terminate mark).
//
// Each message's context carries ctx's values and the raw message
// (RawMessage) but not ctx's cancellation: it is canceled once the message is
// acked or nacked, or at the close deadline. Canceling ctx or calling Close
// stops fetching and closes the channel; in-flight messages keep a live
// context and may still be acked or nacked for CloseTimeout, after which
// their contexts are canceled and they are nacked for immediate redelivery
// (Watermill's contract, a context canceled after Close, holds once that
// deadline passes; context.Cause then matches ErrCloseTimeout). The
// OnUndecodable hook's context gets the same treatment.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("subscribe %s: %w", topic, ErrSubscriberClosed)
	}
	cctx, cancel := context.WithTimeout(ctx, initTimeout)
	c, err := s.consumer(cctx, topic)
	cancel()
	if err != nil {
		return nil, err
	}
	iter, err := c.Messages(natsjs.PullMaxMessages(s.cfg.FetchBatch))
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w: %w", topic, ErrSubscribe, err)
	}
	subCtx, cancel := context.WithCancel(ctx)
	sub := &subscription{
		s:      s,
		cfg:    &s.cfg,
		topic:  topic,
		ctx:    subCtx,
		cancel: cancel,
		msgCtx: context.WithoutCancel(ctx),
		iter:   iter,
		out:    make(chan *message.Message),
		slots:  make(chan struct{}, s.cfg.Concurrency),
		log: s.log.With(watermill.LogFields{
			"topic":    topic,
			"consumer": c.CachedInfo().Name,
			"stream":   c.CachedInfo().Stream,
		}),
	}
	sub.quiet = isNopLogger(sub.log)

	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		iter.Stop()
		cancel()
		return nil, fmt.Errorf("subscribe %s: %w", topic, ErrSubscriberClosed)
	}
	s.subs[sub] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()

	go sub.run()
	return sub.out, nil
}

// Close stops every subscription: fetching stops, output channels close,
// in-flight messages get up to CloseTimeout to be acked or nacked (their
// contexts stay live meanwhile), then the contexts of the rest are canceled,
// they are nacked for immediate redelivery and Close returns an error
// matching ErrCloseTimeout. Messages pulled but never handed out are nacked at
// once. Close does not close or drain the *nats.Conn. It is idempotent: a
// later call waits for the first to finish and returns nil.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		<-s.closeDone
		return nil
	}
	s.closed = true
	defer close(s.closeDone)
	subs := make([]*subscription, 0, len(s.subs))
	for sub := range s.subs {
		subs = append(subs, sub)
	}
	s.mu.Unlock()

	for _, sub := range subs {
		sub.cancel()
	}
	done := make(chan struct{})
	go func() {
		s.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(s.cfg.CloseTimeout + closeGrace)
	defer timer.Stop()
	select {
	case <-done:
	case <-timer.C:
		return fmt.Errorf("close: subscriptions still running after %s: %w", s.cfg.CloseTimeout+closeGrace, ErrCloseTimeout)
	}
	var abandoned int64
	for _, sub := range subs {
		abandoned += sub.abandoned.Load()
	}
	if abandoned > 0 {
		return fmt.Errorf("close: %d in-flight messages not settled within %s were nacked for redelivery: %w",
			abandoned, s.cfg.CloseTimeout, ErrCloseTimeout)
	}
	return nil
}

// isNopLogger reports whether l discards every call, so that building log
// fields for it is wasted work.
func isNopLogger(l watermill.LoggerAdapter) bool {
	switch l.(type) {
	case watermill.NopLogger, *watermill.NopLogger:
		return true
	}
	return false
}

func (s *Subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

func (s *Subscriber) remove(sub *subscription) {
	s.mu.Lock()
	delete(s.subs, sub)
	s.mu.Unlock()
	s.wg.Done()
}

// subscription is one Subscribe call: a fetch loop and Concurrency workers,
// all owned by run (which waits for them before returning). Workers live as
// long as the subscription: a goroutine per message would regrow its stack
// every time (about a tenth of the CPU per message).
type subscription struct {
	s      *Subscriber
	cfg    *SubscriberConfig
	topic  string
	ctx    context.Context // canceled by the Subscribe ctx or Close: stop
	cancel context.CancelFunc
	// msgCtx is the parent of the messages' contexts: the Subscribe ctx's
	// values without its cancellation, so that a stop does not cut in-flight
	// handlers short (each message's ctx ends at its settlement or at the
	// close deadline instead).
	msgCtx context.Context
	iter   natsjs.MessagesContext
	out    chan *message.Message
	slots  chan struct{} // one token per message in flight
	log    watermill.LoggerAdapter
	// quiet is set when log is watermill.NopLogger: the per-message Trace
	// and Debug calls (and the fields they would take) are skipped.
	quiet bool

	// The current wait bound of next, shared by successive Next calls until
	// it expires (see next). Only the fetch loop touches them.
	poll       context.Context
	pollCancel context.CancelFunc
	pollOpts   []natsjs.NextOpt

	senders   sync.WaitGroup // messages that may still send on out
	abandoned atomic.Int64   // in-flight messages nacked at the close deadline
}

// delivery is one pulled message, decoded by the fetch loop: wm and jm are
// set, or err (matching ErrUndecodable) is, with jm when it could be read.
type delivery struct {
	msg natsjs.Msg
	jm  *natsjs.MsgMetadata
	wm  *message.Message
	err error
}

// run owns the subscription's lifetime: fetch until stopped, close the
// channel once no worker can send on it, wait for in-flight messages (each
// bounded by CloseTimeout after the stop), then deregister.
func (sub *subscription) run() {
	defer sub.s.remove(sub)
	defer sub.cancel()
	work := make(chan delivery)
	var workers sync.WaitGroup
	for range sub.cfg.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			// One keep-alive ticker per worker, armed per message: a ticker
			// per message cost an allocation and a timer start and stop.
			keepAlive := time.NewTicker(sub.cfg.InProgressInterval)
			stopTicker(keepAlive)
			defer keepAlive.Stop()
			for d := range work {
				sub.handle(d, keepAlive)
			}
		}()
	}
	sub.fetch(work)
	if sub.pollCancel != nil {
		sub.pollCancel()
	}
	close(work)
	sub.handBack()
	sub.senders.Wait()
	close(sub.out)
	workers.Wait()
	if n := sub.abandoned.Load(); n > 0 {
		sub.log.Error("Subscription stopped with unsettled messages", ErrCloseTimeout, watermill.LogFields{"nacked": n})
	}
}

// stopTicker stops t and drops a tick it may have buffered, so that the
// next Reset starts a full interval with nothing stale in t.C (Go 1.23's
// timers never deliver a stale tick after Stop; the drain keeps this true
// under GODEBUG=asynctimerchan=1 as well).
func stopTicker(t *time.Ticker) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
}

// fetch takes messages from the iterator, decodes each, then waits for a
// free slot and hands it to the workers, until the subscription is stopped
// or the iterator ends. Decoding before the wait takes it off the critical
// path: while a handler works on message N, message N+1 is pulled and
// decoded. At most one decoded message waits here; the rest stay in the
// client buffer (FetchBatch). A slot is taken before the handoff, so a
// message never waits for a worker (only for the instant the worker that
// freed the slot needs to come back).
func (sub *subscription) fetch(work chan<- delivery) {
	for {
		msg, ok := sub.next()
		if !ok {
			return
		}
		d := sub.decode(msg)
		select {
		case sub.slots <- struct{}{}:
		case <-sub.ctx.Done():
			// Stopped while it waited for a slot: never sent, so hand it
			// back at once.
			sub.settleErr(msg.Nak(), "nak unsent", msg)
			return
		}
		sub.senders.Add(1)
		work <- d
	}
}

// decode reads the delivery metadata and unmarshals msg into a Watermill
// message carrying the Metadata* keys of this delivery.
func (sub *subscription) decode(msg natsjs.Msg) delivery {
	jm, err := msg.Metadata()
	if err != nil {
		return delivery{msg: msg, err: fmt.Errorf("%w: not a JetStream delivery: %w", ErrUndecodable, err)}
	}
	wm, err := sub.cfg.Unmarshaler.Unmarshal(msg)
	if err == nil && wm == nil {
		err = errors.New("unmarshaler returned no message")
	}
	if err != nil {
		return delivery{msg: msg, jm: jm, err: fmt.Errorf("%w: subject %s, stream %s seq %d: %w",
			ErrUndecodable, msg.Subject(), jm.Stream, jm.Sequence.Stream, err)}
	}
	if wm.Metadata == nil {
		wm.Metadata = make(message.Metadata)
	}
	setDeliveryMetadata(wm.Metadata, msg.Subject(), jm)
	return delivery{msg: msg, jm: jm, wm: wm}
}

// next waits for the iterator's next message; false when the subscription
// is stopped or the iterator ended.
//
// Each wait is cut at nextPoll because nats.go v1.55's Messages() iterator
// only re-checks whether it must send a new pull request when Next is
// entered, and skips that check while its pull goroutine is still flagging
// the previous request as in flight. If the server answers the previous
// request before the flag is cleared (common on a loaded machine), the
// iterator waits with no request outstanding until its missed-heartbeat timer
// fires: a 30 s stall with the default expiry. Re-entering Next bounds that
// stall to nextPoll; an idle subscription costs one timer per nextPoll.
//
// The bound is one context with a nextPoll timeout, shared by the Next calls
// made until it expires, then replaced: no single wait outlasts nextPoll (a
// call made late in its life waits less), and a busy subscription makes one
// context per nextPoll instead of one per message.
func (sub *subscription) next() (natsjs.Msg, bool) {
	for {
		if sub.poll == nil || sub.poll.Err() != nil {
			if sub.pollCancel != nil {
				sub.pollCancel()
			}
			sub.poll, sub.pollCancel = context.WithTimeout(sub.ctx, nextPoll)
			sub.pollOpts = []natsjs.NextOpt{natsjs.NextContext(sub.poll)}
		}
		msg, err := sub.iter.Next(sub.pollOpts...)
		switch {
		case err == nil:
			return msg, true
		case sub.ctx.Err() != nil:
			return nil, false
		case errors.Is(err, context.DeadlineExceeded):
			continue
		case errors.Is(err, natsjs.ErrMsgIteratorClosed):
			// The connection closed or the consumer was deleted: nothing
			// more will come; end the subscription (closing the channel
			// tells the router the handler stopped).
			sub.log.Error("Subscription ended", fmt.Errorf("%w: %w", ErrSubscribe, err), nil)
			return nil, false
		default:
			// Missed heartbeats, reconnects: nats.go re-pulls by itself.
			sub.log.Debug("Pull interrupted, retrying", watermill.LogFields{"err": err.Error()})
		}
	}
}

// handBack drains the client buffer after a stop: messages pulled but never
// dispatched are nacked so that another subscriber gets them at once instead
// of after AckWait. It reads until the iterator reports the end of the
// drain, for at most handBackWait.
func (sub *subscription) handBack() {
	sub.iter.Drain()
	ctx, cancel := context.WithTimeout(context.Background(), handBackWait)
	defer cancel()
	for {
		msg, err := sub.iter.Next(natsjs.NextContext(ctx))
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, natsjs.ErrMsgIteratorClosed) {
				return
			}
			continue
		}
		sub.settleErr(msg.Nak(), "nak undispatched", msg)
	}
}

// msgLog describes one message for the logs; its fields are built on the
// first log call that needs them, not per message.
type msgLog struct {
	uuid    string
	subject string
	seq     uint64
	attempt uint64
	f       watermill.LogFields
}

func (l *msgLog) fields() watermill.LogFields {
	if l.f == nil {
		l.f = watermill.LogFields{"uuid": l.uuid, "subject": l.subject, "stream_seq": l.seq, "attempt": l.attempt}
	}
	return l.f
}

// trace logs at Trace unless the logger discards everything.
func (sub *subscription) trace(msg string, l *msgLog) {
	if !sub.quiet {
		sub.log.Trace(msg, l.fields())
	}
}

// handle carries one decoded message from its send to its settlement. It
// owns a slot. keepAlive is the worker's ticker, stopped on entry and left
// stopped on return.
func (sub *subscription) handle(d delivery, keepAlive *time.Ticker) {
	sent := false
	markSent := func() {
		if !sent {
			sent = true
			sub.senders.Done()
		}
	}
	defer func() {
		markSent()
		<-sub.slots
	}()

	msg := d.msg
	if d.err != nil {
		markSent()
		sub.undecodable(msg, d.jm, d.err)
		return
	}
	wm, jm := d.wm, d.jm
	attempt := deliveryAttempt(jm)
	// The delivery view lets the module's middleware (retry, dead letters,
	// idempotency) work in a plain Watermill router too; their verdict marks
	// on it are read by nack.
	dv := &transport.Delivery{
		Subject: msg.Subject(), Header: msg.Headers(), Data: msg.Data(),
		Stream: jm.Stream, Consumer: jm.Consumer,
		StreamSeq: jm.Sequence.Stream, ConsumerSeq: jm.Sequence.Consumer,
		Attempt: attempt, Pending: jm.NumPending, Published: jm.Timestamp, Received: time.Now(),
	}
	ctx, cancel := context.WithCancelCause(transport.NewContext(withRawMessage(sub.msgCtx, msg), dv))
	defer cancel(nil)
	wm.SetContext(ctx)

	ml := msgLog{uuid: wm.UUID, subject: msg.Subject(), seq: jm.Sequence.Stream, attempt: attempt}
	keepAlive.Reset(sub.cfg.InProgressInterval)
	defer stopTicker(keepAlive)

	if sub.ctx.Err() != nil {
		// Stopped before the send: don't hand out anything new.
		sub.settleErr(msg.Nak(), "nak unsent", msg)
		return
	}
send:
	for {
		select {
		case sub.out <- wm:
			break send
		case <-keepAlive.C:
			sub.settleErr(msg.InProgress(), "in progress", msg)
		case <-sub.ctx.Done():
			// Stopping before anyone took it: hand it back at once.
			sub.settleErr(msg.Nak(), "nak unsent", msg)
			return
		}
	}
	markSent()
	sub.trace("Message sent", &ml)

	stop := sub.ctx.Done()
	var deadline <-chan time.Time
	for {
		select {
		case <-wm.Acked():
			sub.ack(msg, &ml)
			return
		case <-wm.Nacked():
			sub.nack(wm, dv, msg, attempt, &ml)
			return
		case <-keepAlive.C:
			sub.settleErr(msg.InProgress(), "in progress", msg)
		case <-stop:
			stop = nil
			t := time.NewTimer(sub.cfg.CloseTimeout)
			defer t.Stop()
			deadline = t.C
		case <-deadline:
			// Tell the handler first: whatever it does now comes too late.
			cancel(errCloseDeadline(sub.cfg.CloseTimeout))
			sub.abandoned.Add(1)
			sub.settleErr(msg.Nak(), "nak at close deadline", msg)
			sub.log.Info("Message not settled before the close deadline, nacked for redelivery", ml.fields())
			return
		}
	}
}
