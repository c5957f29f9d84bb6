package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// AdvisoryType is the type of the advisory JetStream publishes when a
// consumer gives up on a message after MaxDeliver deliveries.
const AdvisoryType = "io.nats.jetstream.advisory.v1.max_deliver"

// AdvisorySubject returns the subject of the MAX_DELIVERIES advisories of a
// stream's consumer; consumer "*" matches every consumer of the stream.
func AdvisorySubject(stream, consumer string) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + stream + "." + consumer
}

// MaxDeliveriesAdvisory is the JSON body of a MAX_DELIVERIES advisory.
type MaxDeliveriesAdvisory struct {
	Type       string    `json:"type"`
	ID         string    `json:"id"`
	Time       time.Time `json:"timestamp"`
	Stream     string    `json:"stream"`
	Consumer   string    `json:"consumer"`
	StreamSeq  uint64    `json:"stream_seq"`
	Deliveries uint64    `json:"deliveries"`
	Domain     string    `json:"domain,omitempty"`
}

// AdvisoryConfig configures an AdvisoryWatcher.
type AdvisoryConfig struct {
	// Stream whose consumers are watched. Required.
	Stream string
	// Consumer is the durable watched. Default "*": every consumer of Stream.
	Consumer string
	// Handler, if set, is written as HeaderHandler on the dead letters (the
	// advisory does not say which handler failed).
	Handler string
	// CaptureStream, if set, is a stream that stores the MAX_DELIVERIES
	// advisories (subjects "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>",
	// see AdvisoryCaptureStream): the watcher then reads them through a
	// durable consumer and acks each one only once its dead letter is stored,
	// so advisories emitted while no watcher runs are not lost. Default "":
	// a core NATS subscription, which sees only the advisories emitted while
	// it is subscribed (the server does not even build an advisory nobody
	// listens to).
	CaptureStream string
	// CaptureDurable is the durable consumer on CaptureStream, shared by the
	// watchers of every process (each advisory is handled by one of them).
	// Default "jetevents-dlq-<Stream>-<Consumer>" ("all" for "*").
	CaptureDurable string
	// Attempts is how many times one advisory is tried (fetch the message by
	// stream sequence, publish the dead letter) before it is reported as
	// failed. With CaptureStream, a failed advisory is also redelivered.
	// Default 5.
	Attempts int
	// Backoff spaces the attempts. Default Backoff{Initial: 250ms, Max: 5s}.
	Backoff Backoff
	// PendingLimit is how many advisories the core subscription buffers
	// before the server drops them as a slow consumer (each drop is
	// reported). Default 65536.
	PendingLimit int
	// OnError receives every advisory that could not be dead-lettered and
	// every drop; errors match ErrAdvisory. Errors are also logged. Default nil.
	OnError func(error)
	// Logger logs dead letters (error level: a message nobody settled) and
	// failures. Default watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

// Defaults of AdvisoryConfig.
const (
	DefaultAdvisoryAttempts     = 5
	DefaultAdvisoryPendingLimit = 65536
)

func (c *AdvisoryConfig) setDefaults() {
	if c.Consumer == "" {
		c.Consumer = "*"
	}
	if c.CaptureStream != "" && c.CaptureDurable == "" {
		// One durable per watched (stream, consumer): watchers of different
		// consumers must not share a durable (its filter would flip between
		// them), while the processes of one consumer share theirs.
		who := c.Consumer
		if who == "*" {
			who = "all"
		}
		c.CaptureDurable = "jetevents-dlq-" + c.Stream + "-" + who
	}
	if c.Attempts == 0 {
		c.Attempts = DefaultAdvisoryAttempts
	}
	if c.Backoff.Initial == 0 {
		c.Backoff.Initial = 250 * time.Millisecond
	}
	if c.Backoff.Max == 0 {
		c.Backoff.Max = 5 * time.Second
	}
	if c.PendingLimit == 0 {
		c.PendingLimit = DefaultAdvisoryPendingLimit
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports an unusable configuration; errors match ErrInvalidConfig.
func (c AdvisoryConfig) Validate() error {
	badName := func(s string) bool { return s == "" || strings.ContainsAny(s, ".*> \t\r\n") }
	switch {
	case badName(c.Stream):
		return fmt.Errorf("%w: Stream %q is not a stream name", ErrInvalidConfig, c.Stream)
	case c.Consumer != "*" && badName(c.Consumer):
		return fmt.Errorf("%w: Consumer %q is not a consumer name or *", ErrInvalidConfig, c.Consumer)
	case c.CaptureStream != "" && (badName(c.CaptureStream) || badName(c.CaptureDurable)):
		return fmt.Errorf("%w: CaptureStream %q / CaptureDurable %q", ErrInvalidConfig, c.CaptureStream, c.CaptureDurable)
	case c.Attempts < 1:
		return fmt.Errorf("%w: Attempts %d must be >= 1", ErrInvalidConfig, c.Attempts)
	case c.PendingLimit < 1:
		return fmt.Errorf("%w: PendingLimit %d must be >= 1", ErrInvalidConfig, c.PendingLimit)
	}
	return c.Backoff.Validate()
}

// AdvisoryCaptureStream returns the configuration of a stream that stores
// every MAX_DELIVERIES advisory, for AdvisoryConfig.CaptureStream. Limits
// retention with a week's MaxAge: advisories are small and rare, and a
// watcher down for longer than that has bigger problems.
func AdvisoryCaptureStream(name string) natsjs.StreamConfig {
	return natsjs.StreamConfig{
		Name:        name,
		Description: "jetevents: MAX_DELIVERIES advisories, read by the dead-letter watcher",
		Subjects:    []string{"$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES.>"},
		Retention:   natsjs.LimitsPolicy,
		MaxAge:      7 * 24 * time.Hour,
		Storage:     natsjs.FileStorage,
	}
}

// AdvisoryWatcher is the dead-letter path's safety net: a message that
// exhausts MaxDeliver without a verdict (the process crashed on every
// delivery, AckWait expired every time, a dead-letter publish failed on the
// last delivery) is never acked by a handler, and JetStream only announces it
// with a MAX_DELIVERIES advisory. The watcher fetches that message by stream
// sequence and dead-letters it with reason ReasonMaxDeliveriesAdvisory, under
// the same Nats-Msg-Id as the handler path, so a message dead-lettered by
// both is stored once.
//
// Core advisories are fire-and-forget: one emitted while no watcher is
// subscribed is lost. Run a watcher in every process bound to the consumer
// (the DLQ de-duplication makes the copies harmless), or set CaptureStream to
// read advisories from a stream. Start and Stop it with its owner (the
// router); its goroutine does not outlive Stop.
type AdvisoryWatcher struct {
	nc  *nats.Conn
	js  natsjs.JetStream
	dl  *DeadLetterer
	cfg AdvisoryConfig

	mu      sync.Mutex
	started bool
	stop    context.CancelFunc // stops receiving
	abort   context.CancelFunc // aborts the advisory in progress
	done    chan struct{}
	sub     *nats.Subscription
	iter    natsjs.MessagesContext
}

// NewAdvisoryWatcher returns a stopped watcher reading advisories through nc
// (never closed by it) and dead-lettering with dl. Errors match
// ErrInvalidConfig.
func NewAdvisoryWatcher(nc *nats.Conn, dl *DeadLetterer, cfg AdvisoryConfig) (*AdvisoryWatcher, error) {
	if nc == nil || dl == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn or *DeadLetterer", ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	js, err := natsjs.New(nc)
	if err != nil {
		return nil, fmt.Errorf("%w: jetstream: %w", ErrInvalidConfig, err)
	}
	return &AdvisoryWatcher{nc: nc, js: js, dl: dl, cfg: cfg}, nil
}

// Subject returns the advisory subject watched.
func (w *AdvisoryWatcher) Subject() string { return AdvisorySubject(w.cfg.Stream, w.cfg.Consumer) }

// Start subscribes and starts the watcher's goroutine. When it returns nil,
// the subscription is registered with the server (core mode) or the durable
// consumer exists (capture mode): advisories emitted from then on are seen.
func (w *AdvisoryWatcher) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.started {
		return ErrAlreadyStarted
	}
	loopCtx, stop := context.WithCancel(context.Background())
	workCtx, abort := context.WithCancel(context.Background())
	if w.cfg.CaptureStream == "" {
		sub, err := w.nc.SubscribeSync(w.Subject())
		if err != nil {
			stop()
			abort()
			return fmt.Errorf("%w: subscribe %s: %w", ErrAdvisory, w.Subject(), err)
		}
		_ = sub.SetPendingLimits(w.cfg.PendingLimit, -1)
		fctx, cancel := ctx, context.CancelFunc(func() {})
		if _, ok := ctx.Deadline(); !ok {
			fctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		}
		err = w.nc.FlushWithContext(fctx)
		cancel()
		if err != nil {
			_ = sub.Unsubscribe()
			stop()
			abort()
			return fmt.Errorf("%w: subscribe %s: %w", ErrAdvisory, w.Subject(), err)
		}
		w.sub = sub
	} else {
		cons, err := w.js.CreateOrUpdateConsumer(ctx, w.cfg.CaptureStream, natsjs.ConsumerConfig{
			Durable:       w.cfg.CaptureDurable,
			Description:   "jetevents: dead-letters messages named by MAX_DELIVERIES advisories",
			FilterSubject: w.Subject(),
			AckPolicy:     natsjs.AckExplicitPolicy,
			DeliverPolicy: natsjs.DeliverAllPolicy,
			AckWait:       time.Minute,
		})
		if err != nil {
			stop()
			abort()
			return fmt.Errorf("%w: capture consumer %s on %s: %w", ErrAdvisory, w.cfg.CaptureDurable, w.cfg.CaptureStream, err)
		}
		iter, err := cons.Messages(natsjs.PullMaxMessages(16))
		if err != nil {
			stop()
			abort()
			return fmt.Errorf("%w: capture consumer %s: %w", ErrAdvisory, w.cfg.CaptureDurable, err)
		}
		w.iter = iter
	}
	w.started, w.stop, w.abort, w.done = true, stop, abort, make(chan struct{})
	go w.run(loopCtx, workCtx, w.done, w.sub, w.iter)
	return nil
}

// Stop stops receiving advisories, lets the one in progress finish until ctx
// is done (then aborts it), waits for the goroutine and unsubscribes. In core
// mode, advisories still buffered are reported through OnError (they are
// lost); in capture mode they stay in the stream for the next Start.
func (w *AdvisoryWatcher) Stop(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		return ErrNotStarted
	}
	w.stop()
	if w.iter != nil {
		w.iter.Stop()
	}
	var err error
	select {
	case <-w.done:
	case <-ctx.Done():
		w.abort()
		<-w.done
		err = fmt.Errorf("%w: stop: %w", ErrAdvisory, ctx.Err())
	}
	w.abort()
	if w.sub != nil {
		if n, _, perr := w.sub.Pending(); perr == nil && n > 0 {
			w.report(fmt.Errorf("%w: %d advisories pending on %s at stop", ErrAdvisory, n, w.Subject()), nil)
		}
		if uerr := w.sub.Unsubscribe(); uerr != nil && !errors.Is(uerr, nats.ErrConnectionClosed) {
			err = errors.Join(err, fmt.Errorf("%w: unsubscribe: %w", ErrAdvisory, uerr))
		}
	}
	w.started, w.sub, w.iter = false, nil, nil
	return err
}

func (w *AdvisoryWatcher) run(loopCtx, workCtx context.Context, done chan<- struct{}, sub *nats.Subscription, iter natsjs.MessagesContext) {
	defer close(done)
	for {
		if sub != nil {
			m, err := sub.NextMsgWithContext(loopCtx)
			if err != nil {
				if loopCtx.Err() != nil {
					return
				}
				if errors.Is(err, nats.ErrSlowConsumer) {
					dropped, _ := sub.Dropped()
					w.report(fmt.Errorf("%w: slow consumer on %s, %d advisories dropped so far: %w", ErrAdvisory, w.Subject(), dropped, err), nil)
					continue
				}
				w.report(fmt.Errorf("%w: receive on %s: %w", ErrAdvisory, w.Subject(), err), nil)
				return
			}
			if err := w.Handle(workCtx, m.Data); err != nil {
				w.report(err, nil)
			}
			continue
		}
		m, err := iter.Next(natsjs.NextContext(loopCtx))
		if err != nil {
			if loopCtx.Err() != nil {
				return
			}
			if errors.Is(err, natsjs.ErrMsgIteratorClosed) {
				// Closed behind Stop's back (capture consumer or stream
				// deleted, connection closed): the safety net is gone; say so.
				w.report(fmt.Errorf("%w: capture consumer %s on %s stopped: %w", ErrAdvisory, w.cfg.CaptureDurable, w.cfg.CaptureStream, err), nil)
				return
			}
			continue // heartbeat or transient error: the iterator recovers
		}
		w.settleCaptured(workCtx, m)
	}
}

// settleCaptured handles one captured advisory: ack once dead-lettered, term
// when it can never be (malformed, message gone), nak for a later retry.
func (w *AdvisoryWatcher) settleCaptured(ctx context.Context, m natsjs.Msg) {
	err := w.Handle(ctx, m.Data())
	var serr error
	switch {
	case err == nil:
		serr = m.Ack()
	case errors.Is(err, ErrMessageGone) || errors.Is(err, errMalformedAdvisory):
		w.report(err, nil)
		serr = m.Term()
	default:
		w.report(err, nil)
		serr = m.NakWithDelay(w.cfg.Backoff.Max)
	}
	if serr != nil {
		w.report(fmt.Errorf("%w: settle captured advisory: %w", ErrAdvisory, serr), nil)
	}
}

var errMalformedAdvisory = errors.New("malformed MAX_DELIVERIES advisory")

// Handle turns one advisory (its JSON body) into a dead letter, trying up to
// Attempts times. It returns nil once the dead letter is stored (or was
// already), and an error matching ErrAdvisory otherwise (with ErrMessageGone
// when the stream no longer has the message). Safe for concurrent use.
func (w *AdvisoryWatcher) Handle(ctx context.Context, data []byte) error {
	var adv MaxDeliveriesAdvisory
	if err := json.Unmarshal(data, &adv); err != nil || adv.Stream == "" || adv.StreamSeq == 0 {
		return fmt.Errorf("%w: %w: %q", ErrAdvisory, errMalformedAdvisory, truncate(string(data), 256))
	}
	var err error
	for attempt := 1; ; attempt++ {
		if err = w.deadLetter(ctx, adv); err == nil || errors.Is(err, ErrMessageGone) || attempt >= w.cfg.Attempts {
			break
		}
		t := time.NewTimer(w.cfg.Backoff.Delay(uint64(attempt)))
		select {
		case <-ctx.Done():
			t.Stop()
			return fmt.Errorf("%w: stream %s seq %d: %w (last: %w)", ErrAdvisory, adv.Stream, adv.StreamSeq, ctx.Err(), err)
		case <-t.C:
		}
	}
	fields := watermill.LogFields{"stream": adv.Stream, "consumer": adv.Consumer, "stream_seq": adv.StreamSeq, "deliveries": adv.Deliveries}
	if err != nil {
		return err
	}
	w.cfg.Logger.Error("Message dead-lettered from a MAX_DELIVERIES advisory", fmt.Errorf("consumer %s gave up after %d deliveries without a verdict", adv.Consumer, adv.Deliveries), fields)
	return nil
}

func (w *AdvisoryWatcher) deadLetter(ctx context.Context, adv MaxDeliveriesAdvisory) error {
	stream, err := w.js.Stream(ctx, adv.Stream)
	if err != nil {
		return fmt.Errorf("%w: stream %s: %w", ErrAdvisory, adv.Stream, err)
	}
	raw, err := stream.GetMsg(ctx, adv.StreamSeq)
	if errors.Is(err, natsjs.ErrMsgNotFound) {
		return fmt.Errorf("%w: %w: stream %s seq %d", ErrAdvisory, ErrMessageGone, adv.Stream, adv.StreamSeq)
	}
	if err != nil {
		return fmt.Errorf("%w: get stream %s seq %d: %w", ErrAdvisory, adv.Stream, adv.StreamSeq, err)
	}
	pctx, cancel := context.WithTimeout(ctx, w.dl.cfg.PublishTimeout)
	defer cancel()
	_, err = w.dl.Send(pctx, Record{
		Subject: raw.Subject, Header: raw.Header, Data: raw.Data,
		Stream: adv.Stream, Consumer: adv.Consumer, StreamSeq: adv.StreamSeq, Deliveries: adv.Deliveries,
		Handler: w.cfg.Handler, Reason: ReasonMaxDeliveriesAdvisory,
		Err: fmt.Errorf("consumer %s gave up after %d deliveries without a verdict", adv.Consumer, adv.Deliveries),
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrAdvisory, err)
	}
	return nil
}

func (w *AdvisoryWatcher) report(err error, fields watermill.LogFields) {
	w.cfg.Logger.Error("Max-deliveries advisory not dead-lettered", err, fields)
	if w.cfg.OnError != nil {
		w.cfg.OnError(err)
	}
}

func truncate(s string, n int) string { return headerText(s, n) }
