package router

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
	wmmiddleware "github.com/ThreeDotsLabs/watermill/message/router/middleware"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// Router consumes events from durable consumers and dispatches them by type
// to handlers, with the middleware stack of the package doc, each delivery
// handled start to end by the worker that holds it. Build it with New (on
// JetStream) or NewWithTransport (any transport, e.g. the in-memory bus),
// register groups and handlers, then Run it once.
type Router struct {
	tr  transport.Transport
	cfg Config
	dlq *middleware.DeadLetterer

	// member is this router's name in the membership of its partitioned
	// groups (partitions.go).
	member string

	mu      sync.Mutex
	groups  []*Group
	runs    []*groupRun
	parts   []*partitionedRun
	started bool
	running chan struct{} // closed once every group's consumer is live

	stats stats
}

// Group is one durable consumer and the handlers its events are dispatched to.
type Group struct {
	r        *Router
	cfg      GroupConfig
	handlers map[string]*handlerSpec
	err      error // first registration error, reported by Run
}

// Stats counts what the router did since it started.
type Stats struct {
	// Handled: events a handler returned nil for.
	Handled uint64
	// Failed: handler errors (each leads to a retry or a dead letter).
	Failed uint64
	// UnknownType: events acked because no handler of their group takes their type.
	UnknownType uint64
	// DeadLettered: events stored in the dead-letter stream.
	DeadLettered uint64
	// Undecodable: messages that could not be decoded into an event (each is
	// dead-lettered with reason unmarshal or schema_version).
	Undecodable uint64
	// Retried: deliveries nacked for a later redelivery.
	Retried uint64
	// LeaseExpired: held events not handled (or not nacked) because their
	// lease ran out first (the process was frozen longer than AckWait): the
	// broker redelivered them, maybe to another process.
	LeaseExpired uint64
}

type stats struct {
	handled, failed, unknown, deadLettered, undecodable, retried, leaseExpired atomic.Uint64
}

