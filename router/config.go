package router

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
)

// UnknownTypePolicy says what happens to an event no handler of its group
// is registered for.
type UnknownTypePolicy int

const (
	// UnknownTypeAck acks the event and counts it (Stats().UnknownType): a
	// group filtering auth.user.* may see types it does not care about.
	UnknownTypeAck UnknownTypePolicy = iota
	// UnknownTypeDeadLetter dead-letters it with reason "unknown_type".
	UnknownTypeDeadLetter
)

// Flusher is what the router flushes at shutdown: a publisher with pending
// asynchronous publishes (jetstream.Publisher).
type Flusher interface {
	Flush(ctx context.Context) error
}

// Defaults of Config (and of GroupConfig fields left zero).
const (
	DefaultMaxDeliver   = 5
	DefaultAckWait      = 30 * time.Second
	DefaultConcurrency  = 1
	DefaultCloseTimeout = 30 * time.Second
	// DefaultDeadLetterRetries: see Config.DeadLetterRetries.
	DefaultDeadLetterRetries = 3
)

// Config configures a Router. Zero fields take the documented defaults.
type Config struct {
	// Stream is the stream every group consumes from. Required.
	Stream string

	// MaxDeliver is the number of deliveries of an event before it is
	// dead-lettered (the consumer's MaxDeliver and the retry decision's).
	// Default 5.
	MaxDeliver int

	// AckWait is how long the server waits for a verdict before redelivering;
	// long handlers are kept alive with InProgress, so it bounds the time to
	// notice a crashed process, not handler duration. Default 30s.
	AckWait time.Duration

	// Backoff is the broker-side delay before the next delivery after a
	// handler error (NakWithDelay); the consumer never sleeps. Default 1s,
	// doubling, capped at 1m, ±20% jitter.
	Backoff middleware.Backoff

	// Concurrency is the number of events of one group handled in parallel.
	// Default 1 (stream order kept within a group).
	Concurrency int

	// CloseTimeout bounds how long shutdown waits for in-flight handlers;
	// events still in flight then are nacked for redelivery, never acked.
	// Default 30s.
	CloseTimeout time.Duration

	// HandlerTimeout, when > 0, cancels a handler's context after this long;
	// the handler's error is then retried like any other. Default 0: none.
	HandlerTimeout time.Duration

	// UnknownType says what to do with an event no handler of its group
	// accepts by type. Default UnknownTypeAck.
	UnknownType UnknownTypePolicy

	// DeadLetter configures the dead-letter path (subject prefix "dlq",
	// publish timeout, ...). Its Clock and Logger default to the router's.
	DeadLetter middleware.DeadLetterConfig

	// DeadLetterRetries is the number of deliveries the consumer keeps beyond
	// MaxDeliver to retry a dead-letter publish that failed on the last
	// delivery (the handler is not called again on them). Without them, an
	// event whose dead letter cannot be stored on its last delivery depends
	// on the MAX_DELIVERIES advisory alone. Default 3; -1 for none (the
	// consumer's MaxDeliver is then exactly MaxDeliver).
	DeadLetterRetries int

	// DisableAdvisories turns off the MAX_DELIVERIES advisory watcher that
	// dead-letters events which exhausted their deliveries without a verdict
	// (crashing processes, expiring AckWait). Default false: watched.
	DisableAdvisories bool

	// AdvisoryCaptureStream, when set, is a stream storing the MAX_DELIVERIES
	// advisories (create it with middleware.AdvisoryCaptureStream): the
	// watchers then read them through a durable consumer, so advisories
	// emitted while no router runs are not lost. Default "": a core
	// subscription, which sees the advisories emitted while the router runs.
	AdvisoryCaptureStream string

	// Idempotency, when set, skips events already handled by the same group
	// (event ids recorded per stream and consumer in the store: a
	// middleware.KVStore shared by every process of the group, or a
	// middleware.MemoryStore in tests). Default nil: off.
	Idempotency middleware.Store

	// Observe, when set, receives the Outcome of every delivery (group,
	// type, attempt, handled / retried / dead-lettered, duration): the hook
	// for metrics. It runs on the handler's goroutine; keep it fast. Default
	// nil: none.
	Observe func(Outcome)

	// Flush lists publishers whose pending async publishes Run flushes after
	// the handlers stopped. Default none.
	Flush []Flusher

	// Logger receives the router's logs. Default: log/slog's default logger
	// through watermill.NewSlogLogger.
	Logger watermill.LoggerAdapter

	// Clock stamps dead letters. Default envelope.SystemClock.
	Clock envelope.Clock
}

