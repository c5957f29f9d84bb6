package router

import (
	"context"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/idempotency"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/transport"
)

// UnknownTypePolicy says what happens to an event no handler of its group
// is registered for.
type UnknownTypePolicy int

const (
	// UnknownTypeAck acks the event and counts it (Stats().UnknownType): a
	// group filtering auth.user.> may see types it does not care about.
	UnknownTypeAck UnknownTypePolicy = iota
	// UnknownTypeDeadLetter dead-letters it with reason "unknown_type".
	UnknownTypeDeadLetter
)

// Flusher is what the router flushes at shutdown: a publisher with pending
// asynchronous publishes (jetstream.Publisher).
type Flusher interface {
	Flush(ctx context.Context) error
}

// Defaults of Config (and of GroupConfig fields left zero). This is the one
// table of the router's defaults; the values shared with lower packages are
// theirs.
// The router's defaults are the consumer defaults every package shares
// (transport.DefaultAckWait, transport.DefaultMaxAckPending, transport.DefaultConcurrency,
// transport.DefaultCloseTimeout), the retry policy's (middleware.DefaultMaxDeliver),
// and the pipeline's own below.
const (
	// defaultFetchBatch: messages a group holds (queued and in handlers).
	// Measured on 2 cores, 512 B events, Concurrency 1, against a raw
	// nats.go consumer pulling 500: about 0.55x of it at 16, 0.75x at 64,
	// 0.8x at 128, 0.9x at 256, 0.95x at 512. Every held message is leased,
	// so slow handlers are safe with any value; with slow handlers and
	// several processes on one durable, a smaller value spreads the work
	// more evenly (each process holds at most FetchBatch).
	defaultFetchBatch = 256
)

// Config configures a Router. Zero fields take the documented defaults.
type Config struct {
	// Stream is the stream every group consumes from. Required.
	Stream string

	// MaxDeliver is the number of times a handler is called for an event
	// before it is dead-lettered (reason max_deliver). The router enforces it
	// from the delivery count before calling the handler: a delivery past it
	// (the process crashed on the last attempt, or the dead-letter publish
	// failed) goes straight to the dead-letter stream. Deliveries released
	// unhandled by a stop are not attempts; a crash, or a freeze past
	// AckWait, counts for every event the process held. The server's own
	// max_deliver is unlimited, so it never drops an event the router has
	// not stored elsewhere. Default 5.
	MaxDeliver int

	// AckWait is how long the server waits for a verdict or a lease renewal
	// before redelivering. Every held message is renewed (InProgress) every
	// AckWait/3 until settled, so it bounds the time to notice a crashed
	// process, not handler duration. Default 30s.
	AckWait time.Duration

	// Backoff is the broker-side delay before the next delivery after a
	// handler error (NakWithDelay); the consumer never sleeps. Default 1s,
	// doubling, capped at 1m, ±20% jitter.
	Backoff transport.Backoff

	// Concurrency is the number of events of one group handled in parallel.
	// Default 1 (stream order kept within a group).
	Concurrency int

	// FetchBatch is how many messages a group holds at most: queued for its
	// workers and in their handlers. Pulls are sized by it (one pull asks for
	// half of it while the other half is handled). Every held message is
	// leased (InProgress every AckWait/3) until settled, so a slow handler
	// does not let the queue behind it expire. Default 256 (see
	// defaultFetchBatch for the measurements); at least Concurrency.
	FetchBatch int

	// MaxAckPending caps the messages of a group's durable delivered and not
	// settled, across every process bound to it (-1: no cap). Default 1000;
	// at least FetchBatch.
	MaxAckPending int

	// Heartbeat is the idle heartbeat of the pulls: a pull that brings
	// neither a message nor a heartbeat for two Heartbeats is declared dead
	// (lost request, leader change, server restart), the durable is checked
	// (recreated from the group's config when it is gone) and pulling
	// resumes. Used by New (the jetstream transport's setting; with
	// NewWithTransport it is the transport's business). Default 5s.
	Heartbeat time.Duration

	// MemberTTL is how long a process of a partitioned group stays listed
	// after its last beat (it beats three times per MemberTTL): a process
	// that dies drops out after it, and its partitions are spread over the
	// others. Every process of a group must use the same. Used by New (the
	// jetstream transport's setting; with NewWithTransport it is the
	// transport's business). Default 5s; at least 1s.
	MemberTTL time.Duration

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
	// publish timeout, ...). Its Clock defaults to the router's.
	DeadLetter middleware.DeadLetterConfig

	// AckSync makes each ack wait for the server's confirmation. Default
	// false: a lost ack means a redelivery (at-least-once either way).
	AckSync bool

	// Middleware are Watermill handler middlewares of the user (Watermill's
	// metrics, throttle, circuit breaker, tracing...), run for every
	// delivery of every group, outermost first, between Retry and
	// Idempotency:
	//
	//	Correlation -> Logging -> [Observe] -> DeadLetterer -> Retry -> Middleware... -> Idempotency -> Timeout -> Recoverer -> handler
	//
	// So they see each attempt with the correlation id in its context, an
	// error they return is retried and finally dead-lettered like a
	// handler's, and a duplicate that Idempotency skips passes through them
	// (they wrap it: the message's metadata holds middleware.MetadataSkipped
	// when it returns) without reaching the handler. Messages they return
	// are dropped (the router publishes nothing). Default none.
	Middleware []message.HandlerMiddleware

	// Idempotency, when set, skips events already handled by the same group
	// (event ids recorded per stream and consumer in the store: a
	// jetstream.KVStore shared by every process of the group, or a
	// idempotency.MemoryStore in tests). Default nil: off.
	Idempotency idempotency.Store

	// Observe, when set, receives the Outcome of every delivery (group,
	// type, attempt, handled / retried / dead-lettered, duration): the hook
	// for metrics. It runs on the handler's goroutine; keep it fast. Default
	// nil: none.
	Observe func(Outcome)

	// Instrument are handler middlewares run outermost, around the whole
	// stack of every group, once per delivery: tracing and metrics hooks
	// (see hooks.go). Default none: nothing is wrapped.
	Instrument []message.HandlerMiddleware

	// Flush lists publishers whose pending async publishes Run flushes after
	// the handlers stopped. Default none.
	Flush []Flusher

	// Logger receives the router's logs: per event at debug, retries and
	// stalls at warn, dead letters and failures at error. Default
	// middleware.NewSlogLogger(nil): log/slog's default logger, with a warn
	// level.
	Logger watermill.LoggerAdapter

	// Clock stamps dead letters. Default envelope.SystemClock.
	Clock envelope.Clock

	// OrderKey is every group's OrderKey unless the group sets its own
	// (see GroupConfig.OrderKey). Default nil: no keyed order.
	OrderKey OrderKey
}

