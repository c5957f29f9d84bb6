package memory

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// Subscriber defaults, the jetstream.Subscriber's.
const (
	DefaultSubscriberConcurrency  = 1
	DefaultSubscriberCloseTimeout = 30 * time.Second
)

// Unmarshaler turns a stored message into a Watermill message. marshaler's
// *Marshaler (and watermill-nats' pkg/nats unmarshalers) satisfy it.
type Unmarshaler interface {
	Unmarshal(msg *nats.Msg) (*message.Message, error)
}

// SubscriberConfig configures a Subscriber, field for field like
// jetstream.SubscriberConfig. Zero fields take the defaults.
type SubscriberConfig struct {
	// Stream holds the durable. Required unless StreamForTopic is set; when
	// both are set, Stream wins.
	Stream string
	// StreamForTopic maps a topic to its stream when Stream is empty.
	StreamForTopic func(topic string) string
	// InitializeStream, when set, makes SubscribeInitialize(topic) add the
	// stream it returns (Name defaults to the topic's stream).
	InitializeStream func(topic string) StreamConfig
	// Durable names the durable consumer (the consumer group): every
	// Subscriber with the same Stream and Durable shares its messages.
	// Default: derived from the topic (characters invalid in a name become
	// '_', plus a hash of the topic when any was replaced).
	Durable string
	// FilterSubjects restrict the durable. Default: the topic.
	FilterSubjects []string
	// Start, StartSeq and StartTime place a new durable (default StartAll).
	Start     transport.StartPosition
	StartSeq  uint64
	StartTime time.Time
	// AckWait: a message neither settled nor renewed for this long is
	// redelivered. Default 30s.
	AckWait time.Duration
	// MaxAckPending caps the durable's unsettled messages (-1: no cap).
	// Default 1000; at least Concurrency.
	MaxAckPending int
	// Concurrency is the number of messages of one subscription in flight
	// (sent and not yet acked or nacked). Default 1: the next message is
	// sent after the previous one is settled, in stream order.
	Concurrency int
	// CloseTimeout bounds how long a stop waits for in-flight messages;
	// the rest are nacked for redelivery and Close returns ErrCloseTimeout.
	// Default 30s.
	CloseTimeout time.Duration
	// NakDelay is the redelivery delay of a Nack'd message from its attempt
	// (a NakWithDelay mark on the delivery wins). Default 1s doubling to 1m
	// (jetstream.DefaultNakDelay's schedule).
	NakDelay func(attempt uint64) time.Duration
	// InProgressInterval is how often an in-flight message's lease is
	// renewed. Default AckWait/3; must be below AckWait.
	InProgressInterval time.Duration
	// Unmarshaler decodes each message. Default marshaler.Default().
	Unmarshaler Unmarshaler
	// OnUndecodable receives a message the Unmarshaler refused (err matches
	// ErrUndecodable): nil means it is stored elsewhere and it is
	// terminated; an error makes it nacked with NakDelay. Default nil: nack
	// with NakDelay.
	OnUndecodable func(ctx context.Context, d *transport.Delivery, err error) error
	// Logger receives failures. Default watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

func (c *SubscriberConfig) setDefaults() {
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultSubscriberConcurrency
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = max(DefaultMaxAckPending, c.Concurrency)
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultSubscriberCloseTimeout
	}
	if c.NakDelay == nil {
		c.NakDelay = transport.Backoff{Initial: time.Second, Max: time.Minute, Multiplier: 2, Jitter: -1}.Delay
	}
	if c.InProgressInterval == 0 {
		c.InProgressInterval = c.AckWait / 3
	}
	if c.Unmarshaler == nil {
		c.Unmarshaler = marshaler.Default()
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Validate reports an unusable configuration (after defaults); errors
// match ErrInvalidConfig.
func (c SubscriberConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: subscriber: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	switch {
	case c.Stream == "" && c.StreamForTopic == nil:
		return bad("Stream is required (or StreamForTopic)")
	case c.AckWait <= 0:
		return bad("AckWait %s must be positive", c.AckWait)
	case c.Concurrency < 1:
		return bad("Concurrency %d must be >= 1", c.Concurrency)
	case c.MaxAckPending != -1 && c.MaxAckPending < c.Concurrency:
		return bad("MaxAckPending %d must be >= Concurrency %d (or -1)", c.MaxAckPending, c.Concurrency)
	case c.CloseTimeout <= 0:
		return bad("CloseTimeout %s must be positive", c.CloseTimeout)
	case c.InProgressInterval <= 0 || c.InProgressInterval >= c.AckWait:
		return bad("InProgressInterval %s must be positive and below AckWait %s", c.InProgressInterval, c.AckWait)
	}
	if c.Stream != "" {
		if err := validName("stream", c.Stream); err != nil {
			return err
		}
	}
	if c.Durable != "" {
		if err := validName("durable", c.Durable); err != nil {
			return err
		}
	}
	return nil
}

// Subscriber is a Watermill message.Subscriber (and SubscribeInitializer)
// on a Bus's durable consumers, the counterpart of jetstream.Subscriber:
// each Subscribe binds the durable of its topic, messages carry the
// transport.Delivery in their context (so the module's middleware works in
// a plain Watermill router), Ack acks, Nack naks with NakDelay (or the
// delivery's NakWithDelay / Terminate marks). Close never closes the Bus.
type Subscriber struct {
	b   *Bus
	cfg SubscriberConfig

	mu        sync.Mutex
	closed    bool
	closeDone chan struct{}
	subs      map[*subscription]struct{}
	wg        sync.WaitGroup
}

var (
	_ message.Subscriber           = (*Subscriber)(nil)
	_ message.SubscribeInitializer = (*Subscriber)(nil)
)

// NewSubscriber returns a Subscriber on b. Errors match ErrInvalidConfig.
func NewSubscriber(b *Bus, cfg SubscriberConfig) (*Subscriber, error) {
	if b == nil {
		return nil, fmt.Errorf("memory subscriber: %w: nil Bus", ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Subscriber{b: b, cfg: cfg, closeDone: make(chan struct{}), subs: make(map[*subscription]struct{})}, nil
}

func (s *Subscriber) streamFor(topic string) (string, error) {
	name := s.cfg.Stream
	if name == "" {
		name = s.cfg.StreamForTopic(topic)
	}
	if err := validName("stream", name); err != nil {
		return "", fmt.Errorf("topic %s: %w", topic, err)
	}
	return name, nil
}

func (s *Subscriber) spec(topic string) (transport.ConsumerSpec, error) {
	stream, err := s.streamFor(topic)
	if err != nil {
		return transport.ConsumerSpec{}, err
	}
	spec := transport.ConsumerSpec{
		Stream: stream, Durable: s.cfg.Durable, FilterSubjects: s.cfg.FilterSubjects,
		AckWait: s.cfg.AckWait, MaxAckPending: s.cfg.MaxAckPending,
		Start: s.cfg.Start, StartSeq: s.cfg.StartSeq, StartTime: s.cfg.StartTime,
	}
	if spec.Durable == "" {
		spec.Durable = durableForTopic(topic)
	}
	if len(spec.FilterSubjects) == 0 {
		spec.FilterSubjects = []string{topic}
	}
	return spec, nil
}

// SubscribeInitialize adds the topic's stream when InitializeStream is set,
// then creates the topic's durable, so that messages published from now on
// are kept for it even before Subscribe.
func (s *Subscriber) SubscribeInitialize(topic string) error {
	if s.isClosed() {
		return fmt.Errorf("subscribe initialize %s: %w", topic, ErrClosed)
	}
	spec, err := s.spec(topic)
	if err != nil {
		return fmt.Errorf("subscribe initialize: %w", err)
	}
	if s.cfg.InitializeStream != nil {
		sc := s.cfg.InitializeStream(topic)
		if sc.Name == "" {
			sc.Name = spec.Stream
		}
		if err := s.b.AddStream(sc); err != nil {
			return fmt.Errorf("subscribe initialize %s: %w", topic, err)
		}
	}
	return s.b.AddConsumer(spec)
}

// Subscribe binds the durable of topic and returns its messages. At most
// Concurrency are in flight; each message's context carries the
// Subscribe ctx's values and the delivery (transport.FromContext), not its
// cancellation: it is cancelled once the message is settled, or at the
// close deadline. Cancelling ctx or Close stops the subscription and closes
// the channel; in-flight messages may still be settled for CloseTimeout,
// then they are nacked for redelivery.
func (s *Subscriber) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("subscribe %s: %w", topic, ErrClosed)
	}
	spec, err := s.spec(topic)
	if err != nil {
		return nil, fmt.Errorf("subscribe: %w", err)
	}
	subCtx, cancel := context.WithCancel(ctx)
	sub := &subscription{
		s: s, cfg: &s.cfg, ctx: subCtx, cancel: cancel,
		msgCtx: context.WithoutCancel(ctx),
		out:    make(chan *message.Message),
		log:    s.cfg.Logger.With(watermill.LogFields{"topic": topic, "consumer": spec.Durable, "stream": spec.Stream}),
	}
	sub.cond = sync.NewCond(&sub.mu)
	cons, err := s.b.Consume(ctx, spec, sub.sink)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("subscribe %s: %w", topic, err)
	}
	sub.cons = cons
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cons.Stop()
		cancel()
		return nil, fmt.Errorf("subscribe %s: %w", topic, ErrClosed)
	}
	s.subs[sub] = struct{}{}
	s.wg.Add(1)
	s.mu.Unlock()
	go sub.run()
	cons.Credit(s.cfg.Concurrency)
	return sub.out, nil
}

