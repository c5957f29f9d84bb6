package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/metrics"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/tracing"
)

// The observability rows: the router-default row with metrics, tracing or
// both hooked in (BenchmarkRouterObservability), to show what they cost
// when on and that the router-default row, where they are off, pays nothing
// for them. They are not in Variants: the report command keeps its table.
const (
	// ImplRouterMetrics is router-default with metrics.New on a fresh
	// registry hooked in (Instrument: Observe and the in-flight middleware;
	// WatchRouter). Nothing scrapes during the run.
	ImplRouterMetrics Impl = "router-metrics"
	// ImplRouterTracing is router-default with tracing on: an SDK tracer
	// provider sampling every span (spans dropped at End: no exporter), a
	// consumer span per delivery.
	ImplRouterTracing Impl = "router-tracing"
	// ImplRouterMetricsTracing has both.
	ImplRouterMetricsTracing Impl = "router-metrics-tracing"
)

// ObservabilityVariants lists the observability rows, router-default (off)
// first.
func ObservabilityVariants() []Variant {
	return []Variant{routerDefault, routerMetrics, routerTracing, routerMetricsTracing}
}

var routerMetrics = Variant{
	Op: OpRouter, Impl: ImplRouterMetrics,
	What:    "router-default with metrics.New(prometheus.NewRegistry()) hooked in (Observe, in-flight middleware, WatchRouter)",
	prepare: ownDurableTrial(observedSetup(true, false)),
}

var routerTracing = Variant{
	Op: OpRouter, Impl: ImplRouterTracing,
	What:    "router-default with tracing.New (SDK provider, always sample, no exporter): a consumer span per delivery",
	prepare: ownDurableTrial(observedSetup(false, true)),
}

var routerMetricsTracing = Variant{
	Op: OpRouter, Impl: ImplRouterMetricsTracing,
	What:    "router-default with metrics and tracing both on",
	prepare: ownDurableTrial(observedSetup(true, true)),
}

// observedSetup is routerSetup's consume setup with metrics and/or tracing
// hooked into the router's config.
func observedSetup(withMetrics, withTracing bool) consumeSetup {
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
		cfg := router.Config{Stream: s.Name, Logger: ProductionLogger()}
		var m *metrics.Metrics
		if withMetrics {
			if m, err = metrics.New(prometheus.NewRegistry(), metrics.Config{}); err != nil {
				nc.Close()
				return nil, nil, err
			}
			m.Instrument(&cfg)
		}
		var tp *sdktrace.TracerProvider
		if withTracing {
			tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample()))
			tracing.New(tracing.Config{TracerProvider: tp}).Instrument(&cfg)
		}
		r, err := router.New(nc, cfg)
		if err != nil {
			nc.Close()
			return nil, nil, err
		}
		if m != nil {
			m.WatchRouter(r)
		}
		router.Handle(r.Group(durable, s.Subject), "user.created", func(_ context.Context, e *envelope.Event, d UserCreated) error {
			if err := checkData(d); err != nil {
				failures.add(fmt.Errorf("event %s: %w", e.ID, err))
			} else {
				record(e.ID)
			}
			if handled.Add(1) == int64(p.N) {
				once.Do(func() { close(done) })
			}
			return nil
		})
		br := &benchRouter{r: r, stopped: make(chan struct{})}
		closeFn := func() error {
			err := br.stop()
			if tp != nil {
				err = errors.Join(err, tp.Shutdown(context.Background()))
			}
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