func (c *Config) setDefaults() {
	if c.MaxDeliver == 0 {
		c.MaxDeliver = middleware.DefaultMaxDeliver
	}
	if c.AckWait == 0 {
		c.AckWait = transport.DefaultAckWait
	}
	if c.Concurrency == 0 {
		c.Concurrency = transport.DefaultConcurrency
	}
	if c.FetchBatch == 0 {
		c.FetchBatch = max(defaultFetchBatch, c.Concurrency)
	}
	if c.MaxAckPending == 0 {
		c.MaxAckPending = max(transport.DefaultMaxAckPending, c.FetchBatch)
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = transport.DefaultCloseTimeout
	}
	if c.Logger == nil {
		c.Logger = middleware.NewSlogLogger(nil)
	}
	if c.Clock == nil {
		c.Clock = envelope.SystemClock{}
	}
	if c.DeadLetter.Clock == nil {
		c.DeadLetter.Clock = c.Clock
	}
}

// Validate reports a configuration that cannot work; errors match
// envelope.ErrInvalidConfig.
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", envelope.ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	if c.Stream == "" {
		return bad("Stream is required")
	}
	if err := transport.ValidateName(c.Stream); err != nil {
		return fmt.Errorf("%w: Stream: %w", envelope.ErrInvalidConfig, err)
	}
	switch {
	case c.MaxDeliver < 1:
		return bad("MaxDeliver %d must be >= 1", c.MaxDeliver)
	case c.AckWait <= 0:
		return bad("AckWait %s must be > 0", c.AckWait)
	case c.Concurrency < 1:
		return bad("Concurrency %d must be >= 1", c.Concurrency)
	case c.FetchBatch < c.Concurrency:
		return bad("FetchBatch %d must be >= Concurrency %d", c.FetchBatch, c.Concurrency)
	case c.MaxAckPending != -1 && c.MaxAckPending < c.FetchBatch:
		return bad("MaxAckPending %d must be >= FetchBatch %d (or -1)", c.MaxAckPending, c.FetchBatch)
	case c.Heartbeat < 0:
		return bad("Heartbeat %s is negative", c.Heartbeat)
	case c.MemberTTL < 0:
		return bad("MemberTTL %s is negative", c.MemberTTL)
	case c.CloseTimeout <= 0:
		return bad("CloseTimeout %s must be > 0", c.CloseTimeout)
	case c.HandlerTimeout < 0:
		return bad("HandlerTimeout %s is negative", c.HandlerTimeout)
	case c.UnknownType != UnknownTypeAck && c.UnknownType != UnknownTypeDeadLetter:
		return bad("UnknownType %d", c.UnknownType)
	}
	for i, m := range c.Middleware {
		if m == nil {
			return bad("Middleware[%d] is nil", i)
		}
	}
	if err := c.validateHooks(); err != nil {
		return err
	}
	if err := c.Backoff.Validate(); err != nil {
		return fmt.Errorf("router config: Backoff: %w", err)
	}
	return nil
}