// Close stops every subscription (see Subscribe) and waits for them. It
// returns an error matching ErrCloseTimeout when in-flight messages had to
// be nacked at the close deadline. Idempotent: a later call waits for the
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
	var abandoned int64
	for _, sub := range subs {
		abandoned += sub.abandoned.Load()
	}
	if abandoned > 0 {
		return fmt.Errorf("close: %d in-flight messages not settled within %s were nacked for redelivery: %w", abandoned, s.cfg.CloseTimeout, ErrCloseTimeout)
	}
	return nil
}

func (s *Subscriber) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// subscription is one Subscribe call: the consumer's sink queues
// deliveries, Concurrency workers send them and wait for their settlement,
// and run owns them all.
type subscription struct {
	s      *Subscriber
	cfg    *SubscriberConfig
	ctx    context.Context
	cancel context.CancelFunc
	msgCtx context.Context
	cons   transport.Consumer
	out    chan *message.Message
	log    watermill.LoggerAdapter

	mu       sync.Mutex
	cond     *sync.Cond
	queue    []*transport.Delivery
	stopping bool

	abandoned atomic.Int64
}

func (sub *subscription) sink(d *transport.Delivery) {
	sub.mu.Lock()
	if sub.stopping {
		sub.mu.Unlock()
		sub.settleErr(d.Settler.Nak(0), "hand back", d)
		return
	}
	sub.queue = append(sub.queue, d)
	sub.mu.Unlock()
	sub.cond.Signal()
}

