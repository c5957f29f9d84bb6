// Package subscriber is the module's one Watermill message.Subscriber, for
// every transport (jetstream.Transport in production, the memory bus in
// tests): each Subscribe runs a durable consumer through the same pipeline
// as the router's groups (internal/consume), so it gets credit, leases,
// heartbeat recovery, the lease check after a freeze and a stop that
// spends no attempt, and its messages carry the transport's Delivery in
// their context (transport.FromContext), so the module's middleware works
// in a plain Watermill router.
//
// In the package map of the README it sits beside router, above transport:
// use it when you run Watermill's own message.Router (or anything that takes
// a message.Subscriber); the router package does not need it.
package subscriber

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/internal/consume"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// Unmarshal turns a stored message (subject, headers, payload) into a
// Watermill message.
type Unmarshal func(subject string, header map[string][]string, data []byte) (*message.Message, error)

// decode is the default Unmarshal: the module's marshaler (the envelope,
// CloudEvents binary and structured modes).
func decode(_ string, header map[string][]string, data []byte) (*message.Message, error) {
	msg, _, err := marshaler.Default().DecodeNATS(header, data)
	return msg, err
}

// Config configures a Subscriber. Zero fields take the documented defaults.
type Config struct {
	// Stream holds the durable. Required unless StreamForTopic is set; when
	// both are set, Stream wins.
	Stream string
	// StreamForTopic maps a topic to its stream when Stream is empty (one
	// stream per topic, as Watermill's conformance suite expects). Default
	// nil.
	StreamForTopic func(topic string) string
	// InitializeStream, when set, is called by SubscribeInitialize before the
	// durable is created, to create the topic's stream (the transport's
	// business: jetstream.Ensure, memory.Bus.AddStream). Default nil:
	// streams are provisioned elsewhere.
	InitializeStream func(ctx context.Context, stream, topic string) error
	// Durable names the durable consumer (the consumer group): every
	// Subscriber, in any process, with the same Stream and Durable shares
	// its messages. Default: derived from the topic (characters invalid in
	// a name become '_', plus a hash of the topic when any was replaced, so
	// that distinct topics never share a durable).
	Durable string
	// FilterSubjects restrict the durable. Default: the topic.
	FilterSubjects []string
	// Start, StartSeq and StartTime place a new durable. Default StartAll.
	Start     transport.StartPosition
	StartSeq  uint64
	StartTime time.Time
	// AckWait: a message neither settled nor renewed for this long is
	// redelivered. Every message the subscription holds is renewed every
	// AckWait/3 until it is acked or nacked. Default 30s.
	AckWait time.Duration
	// MaxAckPending caps the durable's unsettled messages across every
	// process (-1: no cap). Default 1000; at least FetchBatch.
	MaxAckPending int
	// Concurrency is the number of messages of one subscription sent and
	// not yet acked or nacked. Default 1: the next message is sent after
	// the previous one is settled, in stream order.
	Concurrency int
	// FetchBatch is how many messages a subscription holds at most (queued
	// and sent). Default 2 x Concurrency.
	FetchBatch int
	// CloseTimeout bounds how long a stop waits for sent messages to be
	// settled; the rest are nacked for redelivery (their contexts cancelled
	// with a cause matching transport.ErrCloseTimeout) and Close returns
	// an error matching transport.ErrCloseTimeout. Default 30s.
	CloseTimeout time.Duration
	// NakDelay is the redelivery delay of a Nack'd message from its attempt
	// (a Retried verdict a middleware decided on the delivery, such as
	// middleware.Retry's, wins). Default 1s doubling to 1m, no jitter.
	NakDelay func(attempt uint64) time.Duration
	// Unmarshal decodes each message. Default: the module's marshaler
	// (marshaler.Default().DecodeNATS).
	Unmarshal Unmarshal
	// OnUndecodable receives a message the Unmarshaler refused (err matches
	// marshaler.ErrUnmarshal). Returning nil means it is stored elsewhere
	// (middleware.DeadLetterer.Undecodable dead-letters it) and it is
	// acked; an error makes it nacked with NakDelay, so it comes back.
	// Default nil: nacked with NakDelay (and logged).
	OnUndecodable func(ctx context.Context, d *transport.Delivery, err error) error
	// AckSync makes each ack wait for the broker's confirmation.
	AckSync bool
	// Logger receives failures. Default watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

func (c *Config) setDefaults() {
	if c.AckWait == 0 {
		c.AckWait = transport.DefaultAckWait
	}
	if c.Concurrency == 0 {
		c.Concurrency = transport.DefaultConcurrency
	}
	if c.FetchBatch == 0 {
		c.FetchBatch = 2 * c.Concurrency
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = max(transport.DefaultMaxAckPending, c.FetchBatch)
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = transport.DefaultCloseTimeout
	}
	if c.NakDelay == nil {
		c.NakDelay = transport.Backoff{Jitter: -1}.Delay
	}
	if c.Unmarshal == nil {
		c.Unmarshal = decode
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports an unusable configuration (after defaults); errors match
// envelope.ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: subscriber: %s", envelope.ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Stream == "" && c.StreamForTopic == nil:
		return bad("Stream is required (or StreamForTopic)")
	case c.AckWait <= 0:
		return bad("AckWait %s must be positive", c.AckWait)
	case c.Concurrency < 1:
		return bad("Concurrency %d must be >= 1", c.Concurrency)
	case c.FetchBatch < c.Concurrency:
		return bad("FetchBatch %d must be >= Concurrency %d", c.FetchBatch, c.Concurrency)
	case c.MaxAckPending != -1 && c.MaxAckPending < c.FetchBatch:
		return bad("MaxAckPending %d must be >= FetchBatch %d (or -1)", c.MaxAckPending, c.FetchBatch)
	case c.CloseTimeout <= 0:
		return bad("CloseTimeout %s must be positive", c.CloseTimeout)
	case c.Start < transport.StartAll || c.Start > transport.StartAtTime:
		return bad("start position %d", c.Start)
	}
	if c.Stream != "" {
		if err := transport.ValidateName(c.Stream); err != nil {
			return bad("Stream: %v", err)
		}
	}
	if c.Durable != "" {
		if err := transport.ValidateName(c.Durable); err != nil {
			return bad("Durable: %v", err)
		}
	}
	return nil
}

// Subscriber is a Watermill message.Subscriber (and SubscribeInitializer)
// on a transport's durable consumers. Each Subscribe binds the durable of
// its topic; Ack acks, Nack naks after NakDelay (or the delay a middleware
// decided). Close never closes the transport or its connection.
type Subscriber struct {
	tr  transport.Transport
	cfg Config

	mu        sync.Mutex
	closed    bool
	closeDone chan struct{}
	subs      map[*subscription]struct{}
	wg        sync.WaitGroup
	closeErrs []error
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// New returns a Subscriber on tr. Errors match envelope.ErrInvalidConfig.
func New(tr transport.Transport, cfg Config) (*Subscriber, error) {
	if tr == nil {
		return nil, fmt.Errorf("%w: subscriber: nil transport", envelope.ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Subscriber{tr: tr, cfg: cfg, closeDone: make(chan struct{}), subs: make(map[*subscription]struct{})}, nil
}

// spec is the durable consumer of topic.
func (s *Subscriber) spec(topic string) (transport.ConsumerSpec, error) {
	stream := s.cfg.Stream
	if stream == "" {
		stream = s.cfg.StreamForTopic(topic)
	}
	if err := transport.ValidateName(stream); err != nil {
		return transport.ConsumerSpec{}, fmt.Errorf("%w: topic %s: stream: %w", envelope.ErrInvalidConfig, topic, err)
	}
	spec := transport.ConsumerSpec{
		Stream: stream, Durable: s.cfg.Durable, FilterSubjects: s.cfg.FilterSubjects,
		AckWait: s.cfg.AckWait, MaxAckPending: s.cfg.MaxAckPending,
		Start: s.cfg.Start, StartSeq: s.cfg.StartSeq, StartTime: s.cfg.StartTime,
	}
	if spec.Durable == "" {
		spec.Durable = DurableForTopic(topic)
	}
	if len(spec.FilterSubjects) == 0 {
		spec.FilterSubjects = []string{topic}
	}
	return spec, nil
}

// SubscribeInitialize creates the topic's stream when InitializeStream is
// set, then binds the topic's durable once (created when missing), so that
// messages published from now on are kept for it even before Subscribe.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if s.isClosed() {
		return fmt.Errorf("subscribe initialize %s: %w", topic, transport.ErrClosed)
	}
	spec, err := s.spec(topic)
	if err != nil {
		return fmt.Errorf("subscribe initialize: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), initTimeout)
	defer cancel()
	if s.cfg.InitializeStream != nil {
		if err := s.cfg.InitializeStream(ctx, spec.Stream, topic); err != nil {
			return fmt.Errorf("subscribe initialize %s: stream %s: %w", topic, spec.Stream, err)
		}
	}
	// Binding with no credit creates the durable and delivers nothing.
	cons, err := s.tr.Consume(ctx, spec, func(d *transport.Delivery) { _ = d.Settler.Release(0) })
	if err != nil {
		return fmt.Errorf("subscribe initialize %s: %w", topic, err)
	}
	cons.Stop()
	return nil
}

// initTimeout bounds SubscribeInitialize's stream and durable setup.
const initTimeout = 30 * time.Second

// Subscribe binds the durable of topic and returns its messages. At most
// Concurrency are sent and not settled; each message's context carries the
// Subscribe ctx's values and the delivery (transport.FromContext), not its
// cancellation: it is cancelled once the message is settled, or at the
// close deadline. Cancelling ctx, or Close, stops the subscription: nothing
// more is sent, what was held and not sent is released (not counted as an
// attempt), sent messages may still be settled for CloseTimeout, then the
// channel is closed.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("subscribe %s: %w", topic, transport.ErrClosed)
	}
	spec, err := s.spec(topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	subCtx, cancel := context.WithCancel(ctx)
	sub := &subscription{
		s: s, ctx: subCtx, cancel: cancel,
		out: make(chan *message.Message),
		log: s.cfg.Logger.With(watermill.LogFields{"topic": topic, "consumer": spec.Durable, "stream": spec.Stream}),
	}
	sub.sendDone = sync.NewCond(&sub.sendMu)
	run, err := consume.Start(ctx, s.tr, consume.Config{
		Spec:        spec,
		Concurrency: s.cfg.Concurrency,
		FetchBatch:  s.cfg.FetchBatch,
		// Every redelivery gets its exact attempt: a Watermill router's
		// retry middleware (middleware.Retry) reads it, whatever its limit.
		AttemptLimit: 2,
		AckSync:      s.cfg.AckSync,
		Logger:       sub.log,
	}, sub.handle)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe %s: %w", topic, err)
	}
	sub.run = run
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		run.Stop(context.Background())
		cancel()
		return nil, fmt.Errorf("subscribe %s: %w", topic, transport.ErrClosed)
	}
	s.subs[sub] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go sub.wait()
	return sub.out, nil
}

// Close stops every subscription (see Subscribe) and waits for them. It
// returns an error matching transport.ErrCloseTimeout when sent messages had to be
// nacked at the close deadline. Idempotent: a later call waits for the
// first and returns nil.
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
	s.wg.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.closeErrs) > 0 {
		return fmt.Errorf("close: %w", errors.Join(s.closeErrs...))
	}
	return nil
}

