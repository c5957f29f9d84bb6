package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
)

// The router rows measure the router end to end through its public API only
// (router.New, Group, router.Handle, Run, Running), as a service uses it:
// the stream is pre-filled with N events, the router is built, and the run
// is timed from Run until the handler has seen the N-th event. The router
// creates its durable itself from the group's config (the harness only names
// it); its shutdown is not timed, but it must return nil.

// The router rows.
const (
	// ImplRouterDefault is the router with its default config: only
	// Stream and Logger set, full middleware, a typed handler.
	ImplRouterDefault Impl = "router-default"
	// ImplRouterKVIdempotency is ImplRouterDefault with Idempotency set to
	// a jetstream.KVStore (a fresh bucket per trial).
	ImplRouterKVIdempotency Impl = "router-kv-idempotency"
	// ImplRouterConc8Sleep1ms is the router with Concurrency 8 and a handler
	// that sleeps 1 ms: ideally 8,000 events/s whatever the data size.
	ImplRouterConc8Sleep1ms Impl = "router-conc8-sleep1ms"
)

// Conc8Sleep1msIdeal is the events/s of ImplRouterConc8Sleep1ms with no
// overhead at all: 8 handlers in parallel, 1 ms each.
const Conc8Sleep1msIdeal = 8000.0

// ProductionLogger is the logger every router row runs with: what a service
// runs in production, log/slog at Info (JSON), written here to io.Discard.
// Lines at Info and above are built, formatted and written; debug lines are
// filtered by the handler's level.
func ProductionLogger() watermill.LoggerAdapter {
	return middleware.NewSlogLogger(slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})))
}

// routerOpts is what a router row sets beyond Stream and Logger.
type routerOpts struct {
	idempotency bool
	concurrency int
	sleep       time.Duration
	orderKey    router.OrderKey
}

// benchRouter is a router row's router, running once started.
type benchRouter struct {
	r       *router.Router
	cleanup []func() error
	cancel  context.CancelFunc
	stopped chan struct{}
	runErr  error
	started bool
}

// newBenchRouter builds the router of a row on nc: one group (durable,
// filtered on s.Subject) with a router.Handle[UserCreated] handler that
// checks the data it got and calls seen. A KV store, when asked for, gets a
// bucket of its own, deleted by stop.
func newBenchRouter(ctx context.Context, env *Env, nc *nats.Conn, s Stream, durable string, o routerOpts,
	seen func(e *envelope.Event, d UserCreated)) (*benchRouter, error) {
	br := &benchRouter{stopped: make(chan struct{})}
	cfg := router.Config{Stream: s.Name, Logger: ProductionLogger(), Concurrency: o.concurrency, OrderKey: o.orderKey}
	if o.idempotency {
		bucket := fmt.Sprintf("BENCH_IDEM_%d", env.seq.Add(1))
		store, err := jetstream.NewKVStore(ctx, nc, jetstream.KVStoreConfig{Bucket: bucket})
		if err != nil {
			return nil, err
		}
		br.cleanup = append(br.cleanup, func() error {
			if err := env.js.DeleteKeyValue(context.Background(), bucket); err != nil {
				return fmt.Errorf("bench: delete bucket %s: %w", bucket, err)
			}
			return nil
		})
		cfg.Idempotency = store
	}
	r, err := router.New(nc, cfg)
	if err != nil {
		return nil, errors.Join(err, br.stop())
	}
	router.Handle(r.Group(durable, s.Subject), "user.created", func(_ context.Context, e *envelope.Event, d UserCreated) error {
		if o.sleep > 0 {
			time.Sleep(o.sleep)
		}
		seen(e, d)
		return nil
	})
	br.r = r
	return br, nil
}

// start runs the router in the background until stop.
func (br *benchRouter) start() {
	ctx, cancel := context.WithCancel(context.Background())
	br.cancel, br.started = cancel, true
	go func() {
		br.runErr = br.r.Run(ctx)
		close(br.stopped)
	}()
}

// ended is closed when Run has returned; Err is then its error.
func (br *benchRouter) ended() <-chan struct{} { return br.stopped }

// stop cancels Run, waits (bounded) for it to return and releases the
// row's resources. It reports Run's error: a router that does not shut down
// cleanly fails the trial.
func (br *benchRouter) stop() error {
	var errs []error
	if br.started {
		br.cancel()
		select {
		case <-br.stopped:
			errs = append(errs, br.runErr)
		case <-time.After(time.Minute):
			errs = append(errs, errors.New("bench: router did not stop within a minute"))
		}
		br.started = false
	}
	for i := len(br.cleanup) - 1; i >= 0; i-- {
		errs = append(errs, br.cleanup[i]())
	}
	br.cleanup = nil
	return errors.Join(errs...)
}

// routerSetup is the consume setup of a router row.
func routerSetup(o routerOpts) consumeSetup {
	return func(ctx context.Context, env *Env, s Stream, durable string, p Params, record func(string)) (func(context.Context) error, func() error, error) {
		nc, err := env.Connect("bench-" + durable)
		if err != nil {
			return nil, nil, err
		}
		var (
			handled  atomic.Int64
			failures failureLog
			done     = make(chan struct{})
			once     sync.Once
		)
		br, err := newBenchRouter(ctx, env, nc, s, durable, o, func(e *envelope.Event, d UserCreated) {
			if err := checkData(d); err != nil {
				failures.add(fmt.Errorf("event %s: %w", e.ID, err))
			} else {
				record(e.ID)
			}
			if handled.Add(1) == int64(p.N) {
				once.Do(func() { close(done) })
			}
		})
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		closeFn := func() error {
			err := br.stop()
			nc.Close()
			return err
		}
		return func(ctx context.Context) error {
			br.start()
			select {
			case <-done:
			case <-br.ended():
				return fmt.Errorf("router ended after %d of %d events: %w", handled.Load(), p.N, br.runErr)
			case <-ctx.Done():
				return fmt.Errorf("router: %d of %d events: %w", handled.Load(), p.N, ctx.Err())
			}
			return failures.err()
		}, closeFn, nil
	}
}

var routerDefault = Variant{
	Op: OpRouter, Impl: ImplRouterDefault,
	What:    "router.New(nc, Config{Stream, Logger: slog Info to io.Discard}): default config, full middleware, router.Handle[UserCreated] returning nil",
	prepare: ownDurableTrial(routerSetup(routerOpts{})),
}

var routerKVIdempotency = Variant{
	Op: OpRouter, Impl: ImplRouterKVIdempotency,
	What:    "router-default with Config.Idempotency = jetstream.NewKVStore (fresh bucket)",
	prepare: ownDurableTrial(routerSetup(routerOpts{idempotency: true})),
}

var routerConc8Sleep1ms = Variant{
	Op: OpRouter, Impl: ImplRouterConc8Sleep1ms,
	What:    "router-default with Concurrency 8, the handler sleeps 1 ms (ideal 8,000 events/s)",
	prepare: ownDurableTrial(routerSetup(routerOpts{concurrency: 8, sleep: time.Millisecond})),
}