// run starts the workers, waits for the stop (or the consumer's end),
// hands back what is queued, waits for the workers, closes the channel.
func (sub *subscription) run() {
	defer sub.s.wg.Done()
	defer func() {
		sub.s.mu.Lock()
		delete(sub.s.subs, sub)
		sub.s.mu.Unlock()
	}()
	var workers sync.WaitGroup
	for range sub.cfg.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			keepAlive := time.NewTicker(sub.cfg.InProgressInterval)
			stopTicker(keepAlive)
			defer keepAlive.Stop()
			for {
				d := sub.take()
				if d == nil {
					return
				}
				sub.handle(d, keepAlive)
				sub.cons.Credit(1)
			}
		}()
	}
	select {
	case <-sub.ctx.Done():
	case <-sub.cons.Done():
		if err := sub.cons.Err(); err != nil {
			sub.log.Error("Subscription ended", err, nil)
		}
		sub.cancel()
	}
	sub.mu.Lock()
	sub.stopping = true
	queued := sub.queue
	sub.queue = nil
	sub.mu.Unlock()
	sub.cond.Broadcast()
	sub.cons.Stop()
	for _, d := range queued {
		sub.settleErr(d.Settler.Nak(0), "hand back", d)
	}
	workers.Wait()
	close(sub.out)
	if n := sub.abandoned.Load(); n > 0 {
		sub.log.Error("Subscription stopped with unsettled messages", ErrCloseTimeout, watermill.LogFields{"nacked": n})
	}
}

func (sub *subscription) take() *transport.Delivery {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	for len(sub.queue) == 0 && !sub.stopping {
		sub.cond.Wait()
	}
	if sub.stopping {
		return nil
	}
	d := sub.queue[0]
	sub.queue[0] = nil
	sub.queue = sub.queue[1:]
	return d
}