// StartPosition is where a group's new durable starts in the stream. A
// durable that exists keeps its position.
type StartPosition = transport.StartPosition

// Start positions of a group's new durable.
const (
	// StartAll: every event the stream holds (the default).
	StartAll = transport.StartAll
	// StartNew: only events stored after the durable is created, for a
	// projection that must not replay the stream's history.
	StartNew = transport.StartNew
	// StartAtSequence: from GroupConfig.StartSeq.
	StartAtSequence = transport.StartAtSequence
	// StartAtTime: from the first event stored at or after
	// GroupConfig.StartTime.
	StartAtTime = transport.StartAtTime
)

// GroupConfig configures one handler group: one durable consumer whose events
// are dispatched by type to the group's handlers. Zero fields take the
// router's values.
type GroupConfig struct {
	// Durable is the consumer's durable name; every process with the same
	// Durable shares the group's work. Required.
	Durable string
	// FilterSubjects are the subjects the group consumes. Use '>' for every
	// level below a prefix ("auth.user.>" takes auth.user.created and
	// auth.user.role.updated); '*' matches exactly one token ("auth.user.*"
	// does not take auth.user.role.updated). Required.
	FilterSubjects []string
	// MaxDeliver, AckWait, Concurrency, FetchBatch and MaxAckPending override
	// the router's for this group.
	MaxDeliver    int
	AckWait       time.Duration
	Concurrency   int
	FetchBatch    int
	MaxAckPending int
	// Start places the group's durable when it is created (default
	// StartAll); StartSeq and StartTime go with StartAtSequence and
	// StartAtTime. An existing durable keeps its position.
	Start     StartPosition
	StartSeq  uint64
	StartTime time.Time
	// Middleware are appended to the router's Middleware for this group
	// (same position in the stack).
	Middleware []message.HandlerMiddleware
	// OrderKey, when set, makes the group keyed: events with the same key
	// (an entity: a user, an order) are handled one at a time in stream
	// order, events of different keys in parallel up to Concurrency. A
	// failing event holds its key until it succeeds or is dead-lettered;
	// then the key's next event runs (the dead letter names the key:
	// Dlq-Order-Key). See README "Ordering". Default: the router's
	// OrderKey (nil: no keyed order).
	OrderKey OrderKey
	// Partitions, when its Count is set, spreads the group over the live
	// processes that run it: the key space is cut in Count partitions
	// (placed in the subjects by publishers sharing the same Spec: see
	// package partition), each read by one process at a time through a
	// durable of its own (<Durable>-p<n>), and the processes share the
	// partitions evenly, taking over those of a process that stops or
	// dies. The group's own durable (<Durable>, on FilterSubjects) reads
	// the events published without a partition, as one more unit. Each
	// FilterSubjects must be covered by the Spec's Subjects and must not
	// match placed subjects (partition.CheckGroupFilter). OrderKey
	// defaults to the Spec's Key; Concurrency and FetchBatch apply to each
	// partition the process runs. See README "Ordering". Default: not
	// partitioned.
	Partitions partition.Spec
}

