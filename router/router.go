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
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
)

// Router consumes events from durable JetStream consumers and dispatches them
// by type to handlers, with the middleware stack of the package doc. Build it
// with New, register groups and handlers, then Run it once.
type Router struct {
	nc  *nats.Conn
	cfg Config
	dlq *middleware.DeadLetterer

	mu      sync.Mutex
	groups  []*Group
	started bool
	running chan struct{} // closed once every group's subscription is live

	stats    stats
	inFlight atomic.Int64  // deliveries inside the middleware stack
	aborted  atomic.Uint64 // deliveries whose context the close deadline cancelled
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
}

type stats struct{ handled, failed, unknown atomic.Uint64 }

// New returns a Router consuming cfg.Stream on nc. It never closes nc.
func New(nc *nats.Conn, cfg Config) (*Router, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil *nats.Conn", ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dlq, err := middleware.NewDeadLetterer(nc, cfg.DeadLetter)
	if err != nil {
		return nil, fmt.Errorf("%w: DeadLetter: %w", ErrInvalidConfig, err)
	}
	return &Router{nc: nc, cfg: cfg, dlq: dlq, running: make(chan struct{})}, nil
}

// Group adds a handler group consuming filterSubjects through the durable
// consumer named durable, with the router's settings. See AddGroup.
func (r *Router) Group(durable string, filterSubjects ...string) *Group {
	return r.AddGroup(GroupConfig{Durable: durable, FilterSubjects: filterSubjects})
}

// AddGroup adds a handler group. A configuration error is reported by Run
// (so that registration reads as a chain).
func (r *Router) AddGroup(cfg GroupConfig) *Group {
	if cfg.MaxDeliver == 0 {
		cfg.MaxDeliver = r.cfg.MaxDeliver
	}
	if cfg.AckWait == 0 {
		cfg.AckWait = r.cfg.AckWait
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = r.cfg.Concurrency
	}
	g := &Group{r: r, cfg: cfg, handlers: map[string]*handlerSpec{}}
	switch {
	case cfg.Durable == "":
		g.err = fmt.Errorf("%w: group without a Durable name", ErrInvalidConfig)
	case len(cfg.FilterSubjects) == 0:
		g.err = fmt.Errorf("%w: group %s without FilterSubjects", ErrInvalidConfig, cfg.Durable)
	case cfg.MaxDeliver < 1 || cfg.AckWait <= 0 || cfg.Concurrency < 1:
		g.err = fmt.Errorf("%w: group %s: MaxDeliver, AckWait and Concurrency must be positive", ErrInvalidConfig, cfg.Durable)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started && g.err == nil {
		g.err = fmt.Errorf("%w: group %s added after Run", ErrRunning, cfg.Durable)
	}
	for _, other := range r.groups {
		if other.cfg.Durable == cfg.Durable && g.err == nil {
			g.err = fmt.Errorf("%w: two groups named %s", ErrInvalidConfig, cfg.Durable)
		}
	}
	r.groups = append(r.groups, g)
	return g
}

// On registers fn for events of eventType in the group. Registering a type
// twice in a group, or an invalid type, is a configuration error reported by
// Run.
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
		g.err = fmt.Errorf("%w: nil handler for %q in group %s", ErrInvalidConfig, eventType, g.cfg.Durable)
	case envelope.ValidateSubject(eventType) != nil:
		g.err = fmt.Errorf("%w: event type %q is not dot-separated [A-Za-z0-9_-] tokens", ErrInvalidConfig, eventType)
	case len(h.majors) == 0:
		g.err = fmt.Errorf("%w: handler for %q accepts no schema major", ErrInvalidConfig, eventType)
	case g.handlers[eventType] != nil:
		g.err = fmt.Errorf("%w: two handlers for %q in group %s", ErrInvalidConfig, eventType, g.cfg.Durable)
	default:
		g.handlers[eventType] = h
	}
	return g
}

// Running is closed once Run has subscribed every group: events published
// from then on are handled. It stays open if Run fails to start.
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
	return Stats{Handled: r.stats.handled.Load(), Failed: r.stats.failed.Load(), UnknownType: r.stats.unknown.Load()}
}