func (c *Config) setDefaults() {
	if c.MaxDeliver == 0 {
		c.MaxDeliver = DefaultMaxDeliver
	}
	if c.AckWait == 0 {
		c.AckWait = DefaultAckWait
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.DeadLetterRetries == 0 {
		c.DeadLetterRetries = DefaultDeadLetterRetries
	}
	if c.Logger == nil {
		c.Logger = watermill.NewSlogLogger(nil)
	}
	if c.Clock == nil {
		c.Clock = envelope.SystemClock{}
	}
	if c.DeadLetter.Clock == nil {
		c.DeadLetter.Clock = c.Clock
	}
	if c.DeadLetter.Logger == nil {
		c.DeadLetter.Logger = c.Logger
	}
}

// Validate reports a configuration that cannot work; errors match
// ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.Stream == "":
		return fmt.Errorf("%w: Stream is required", ErrInvalidConfig)
	case c.MaxDeliver < 1:
		return fmt.Errorf("%w: MaxDeliver %d must be >= 1", ErrInvalidConfig, c.MaxDeliver)
	case c.AckWait <= 0:
		return fmt.Errorf("%w: AckWait %s must be > 0", ErrInvalidConfig, c.AckWait)
	case c.Concurrency < 1:
		return fmt.Errorf("%w: Concurrency %d must be >= 1", ErrInvalidConfig, c.Concurrency)
	case c.CloseTimeout <= 0:
		return fmt.Errorf("%w: CloseTimeout %s must be > 0", ErrInvalidConfig, c.CloseTimeout)
	case c.DeadLetterRetries < -1:
		return fmt.Errorf("%w: DeadLetterRetries %d must be >= -1", ErrInvalidConfig, c.DeadLetterRetries)
	case c.HandlerTimeout < 0:
		return fmt.Errorf("%w: HandlerTimeout %s is negative", ErrInvalidConfig, c.HandlerTimeout)
	case c.UnknownType != UnknownTypeAck && c.UnknownType != UnknownTypeDeadLetter:
		return fmt.Errorf("%w: UnknownType %d", ErrInvalidConfig, c.UnknownType)
	}
	if err := c.Backoff.Validate(); err != nil {
		return fmt.Errorf("%w: Backoff: %w", ErrInvalidConfig, err)
	}
	return nil
}

// GroupConfig configures one handler group: one durable consumer whose events
// are dispatched by type to the group's handlers. Zero fields take the
// router's values.
type GroupConfig struct {
	// Durable is the consumer's durable name; every process with the same
	// Durable shares the group's work. Required.
	Durable string
	// FilterSubjects are the subjects the group consumes ("auth.user.*").
	// Required.
	FilterSubjects []string
	// MaxDeliver, AckWait, Concurrency override the router's for this group.
	MaxDeliver  int
	AckWait     time.Duration
	Concurrency int
}

// subscriberConfig is the group's durable consumer as the subscriber builds it.
func (r *Router) subscriberConfig(g *Group) jetstream.SubscriberConfig {
	return jetstream.SubscriberConfig{
		Stream:         r.cfg.Stream,
		Durable:        g.cfg.Durable,
		FilterSubjects: g.cfg.FilterSubjects,
		AckWait:        g.cfg.AckWait,
		MaxDeliver:     g.cfg.MaxDeliver + max(r.cfg.DeadLetterRetries, 0),
		Concurrency:    g.cfg.Concurrency,
		CloseTimeout:   r.cfg.CloseTimeout,
		NakDelay:       r.cfg.Backoff.Delay,
		Unmarshaler:    marshalerFor(g),
		OnUndecodable:  r.dlq.Undecodable,
		Logger:         r.cfg.Logger,
	}
}