func (s *Subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// subscription is one Subscribe call: a consume.Group whose handler sends
// each message on out and waits for its Ack or Nack.
type subscription struct {
	s      *Subscriber
	ctx    context.Context // cancelled by the stop
	cancel context.CancelFunc
	run    *consume.Group
	out    chan *message.Message
	log    watermill.LoggerAdapter

	// out is closed as soon as the stop began and no worker is sending:
	// sent messages are settled after it, as Watermill expects.
	sendMu    sync.Mutex
	sendDone  *sync.Cond
	sending   int
	outClosed bool
}

// wait stops the subscription when its ctx ends (or its consumer ended for
// good): the channel is closed once no worker is sending, then the group
// stops (what it holds unsent is released, sent messages get CloseTimeout
// to be settled).
func (sub *subscription) wait() {
	defer sub.s.wg.Done()
	select {
	case <-sub.ctx.Done():
	case <-sub.run.Ended():
		if err := sub.run.Err(); err != nil {
			sub.log.Error("Subscription ended", err, nil)
		}
		sub.cancel()
	}
	sub.sendMu.Lock()
	sub.outClosed = true
	for sub.sending > 0 {
		sub.sendDone.Wait()
	}
	close(sub.out)
	sub.sendMu.Unlock()
	sub.run.StopIntake()
	ctx, cancel := context.WithTimeout(context.Background(), sub.s.cfg.CloseTimeout)
	errs := sub.run.Drain(ctx)
	cancel()
	sub.s.mu.Lock()
	delete(sub.s.subs, sub)
	sub.s.closeErrs = append(sub.s.closeErrs, errs...)
	sub.s.mu.Unlock()
	for _, err := range errs {
		sub.log.Error("Subscription stopped with unsettled messages", err, nil)
	}
}

// handle carries one delivery from its send to its settlement. A message
// not sent when the subscription stops is left undecided: the pipeline
// releases it.
func (sub *subscription) handle(ctx context.Context, d *transport.Delivery) transport.Verdict {
	cfg := &sub.s.cfg
	wm, err := cfg.Unmarshal(d.Subject, d.Header, d.Data)
	if err == nil && wm == nil {
		err = errors.New("unmarshaler returned no message")
	}
	if err != nil {
		return sub.undecodable(ctx, d, fmt.Errorf("%w: subject %s, stream %s seq %d: %w", marshaler.ErrUnmarshal, d.Subject, d.Stream, d.StreamSeq, err))
	}
	mctx, cancel := context.WithCancel(transport.NewContext(ctx, d))
	defer cancel()
	wm.SetContext(mctx)
	if !sub.send(wm) {
		return transport.Verdict{}
	}
	select {
	case <-wm.Acked():
		if v := d.Verdict; v.Acks() {
			return v // dead-lettered or skipped by a middleware
		}
		return transport.Verdict{Kind: transport.Handled}
	case <-wm.Nacked():
		if v := d.Verdict; v.Kind == transport.Retried {
			return v
		}
		return transport.Retry(cfg.NakDelay(d.Attempt), nil)
	case <-ctx.Done():
		// Cut at the close deadline: the pipeline nacked it already.
		return transport.Retry(0, context.Cause(ctx))
	}
}

// send sends wm unless the subscription stopped first (false).
func (sub *subscription) send(wm *message.Message) bool {
	sub.sendMu.Lock()
	if sub.outClosed {
		sub.sendMu.Unlock()
		return false
	}
	sub.sending++
	sub.sendMu.Unlock()
	defer func() {
		sub.sendMu.Lock()
		sub.sending--
		sub.sendMu.Unlock()
		sub.sendDone.Broadcast()
	}()
	select {
	case sub.out <- wm:
		return true
	case <-sub.ctx.Done():
		return false
	}
}

func (sub *subscription) undecodable(ctx context.Context, d *transport.Delivery, err error) transport.Verdict {
	if h := sub.s.cfg.OnUndecodable; h != nil {
		herr := h(transport.NewContext(ctx, d), d, err)
		if herr == nil {
			return transport.DeadLetter("unmarshal", err)
		}
		err = errors.Join(err, herr)
	}
	sub.log.Error("Undecodable message nacked", err, watermill.LogFields{"subject": d.Subject, "stream_seq": d.StreamSeq})
	return transport.Retry(sub.s.cfg.NakDelay(d.Attempt), err)
}

// DurableForTopic derives a durable name from a topic: the topic with
// every character invalid in a name replaced by '_', plus a short hash of
// the topic when any was replaced, so that distinct topics never share a
// durable.
func DurableForTopic(topic string) string {
	replaced := false
	name := strings.Map(func(r rune) rune {
		if !transport.NameRune(r) {
			replaced = true
			return '_'
		}
		return r
	}, topic)
	if !replaced && name != "" {
		return name
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(topic))
	return fmt.Sprintf("%s_%08x", name, h.Sum32())
}