// marshalerFor decodes the group's messages accepting every schema major one
// of its handlers accepts, so that the per-handler check (dispatch) gives an
// unaccepted major its precise dead-letter reason, and a major no handler
// takes is refused at decode time with ErrUnknownSchemaMajor (reason
// schema_version as well).
func marshalerFor(g *Group) jetstream.Unmarshaler {
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
	return marshaler.JetStream{Marshaler: m}
}

// dispatch is the group's Watermill handler: decode, find the handler by
// type, check the schema major, call it.
func (g *Group) dispatch(m *marshaler.Marshaler) message.NoPublishHandlerFunc {
	r := g.r
	return func(msg *message.Message) error {
		e, err := m.FromMessage(msg)
		if err != nil {
			return middleware.DeadLetter(middleware.ReasonUnmarshal, err)
		}
		h := g.handlers[e.Type]
		if h == nil {
			if r.cfg.UnknownType == UnknownTypeDeadLetter {
				return middleware.DeadLetter(middleware.ReasonUnknownType, fmt.Errorf("no handler for %q in group %s", e.Type, g.cfg.Durable))
			}
			r.stats.unknown.Add(1)
			return nil
		}
		major, err := e.SchemaMajor()
		if err != nil || !h.accepts(major) {
			return middleware.DeadLetter(middleware.ReasonSchemaVersion,
				fmt.Errorf("handler for %q accepts schema majors %v, event has %q", e.Type, h.majors, e.SchemaVersion))
		}
		if err := h.fn(withDelivery(msg.Context(), msg), e); err != nil {
			r.stats.failed.Add(1)
			return err
		}
		r.stats.handled.Add(1)
		return nil
	}
}

// Run subscribes every group and handles events until ctx is cancelled, then
// shuts down gracefully: fetching stops, in-flight handlers get CloseTimeout
// to finish (what is still in flight is nacked for redelivery, never acked),
// the advisory watchers stop, and the Flush publishers are flushed. It
// returns nil after a clean shutdown, an error matching ErrShutdown
// otherwise, or a configuration / subscription error at start.
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
			cfgErr = fmt.Errorf("%w: group %s has no handler", ErrInvalidConfig, g.cfg.Durable)
		}
	}
	r.mu.Unlock()
	if cfgErr != nil {
		return cfgErr
	}
	if len(groups) == 0 {
		return fmt.Errorf("%w: no handler group", ErrInvalidConfig)
	}

	wm, err := message.NewRouter(message.RouterConfig{CloseTimeout: r.cfg.CloseTimeout}, r.cfg.Logger)
	if err != nil {
		return err
	}
	wm.AddMiddleware(r.track)

	var (
		subs     []*jetstream.Subscriber
		handlers []*message.Handler
	)
	for _, g := range groups {
		scfg := r.subscriberConfig(g)
		sub, err := jetstream.NewSubscriber(r.nc, scfg)
		if err != nil {
			closeAll(subs)
			return fmt.Errorf("group %s: %w", g.cfg.Durable, err)
		}
		subs = append(subs, sub)
		// The stack is per group: the retry decision must know the group's
		// own MaxDeliver.
		mws, err := r.middlewares(g)
		if err != nil {
			closeAll(subs)
			return err
		}
		m := scfg.Unmarshaler.(marshaler.JetStream).Marshaler
		h := wm.AddConsumerHandler(g.cfg.Durable, g.cfg.FilterSubjects[0], sub, g.dispatch(m))
		h.AddMiddleware(mws...)
		handlers = append(handlers, h)
	}

	stopWatchers, err := r.startAdvisoryWatchers(groups)
	if err != nil {
		closeAll(subs)
		return err
	}

	// A subscription that ends while ctx is live (consumer deleted, stream
	// gone) would stop its group silently; stop everything and say so, so
	// that the process's supervisor restarts it.
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	runDone := make(chan struct{})
	var (
		endedMu sync.Mutex
		ended   []error
	)
	go func() {
		select {
		case <-wm.Running():
			close(r.running)
		case <-runDone:
		}
	}()
	for i, h := range handlers {
		go func() {
			// Watermill builds a handler's Stopped channel when it starts
			// running: wait for that before reading it.
			select {
			case <-wm.Running():
			case <-runDone:
				return
			}
			select {
			case <-h.Stopped():
				if ctx.Err() == nil {
					endedMu.Lock()
					ended = append(ended, fmt.Errorf("%w: group %s", ErrSubscriptionEnded, groups[i].cfg.Durable))
					endedMu.Unlock()
					cancelRun()
				}
			case <-runDone:
			}
		}()
	}
	runErr := wm.Run(runCtx)
	close(runDone)
	var errs []error
	endedMu.Lock()
	errs = append(errs, ended...)
	endedMu.Unlock()
	if runErr != nil {
		errs = append(errs, runErr)
	}
	if err := wm.Close(); err != nil {
		errs = append(errs, err)
	}
	// Watermill's router logs, but does not return, a close timeout: count
	// the handlers still running ourselves. Their messages were nacked by the
	// subscriber at its deadline, so they will be redelivered.
	if n := r.inFlight.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%d handlers still running after CloseTimeout %s; their events were nacked for redelivery", n, r.cfg.CloseTimeout))
	}
	if n := r.aborted.Load(); n > 0 {
		errs = append(errs, fmt.Errorf("%d handlers cancelled at CloseTimeout %s; their events were nacked for redelivery", n, r.cfg.CloseTimeout))
	}
	if err := closeAll(subs); err != nil {
		errs = append(errs, err)
	}
	if err := stopWatchers(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, r.flush()...)
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrShutdown, errors.Join(errs...))
	}
	return nil
}