// NewWithTransport returns a Router consuming cfg.Stream through tr (a
// jetstream.Transport, or the in-memory bus of package memory in tests).
// Config.Heartbeat and DeadLetter.Stream are the transport's business there.
func NewWithTransport(tr transport.Transport, cfg Config) (*Router, error) {
	if tr == nil {
		return nil, fmt.Errorf("%w: nil transport", envelope.ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dlq, err := middleware.NewDeadLetterer(tr, cfg.DeadLetter)
	if err != nil {
		return nil, fmt.Errorf("router config: DeadLetter: %w", err)
	}
	return &Router{tr: tr, cfg: cfg, dlq: dlq, running: make(chan struct{}), member: memberName()}, nil
}

// Group adds a handler group consuming filterSubjects through the durable
// consumer named durable, with the router's settings. See AddGroup.
func (r *Router) Group(durable string, filterSubjects ...string) *Group {
	return r.AddGroup(GroupConfig{Durable: durable, FilterSubjects: filterSubjects})
}

// AddGroup adds a handler group. A configuration error (matching
// envelope.ErrInvalidConfig) is kept on the group: Err returns it at once and Run
// refuses to start with it, so that registration reads as a chain.
func (r *Router) AddGroup(cfg GroupConfig) *Group {
	g := &Group{r: r, handlers: map[string]*handlerSpec{}}
	g.err = cfg.fill(r.cfg)
	g.cfg = cfg
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started && g.err == nil {
		g.err = fmt.Errorf("%w: group %s added after Run", ErrRunning, cfg.Durable)
	}
	for _, other := range r.groups {
		if other.cfg.Durable == cfg.Durable && g.err == nil {
			g.err = fmt.Errorf("%w: two groups named %s", envelope.ErrInvalidConfig, cfg.Durable)
		}
	}
	r.groups = append(r.groups, g)
	return g
}

// On registers fn for events of eventType in the group. Registering a type
// twice in a group, or an invalid type, is a configuration error (Err, and
// Run).
func (g *Group) On(eventType string, fn HandlerFunc, opts ...HandlerOption) *Group {
	h := &handlerSpec{eventType: eventType, fn: fn, majors: []int{1}}
	for _, o := range opts {
		o(h)
	}
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	switch {
	case g.r.started:
		// Handlers are read without a lock while the router runs.
		g.err = fmt.Errorf("%w: handler for %q registered after Run", ErrRunning, eventType)
	case g.err != nil:
	case fn == nil:
		g.err = fmt.Errorf("%w: nil handler for %q in group %s", envelope.ErrInvalidConfig, eventType, g.cfg.Durable)
	case envelope.ValidateSubject(eventType) != nil:
		g.err = fmt.Errorf("%w: event type %q is not dot-separated [A-Za-z0-9_-] tokens", envelope.ErrInvalidConfig, eventType)
	case len(h.majors) == 0:
		g.err = fmt.Errorf("%w: handler for %q accepts no schema major", envelope.ErrInvalidConfig, eventType)
	case g.handlers[eventType] != nil:
		g.err = fmt.Errorf("%w: two handlers for %q in group %s", envelope.ErrInvalidConfig, eventType, g.cfg.Durable)
	default:
		g.handlers[eventType] = h
	}
	return g
}

// Running is closed once Run has bound every group's consumer: events
// published from then on are handled. It stays open if Run fails to start.
func (r *Router) Running() <-chan struct{} { return r.running }

// Err returns the group's first registration error (also returned by Run),
// or nil.
func (g *Group) Err() error {
	g.r.mu.Lock()
	defer g.r.mu.Unlock()
	return g.err
}

// Stats returns the router's counters.
func (r *Router) Stats() Stats {
	return Stats{
		Handled:      r.stats.handled.Load(),
		Failed:       r.stats.failed.Load(),
		UnknownType:  r.stats.unknown.Load(),
		DeadLettered: r.stats.deadLettered.Load(),
		Undecodable:  r.stats.undecodable.Load(),
		Retried:      r.stats.retried.Load(),
		LeaseExpired: r.stats.leaseExpired.Load(),
	}
}

// decoderFor decodes the group's messages accepting every schema major one
// of its handlers accepts, so that the per-handler check (dispatch) gives an
// unaccepted major its precise dead-letter reason, and a major no handler
// takes is refused at decode time with ErrUnknownSchemaMajor (reason
// schema_version as well).
func decoderFor(g *Group) *marshaler.Marshaler {
	var majors []int
	for _, h := range g.handlers {
		for _, m := range h.majors {
			if !slices.Contains(majors, m) {
				majors = append(majors, m)
			}
		}
	}
	if len(majors) == 0 {
		majors = []int{1}
	}
	m, err := marshaler.New(marshaler.Config{SchemaMajors: majors})
	if err != nil { // majors are validated by On; keep the default rather than fail
		m = marshaler.Default()
	}
	return m
}

// dispatch is the innermost handler of a group's stack: find the handler by
// type, check the schema major, call it with the event decoded on receipt.
func (g *Group) dispatch() message.HandlerFunc {
	r := g.r
	return func(msg *message.Message) ([]*message.Message, error) {
		c := carrierOf(msg)
		if c == nil || c.event == nil {
			err := errors.New("message did not come through the router's decoder")
			if c != nil {
				err = c.err
			}
			return nil, middleware.DeadLetter(reasonOf(err), err)
		}
		e := c.event
		h := g.handlers[e.Type]
		if h == nil {
			if r.cfg.UnknownType == UnknownTypeDeadLetter {
				return nil, middleware.DeadLetter(middleware.ReasonUnknownType, fmt.Errorf("no handler for %q in group %s", e.Type, g.cfg.Durable))
			}
			r.stats.unknown.Add(1)
			d := transport.FromContext(msg.Context())
			d.Verdict = transport.Skip(transport.SkipUnknownType)
			return nil, nil
		}
		major, err := e.SchemaMajor()
		if err != nil || !h.accepts(major) {
			return nil, middleware.DeadLetter(middleware.ReasonSchemaVersion,
				fmt.Errorf("handler for %q accepts schema majors %v, event has %q", e.Type, h.majors, e.SchemaVersion))
		}
		if err := h.fn(msg.Context(), e); err != nil {
			r.stats.failed.Add(1)
			return nil, err
		}
		r.stats.handled.Add(1)
		return nil, nil
	}
}

// reasonOf is the dead-letter reason of a decode failure.
func reasonOf(err error) string {
	if reason, ok := middleware.Classify(err); ok {
		return reason
	}
	return middleware.ReasonUnmarshal
}

// stack returns the group's handler: the middleware, outermost first (see
// the package doc and Config.Middleware for why this order), around
// dispatch:
//
//	Correlation -> Logging -> [Observe] -> DeadLetterer -> Retry -> [user] -> [Idempotency] -> [Timeout] -> Recoverer -> dispatch
func (r *Router) stack(g *Group) (message.HandlerFunc, *middleware.Idempotency, error) {
	corr, err := middleware.NewCorrelation(middleware.CorrelationConfig{})
	if err != nil {
		return nil, nil, err
	}
	logging, err := middleware.NewLogging(middleware.LoggingConfig{Logger: r.cfg.Logger})
	if err != nil {
		return nil, nil, err
	}
	retry, err := middleware.NewRetry(middleware.RetryConfig{MaxDeliver: g.cfg.MaxDeliver, Backoff: r.cfg.Backoff})
	if err != nil {
		return nil, nil, err
	}
	mws := []message.HandlerMiddleware{corr.Middleware, logging.Middleware}
	if r.cfg.Observe != nil {
		mws = append(mws, r.observe)
	}
	mws = append(mws, r.dlq.Middleware, retry.Middleware)
	mws = append(mws, r.cfg.Middleware...)
	mws = append(mws, g.cfg.Middleware...)
	var idem *middleware.Idempotency
	if r.cfg.Idempotency != nil {
		idem, err = middleware.NewIdempotency(middleware.IdempotencyConfig{Store: r.cfg.Idempotency, Logger: r.cfg.Logger})
		if err != nil {
			return nil, nil, err
		}
		mws = append(mws, idem.Middleware)
	}
	if r.cfg.HandlerTimeout > 0 {
		to, err := middleware.Timeout(r.cfg.HandlerTimeout)
		if err != nil {
			return nil, nil, err
		}
		mws = append(mws, to)
	}
	mws = append(mws, wmmiddleware.Recoverer)
	h := g.dispatch()
	for i := len(mws) - 1; i >= 0; i-- {
		h = mws[i](h)
	}
	return h, idem, nil
}

// Run binds every group's durable and handles events until ctx is
// cancelled, then shuts down gracefully: pulling stops, queued messages are
// released at once (redelivered, not counted as handler attempts), in-flight
// handlers get CloseTimeout to finish (what is still in flight then is
// nacked for redelivery, never acked, and its context cancelled with a cause
// matching transport.ErrCloseTimeout), and the Flush publishers are flushed.
// Run returns only once no handler runs: a handler that ignores its
// cancelled context is waited for (and named at warn while it runs).
//
// A group whose consumer cannot be recovered (its stream still gone two
// Heartbeats after the stall was noticed, permission withdrawn) stops the
// router at once: Run returns an error matching
// ErrSubscriptionEnded naming the group. Stalls it can recover from (a lost
// pull, a leader change, a server restart, a deleted durable) are recovered
// without returning, and logged at warn. Run returns nil after a clean
// shutdown, an error matching ErrShutdown otherwise, or a configuration or
// setup error at start (at once, without waiting for CloseTimeout).
func (r *Router) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return ErrRunning
	}
	r.started = true
	groups := slices.Clone(r.groups)
	var cfgErr error
	for _, g := range groups {
		if cfgErr == nil && g.err != nil {
			cfgErr = g.err
		}
		if cfgErr == nil && len(g.handlers) == 0 {
			cfgErr = fmt.Errorf("%w: group %s has no handler", envelope.ErrInvalidConfig, g.cfg.Durable)
		}
	}
	r.mu.Unlock()
	if cfgErr != nil {
		return cfgErr
	}
	if len(groups) == 0 {
		return fmt.Errorf("%w: no handler group", envelope.ErrInvalidConfig)
	}

	rs, err := r.startAll(ctx, groups)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.runs, r.parts = rs.runs, rs.parts
	r.mu.Unlock()
	close(r.running)

	// Wait for the stop, or for a group that ended for good.
	var errs []error
	select {
	case <-ctx.Done():
	case err := <-rs.ended():
		errs = append(errs, fmt.Errorf("%w: %w", ErrSubscriptionEnded, err))
	}
	errs = append(errs, rs.stop(r.cfg.CloseTimeout)...)
	r.mu.Lock()
	r.runs, r.parts = nil, nil // Health reports no group once Run returns
	r.mu.Unlock()
	errs = append(errs, r.flush()...)
	if len(errs) == 0 {
		return nil
	}
	if errors.Is(errs[0], ErrSubscriptionEnded) {
		return errors.Join(errs...)
	}
	return fmt.Errorf("%w: %w", ErrShutdown, errors.Join(errs...))
}

func (r *Router) flush() []error {
	flush := r.cfg.Flush
	if f, ok := r.cfg.Idempotency.(Flusher); ok {
		// Processed marks in flight (jetstream.KVStore) are stored
		// before Run returns.
		flush = append(slices.Clone(flush), f)
	}
	if len(flush) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CloseTimeout)
	defer cancel()
	var errs []error
	for _, f := range flush {
		if err := f.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush: %w", err))
		}
	}
	return errs
}