// handle carries one delivery from its send to its settlement.
func (sub *subscription) handle(d *transport.Delivery, keepAlive *time.Ticker) {
	wm, err := sub.cfg.Unmarshaler.Unmarshal(&nats.Msg{Subject: d.Subject, Header: nats.Header(d.Header), Data: d.Data})
	if err == nil && wm == nil {
		err = errors.New("unmarshaler returned no message")
	}
	if err != nil {
		sub.undecodable(d, fmt.Errorf("%w: subject %s, stream %s seq %d: %w", ErrUndecodable, d.Subject, d.Stream, d.StreamSeq, err))
		return
	}
	ctx, cancel := context.WithCancelCause(transport.NewContext(sub.msgCtx, d))
	defer cancel(nil)
	wm.SetContext(ctx)
	keepAlive.Reset(sub.cfg.InProgressInterval)
	defer stopTicker(keepAlive)
	if sub.ctx.Err() != nil {
		sub.settleErr(d.Settler.Nak(0), "nak unsent", d)
		return
	}
send:
	for {
		select {
		case sub.out <- wm:
			break send
		case <-keepAlive.C:
			sub.settleErr(d.Settler.InProgress(), "in progress", d)
		case <-sub.ctx.Done():
			sub.settleErr(d.Settler.Nak(0), "nak unsent", d)
			return
		}
	}
	stop := sub.ctx.Done()
	var deadline <-chan time.Time
	for {
		select {
		case <-wm.Acked():
			sub.settleErr(d.Settler.Ack(context.Background(), false), "ack", d)
			return
		case <-wm.Nacked():
			sub.nack(d)
			return
		case <-keepAlive.C:
			sub.settleErr(d.Settler.InProgress(), "in progress", d)
		case <-stop:
			stop = nil
			t := time.NewTimer(sub.cfg.CloseTimeout)
			defer t.Stop()
			deadline = t.C
		case <-deadline:
			cancel(fmt.Errorf("%w: not settled within CloseTimeout %s of the stop, nacked for redelivery", ErrCloseTimeout, sub.cfg.CloseTimeout))
			sub.abandoned.Add(1)
			sub.settleErr(d.Settler.Nak(0), "nak at close deadline", d)
			return
		}
	}
}

func (sub *subscription) nack(d *transport.Delivery) {
	if reason, ok := d.Terminate(); ok {
		sub.settleErr(d.Settler.Term(reason), "term", d)
		return
	}
	delay, ok := d.NakDelay()
	if !ok {
		delay = sub.cfg.NakDelay(d.Attempt)
	}
	sub.settleErr(d.Settler.Nak(delay), "nak", d)
}

func (sub *subscription) undecodable(d *transport.Delivery, err error) {
	if sub.cfg.OnUndecodable != nil {
		ctx, cancel := context.WithTimeout(transport.NewContext(sub.msgCtx, d), sub.cfg.CloseTimeout)
		herr := sub.cfg.OnUndecodable(ctx, d, err)
		cancel()
		if herr == nil {
			sub.settleErr(d.Settler.Term("undecodable: stored elsewhere"), "term undecodable", d)
			return
		}
		err = errors.Join(err, herr)
	}
	sub.log.Error("Undecodable message nacked", err, watermill.LogFields{"subject": d.Subject, "stream_seq": d.StreamSeq})
	sub.settleErr(d.Settler.Nak(sub.cfg.NakDelay(d.Attempt)), "nak undecodable", d)
}

func (sub *subscription) settleErr(err error, op string, d *transport.Delivery) {
	if err != nil {
		sub.log.Error("Cannot settle message; it is redelivered after AckWait", err, watermill.LogFields{"op": op, "subject": d.Subject, "stream_seq": d.StreamSeq})
	}
}

// stopTicker stops t and drops a tick it may hold.
func stopTicker(t *time.Ticker) {
	t.Stop()
	select {
	case <-t.C:
	default:
	}
}

// durableForTopic derives a durable name from a topic, as the jetstream
// Subscriber does.
func durableForTopic(topic string) string {
	replaced := false
	name := strings.Map(func(r rune) rune {
		if strings.ContainsRune(">*. /\\\t\r\n", r) {
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