// middlewares returns the stack, outermost first (see the middleware package
// doc for why this order):
//
//	Correlation -> Logging -> [Observe] -> DeadLetterer -> Retry -> Idempotency -> Timeout -> Recoverer -> dispatch
func (r *Router) middlewares(g *Group) ([]message.HandlerMiddleware, error) {
	corr, err := middleware.NewCorrelation(middleware.CorrelationConfig{})
	if err != nil {
		return nil, err
	}
	logging, err := middleware.NewLogging(middleware.LoggingConfig{Logger: r.cfg.Logger})
	if err != nil {
		return nil, err
	}
	retry, err := middleware.NewRetry(middleware.RetryConfig{MaxDeliver: g.cfg.MaxDeliver, Backoff: r.cfg.Backoff})
	if err != nil {
		return nil, err
	}
	mws := []message.HandlerMiddleware{corr.Middleware, logging.Middleware}
	if r.cfg.Observe != nil {
		mws = append(mws, r.observe)
	}
	mws = append(mws, r.dlq.Middleware, retry.Middleware)
	if r.cfg.Idempotency != nil {
		idem, err := middleware.NewIdempotency(middleware.IdempotencyConfig{Store: r.cfg.Idempotency, Logger: r.cfg.Logger})
		if err != nil {
			return nil, err
		}
		mws = append(mws, idem.Middleware)
	}
	if r.cfg.HandlerTimeout > 0 {
		to, err := middleware.Timeout(r.cfg.HandlerTimeout)
		if err != nil {
			return nil, err
		}
		mws = append(mws, to)
	}
	return append(mws, wmmiddleware.Recoverer), nil
}

// track counts the deliveries inside the stack, for Run's shutdown report.
func (r *Router) track(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		r.inFlight.Add(1)
		defer r.inFlight.Add(-1)
		out, err := h(msg)
		// The subscriber cancels a message's context with ErrCloseTimeout
		// when the close deadline passes with it unsettled (it is nacked).
		if errors.Is(context.Cause(msg.Context()), jetstream.ErrCloseTimeout) {
			r.aborted.Add(1)
		}
		return out, err
	}
}

func (r *Router) flush() []error {
	if len(r.cfg.Flush) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.CloseTimeout)
	defer cancel()
	var errs []error
	for _, f := range r.cfg.Flush {
		if err := f.Flush(ctx); err != nil {
			errs = append(errs, fmt.Errorf("flush: %w", err))
		}
	}
	return errs
}

func closeAll(subs []*jetstream.Subscriber) error {
	var errs []error
	for _, s := range subs {
		if err := s.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
