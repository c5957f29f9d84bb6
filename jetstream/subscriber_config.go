package jetstream

import (
	"context"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// Subscriber defaults. Each is documented on the SubscriberConfig field it fills.
const (
	DefaultSubscriberAckWait       = 30 * time.Second
	DefaultSubscriberMaxDeliver    = -1
	DefaultSubscriberMaxAckPending = 1000
	DefaultSubscriberConcurrency   = 1
	DefaultSubscriberCloseTimeout  = 30 * time.Second
	// DefaultNakDelayInitial and DefaultNakDelayMax bound DefaultNakDelay.
	DefaultNakDelayInitial = time.Second
	DefaultNakDelayMax     = time.Minute
)

// Unmarshaler turns a JetStream message into a Watermill message. It must not
// settle (ack, nak, term) the message: that is the subscriber's business.
// marshaler.JetStream satisfies it.
type Unmarshaler interface {
	Unmarshal(msg natsjs.Msg) (*message.Message, error)
}

// UndecodableHandler receives a message that the Unmarshaler refused, with the
// error (which matches ErrUndecodable). Returning nil means the message is
// safely stored elsewhere (typically the dead-letter stream), and the
// subscriber terminates it; returning an error makes the subscriber nak it
// with delay, so it comes back. ctx carries the raw message (RawMessage) and
// the Subscribe ctx's values; a stop (canceled Subscribe ctx, Close) does not
// cancel it, the close deadline (CloseTimeout after the stop) does.
type UndecodableHandler func(ctx context.Context, msg natsjs.Msg, err error) error

// SubscriberConfig configures a Subscriber. The zero value of every field
// except Stream/StreamForTopic selects the documented default.
//
// The consumer fields (Durable, FilterSubjects, DeliverPolicy, AckWait,
// MaxDeliver, BackOff, MaxAckPending) are applied to the durable consumer with
// CreateOrUpdateConsumer on every Subscribe: the server's consumer is what the
// config says, not what it was when first created. Fields the server refuses
// to change on an existing consumer (DeliverPolicy) make Subscribe fail.
type SubscriberConfig struct {
	// Stream is the stream holding the durable consumer. Required unless
	// StreamForTopic is set; when both are set, Stream wins.
	Stream string

	// StreamForTopic maps the topic given to Subscribe to a stream name when
	// Stream is empty (for example one stream per topic, as Watermill's
	// conformance suite expects). Default nil.
	StreamForTopic func(topic string) string

	// InitializeStream, when set, makes SubscribeInitialize(topic) create or
	// update the stream it returns (Name defaults to the stream of the topic)
	// before creating the consumer. Default nil: streams are provisioned
	// elsewhere (Ensure or Apply with StreamSpecs) and SubscribeInitialize only creates
	// the consumer.
	InitializeStream func(topic string) natsjs.StreamConfig

	// Durable is the durable consumer name. Every Subscriber (in any process)
	// with the same Stream and Durable shares the work of one consumer.
	// Default: derived from the topic ('.', '*', '>' and other characters
	// invalid in a name become '_', plus a short hash of the topic when
	// anything was replaced, so that distinct topics never share a durable).
	Durable string

	// FilterSubjects restricts the consumer to these subjects (wildcards
	// allowed, e.g. "auth.user.*"). Default: the topic given to Subscribe.
	FilterSubjects []string

	// DeliverPolicy is where a new durable starts. Default
	// natsjs.DeliverAllPolicy (the zero value). DeliverByStartSequencePolicy
	// needs StartSeq, DeliverByStartTimePolicy needs StartTime.
	DeliverPolicy natsjs.DeliverPolicy
	// StartSeq is the first stream sequence for DeliverByStartSequencePolicy.
	StartSeq uint64
	// StartTime is the start for DeliverByStartTimePolicy.
	StartTime time.Time

	// AckWait is how long the server waits for an ack before redelivering.
	// Default 30s, or BackOff[0] when BackOff is set (the server uses
	// BackOff[0] as the ack wait of a first delivery; setting both to
	// different values is refused).
	AckWait time.Duration

	// MaxDeliver is the number of deliveries after which the server gives up
	// on a message (and emits the MAX_DELIVERIES advisory). Default -1:
	// unlimited, because a message the server gives up on stays in its stream
	// unhandled and undead-lettered; with the module's middleware, Retry
	// enforces the attempt limit and the DeadLetterer stores the message,
	// retrying for as long as the dead-letter stream refuses it. Set a limit
	// only without them.
	MaxDeliver int

	// BackOff is the server's redelivery schedule for deliveries that time out
	// (not for Nack, which uses NakDelay). len(BackOff) must be <= MaxDeliver.
	// Default none (AckWait every time).
	BackOff []time.Duration

	// MaxAckPending caps the unacknowledged messages of the consumer across
	// all subscribers. Default 1000; -1 means unlimited. Must be >=
	// Concurrency.
	MaxAckPending int

	// Concurrency is the number of messages of one subscription in flight at
	// once: sent on the channel and not yet acked or nacked. Watermill's
	// router handles each message in its own goroutine, so with N it runs up
	// to N handlers in parallel. Default 1: stream order is kept within a
	// subscription (as long as nothing is redelivered), the channel behaves
	// like every other Watermill subscriber (next message after Ack), and
	// resource use is predictable. Raise it for throughput when handlers are
	// independent of each other's order.
	Concurrency int

	// FetchBatch is how many messages the subscription pulls ahead of its
	// handlers (nats.go's PullMaxMessages), so that the network round trip
	// hides behind handler work. A pulled message waits in the client buffer
	// until a slot is free and is NOT kept alive by InProgress there, so keep
	// FetchBatch/Concurrency times the handler duration well below AckWait.
	// Default 2*Concurrency: one message ready per slot and one on the way,
	// which keeps a buffered message's wait at about one handler duration.
	// With handlers of microseconds the pull round trip dominates: raise it
	// (e.g. 256-500) for throughput (measured on 2 cores, Concurrency 1,
	// 512 B events: about 23k msg/s at 2, about 100k at 500; see the README's
	// benchmarks).
	FetchBatch int

	// CloseTimeout bounds how long Close (or a canceled Subscribe ctx) waits
	// for in-flight messages to be acked or nacked; the rest are nacked for
	// immediate redelivery and Close returns ErrCloseTimeout. Default 30s.
	CloseTimeout time.Duration

	// AckSync makes Ack wait for the server's confirmation (DoubleAck, bounded
	// by AckWait) instead of a fire-and-forget ack. Default false: plain
	// at-least-once, a lost ack means a redelivery.
	AckSync bool

	// NakDelay gives the redelivery delay for a Nack'd message from its
	// delivery attempt (1-based). A message marked with NakWithDelay overrides
	// it. Zero or negative means immediate redelivery. Default
	// DefaultNakDelay: 1s, 2s, 4s, ... capped at 1 minute.
	NakDelay func(attempt uint64) time.Duration

	// InProgressInterval is how often an in-flight message is reported to the
	// server as being worked on (InProgress), resetting its ack timer, so a
	// long handler is not redelivered behind its back. Default one third of
	// the smallest of AckWait and the BackOff values. Must be below that
	// smallest value.
	InProgressInterval time.Duration

	// Unmarshaler decodes each message. Default
	// marshaler.JetStream{Marshaler: marshaler.Default()} (the jetevents wire
	// contract, CloudEvents binary and structured modes).
	Unmarshaler Unmarshaler

	// OnUndecodable receives messages the Unmarshaler refuses (see
	// UndecodableHandler; middleware.DeadLetterer.Undecodable is one).
	// Default nil: such a message is nacked with the NakDelay schedule (never
	// lost, never acked), until MaxDeliver if one is set.
	OnUndecodable UndecodableHandler

	// Logger receives the subscriber's logs (per message at Trace/Debug,
	// failures at Error). Default watermill.NopLogger.
	Logger watermill.LoggerAdapter
}

// DefaultNakDelay is the default NakDelay: 1s for the first attempt, doubling
// per attempt, capped at 1 minute.
func DefaultNakDelay(attempt uint64) time.Duration {
	return ExponentialNakDelay(DefaultNakDelayInitial, DefaultNakDelayMax)(attempt)
}

// ExponentialNakDelay returns a NakDelay policy: initial for attempt 1 (and
// 0), doubling per attempt, never above max, never negative (it is
// transport.Backoff without jitter: the module's one schedule).
func ExponentialNakDelay(initial, max time.Duration) func(attempt uint64) time.Duration {
	return transport.Backoff{Initial: initial, Max: max, Multiplier: 2, Jitter: -1}.Delay
}

func (c *SubscriberConfig) setDefaults() {
	if c.AckWait == 0 {
		c.AckWait = DefaultSubscriberAckWait
		if len(c.BackOff) > 0 {
			c.AckWait = c.BackOff[0]
		}
	}
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultSubscriberMaxDeliver
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = DefaultSubscriberMaxAckPending
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultSubscriberConcurrency
	}
	if c.FetchBatch == 0 && c.Concurrency > 0 {
		c.FetchBatch = 2 * c.Concurrency
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultSubscriberCloseTimeout
	}
	if c.NakDelay == nil {
		c.NakDelay = DefaultNakDelay
	}
	if c.InProgressInterval == 0 {
		c.InProgressInterval = c.minAckDeadline() / 3
	}
	if c.Unmarshaler == nil {
		c.Unmarshaler = marshaler.JetStream{Marshaler: marshaler.Default()}
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// minAckDeadline is the shortest time the server may wait for an ack of any
// delivery: AckWait, or a BackOff step if one is shorter.
func (c *SubscriberConfig) minAckDeadline() time.Duration {
	d := c.AckWait
	for _, b := range c.BackOff {
		if b > 0 && b < d {
			d = b
		}
	}
	return d
}

// Validate reports the first invalid field; errors match ErrInvalidConfig
// (and ErrInvalidName or ErrBackOffTooLong for those rules).
// NewSubscriber calls it after filling the defaults.
func (c *SubscriberConfig) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("subscriber config: %w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	badAs := func(rule error, format string, args ...any) error {
		return fmt.Errorf("subscriber config: %w: %w: %s", ErrInvalidConfig, rule, fmt.Sprintf(format, args...))
	}
	if c.Stream == "" && c.StreamForTopic == nil {
		return bad("Stream is required (or StreamForTopic)")
	}
	if c.Stream != "" && !validJetStreamName(c.Stream) {
		return badAs(ErrInvalidName, "Stream %q: a name cannot hold '.', '*', '>', '/', '\\' or whitespace", c.Stream)
	}
	if c.Durable != "" && !validJetStreamName(c.Durable) {
		return badAs(ErrInvalidName, "Durable %q: a name cannot hold '.', '*', '>', '/', '\\' or whitespace", c.Durable)
	}
	for _, f := range c.FilterSubjects {
		if f == "" || strings.ContainsAny(f, " \t\r\n") {
			return bad("FilterSubjects: invalid subject %q", f)
		}
	}
	switch c.DeliverPolicy {
	case natsjs.DeliverByStartSequencePolicy:
		if c.StartSeq == 0 {
			return bad("DeliverByStartSequencePolicy needs StartSeq")
		}
	case natsjs.DeliverByStartTimePolicy:
		if c.StartTime.IsZero() {
			return bad("DeliverByStartTimePolicy needs StartTime")
		}
	}
	if c.AckWait <= 0 {
		return bad("AckWait %s must be positive", c.AckWait)
	}
	if c.MaxDeliver < -1 || c.MaxDeliver == 0 {
		return bad("MaxDeliver %d must be >= 1 or -1 (unlimited)", c.MaxDeliver)
	}
	for i, b := range c.BackOff {
		if b <= 0 {
			return bad("BackOff[%d] %s must be positive", i, b)
		}
	}
	if len(c.BackOff) > 0 {
		if c.MaxDeliver != -1 && len(c.BackOff) > c.MaxDeliver {
			return badAs(ErrBackOffTooLong, "len(BackOff) %d must be <= MaxDeliver %d", len(c.BackOff), c.MaxDeliver)
		}
		if c.AckWait != c.BackOff[0] {
			return bad("AckWait %s differs from BackOff[0] %s (the server uses BackOff[0]); leave AckWait unset", c.AckWait, c.BackOff[0])
		}
	}
	if c.Concurrency < 1 {
		return bad("Concurrency %d must be >= 1", c.Concurrency)
	}
	if c.FetchBatch < 1 {
		return bad("FetchBatch %d must be >= 1", c.FetchBatch)
	}
	if c.MaxAckPending != -1 && c.MaxAckPending < c.Concurrency {
		return bad("MaxAckPending %d must be >= Concurrency %d (or -1)", c.MaxAckPending, c.Concurrency)
	}
	if c.CloseTimeout <= 0 {
		return bad("CloseTimeout %s must be positive", c.CloseTimeout)
	}
	if c.InProgressInterval <= 0 || c.InProgressInterval >= c.minAckDeadline() {
		return bad("InProgressInterval %s must be positive and below the ack deadline %s", c.InProgressInterval, c.minAckDeadline())
	}
	if c.NakDelay == nil || c.Unmarshaler == nil || c.Logger == nil {
		return bad("NakDelay, Unmarshaler and Logger must be set (call through NewSubscriber for defaults)")
	}
	return nil
}

// streamFor returns the stream holding topic.
func (c *SubscriberConfig) streamFor(topic string) (string, error) {
	name := c.Stream
	if name == "" {
		name = c.StreamForTopic(topic)
	}
	if !validJetStreamName(name) {
		return "", fmt.Errorf("topic %s: %w: stream name %q", topic, ErrInvalidConfig, name)
	}
	return name, nil
}

// consumerConfig is the durable consumer a subscription to topic binds to.
func (c *SubscriberConfig) consumerConfig(topic string) natsjs.ConsumerConfig {
	cc := natsjs.ConsumerConfig{
		Durable:       c.Durable,
		AckPolicy:     natsjs.AckExplicitPolicy,
		DeliverPolicy: c.DeliverPolicy,
		AckWait:       c.AckWait,
		MaxDeliver:    c.MaxDeliver,
		BackOff:       c.BackOff,
		MaxAckPending: c.MaxAckPending,
	}
	if cc.Durable == "" {
		cc.Durable = durableForTopic(topic)
	}
	switch c.DeliverPolicy {
	case natsjs.DeliverByStartSequencePolicy:
		cc.OptStartSeq = c.StartSeq
	case natsjs.DeliverByStartTimePolicy:
		t := c.StartTime
		cc.OptStartTime = &t
	}
	filters := c.FilterSubjects
	if len(filters) == 0 {
		filters = []string{topic}
	}
	// One filter travels as FilterSubject, which every server version and
	// the per-filter create API understand; several need FilterSubjects.
	if len(filters) == 1 {
		cc.FilterSubject = filters[0]
	} else {
		cc.FilterSubjects = filters
	}
	return cc
}

// validJetStreamName reports whether s can name a stream or consumer.
func validJetStreamName(s string) bool { return ValidateName(s) == nil }

// durableForTopic derives a durable name from a topic: characters invalid in
// a name become '_', and a hash of the topic is appended when anything was
// replaced, so "a.b" and "a_b" get different durables.
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