// groupDefaults fills the group's zero fields from the router's config and
// validates it.
func (g *GroupConfig) fill(c Config) error {
	if g.MaxDeliver == 0 {
		g.MaxDeliver = c.MaxDeliver
	}
	if g.AckWait == 0 {
		g.AckWait = c.AckWait
	}
	if g.Concurrency == 0 {
		g.Concurrency = c.Concurrency
	}
	if g.FetchBatch == 0 {
		g.FetchBatch = max(c.FetchBatch, g.Concurrency)
	}
	if g.OrderKey == nil {
		g.OrderKey = c.OrderKey
	}
	if g.OrderKey == nil && g.partitioned() {
		g.OrderKey = g.Partitions.Key
	}
	if g.MaxAckPending == 0 {
		g.MaxAckPending = c.MaxAckPending
		if g.MaxAckPending != -1 {
			g.MaxAckPending = max(g.MaxAckPending, g.FetchBatch)
		}
	}
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: group %s: %s", envelope.ErrInvalidConfig, g.Durable, fmt.Sprintf(format, args...))
	}
	if g.Durable == "" {
		return fmt.Errorf("%w: group without a Durable name", envelope.ErrInvalidConfig)
	}
	if err := transport.ValidateName(g.Durable); err != nil {
		return fmt.Errorf("%w: group Durable: %w", envelope.ErrInvalidConfig, err)
	}
	if len(g.FilterSubjects) == 0 {
		return bad("no FilterSubjects")
	}
	for _, f := range g.FilterSubjects {
		if err := envelope.ValidatePattern(f); err != nil {
			return bad("FilterSubjects: %v", err)
		}
	}
	switch {
	case g.MaxDeliver < 1 || g.AckWait <= 0 || g.Concurrency < 1:
		return bad("MaxDeliver, AckWait and Concurrency must be positive")
	case g.FetchBatch < g.Concurrency:
		return bad("FetchBatch %d must be >= Concurrency %d", g.FetchBatch, g.Concurrency)
	case g.MaxAckPending != -1 && g.MaxAckPending < g.FetchBatch:
		return bad("MaxAckPending %d must be >= FetchBatch %d (or -1)", g.MaxAckPending, g.FetchBatch)
	case g.Start < StartAll || g.Start > StartAtTime:
		return bad("Start %d", g.Start)
	case g.Start == StartAtSequence && g.StartSeq == 0:
		return bad("StartAtSequence needs StartSeq")
	case g.Start == StartAtTime && g.StartTime.IsZero():
		return bad("StartAtTime needs StartTime")
	}
	for i, m := range g.Middleware {
		if m == nil {
			return bad("Middleware[%d] is nil", i)
		}
	}
	if g.partitioned() {
		if err := g.Partitions.Validate(); err != nil {
			return fmt.Errorf("group %s: Partitions: %w", g.Durable, err)
		}
		for _, f := range g.FilterSubjects {
			if err := partition.CheckGroupFilter(f); err != nil {
				return fmt.Errorf("group %s: %w", g.Durable, err)
			}
			if !g.Partitions.CoversFilter(f) {
				return bad("FilterSubjects %q is not within the Partitions' Subjects %v: its events would never be placed in a partition", f, g.Partitions.Subjects)
			}
		}
		if err := transport.ValidateName(partition.Durable(g.Durable, g.Partitions.Count-1, g.Partitions.Count)); err != nil {
			return fmt.Errorf("%w: group %s: partition durable: %w", envelope.ErrInvalidConfig, g.Durable, err)
		}
	}
	return nil
}

// partitioned reports whether the group is partitioned.
func (g *GroupConfig) partitioned() bool {
	return g.Partitions.Count != 0 || g.Partitions.Key != nil || len(g.Partitions.Subjects) > 0
}

// consumerSpec is the durable the group owns.
func (g *GroupConfig) consumerSpec(stream string) transport.ConsumerSpec {
	return transport.ConsumerSpec{
		Stream:         stream,
		Durable:        g.Durable,
		FilterSubjects: g.FilterSubjects,
		AckWait:        g.AckWait,
		MaxAckPending:  g.MaxAckPending,
		Start:          g.Start,
		StartSeq:       g.StartSeq,
		StartTime:      g.StartTime,
		Description:    "jetevents router group " + g.Durable + " (settings owned by the group's config)",
	}
}
