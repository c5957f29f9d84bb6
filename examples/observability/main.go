// Command observability shows jetevents' metrics and traces with nothing
// installed: an embedded NATS server, a publisher and a router hooked into
// Prometheus (package metrics) and OpenTelemetry (package tracing), some
// traffic (a signup whose handler publishes a welcome event, and an event
// its handler refuses), then /metrics served over HTTP and the traces
// printed as trees.
//
//	go run ./examples/observability            # prints, then exits
//	go run ./examples/observability -serve     # and keeps serving /metrics
//	curl -s localhost:2112/metrics | grep jetevents_
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/jetevents/events/embedded"
	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/metrics"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/tracing"
	"github.com/jetevents/events/transport"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:2112", "address to serve /metrics on")
	serve := flag.Bool("serve", false, "keep serving /metrics after the traffic, until interrupted")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Stdout, *addr, *serve); err != nil {
		fmt.Fprintln(os.Stderr, "observability example failed:", err)
		os.Exit(1)
	}
}

// example is the whole setup: server, streams, registry, tracer, publisher
// and a running router.
type example struct {
	srv      *embedded.Server
	nc       *nats.Conn
	js       natsjs.JetStream
	reg      *prometheus.Registry
	spans    *tracetest.InMemoryExporter
	tp       *sdktrace.TracerProvider
	pub      *jetstream.Publisher
	r        *router.Router
	stop     context.CancelFunc
	ran      chan error
	welcomed chan struct{}
}

// start builds the example and runs its router.
func start(ctx context.Context) (_ *example, err error) {
	ex := &example{ran: make(chan error, 1), welcomed: make(chan struct{}, 16)}
	defer func() {
		if err != nil {
			ex.close()
		}
	}()
	if ex.srv, err = embedded.Start(embedded.Config{}); err != nil {
		return nil, err
	}
	quiet := middleware.NewSlogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))
	if ex.nc, err = jetstream.Connect(ex.srv.URL(), jetstream.WithName("observability-example"), jetstream.WithLogger(quiet)); err != nil {
		return nil, err
	}
	if ex.js, err = natsjs.New(ex.nc); err != nil {
		return nil, err
	}
	if _, err = jetstream.Ensure(ctx, ex.js, quiet, jetstream.AuthEventsStream(), jetstream.DeadLetterStream()); err != nil {
		return nil, err
	}

	// Prometheus: one call registers every jetevents collector.
	ex.reg = prometheus.NewRegistry()
	ex.reg.MustRegister(collectors.NewGoCollector())
	m, err := metrics.New(ex.reg, metrics.Config{ConstLabels: prometheus.Labels{"service": "auth"}})
	if err != nil {
		return nil, err
	}
	m.WatchDeadLetters(ex.js, "DLQ")

	// OpenTelemetry: an SDK provider exporting to memory, printed below (in
	// production: a batch span processor and an OTLP exporter).
	ex.spans = tracetest.NewInMemoryExporter()
	ex.tp = sdktrace.NewTracerProvider(sdktrace.WithSyncer(ex.spans))
	tr := tracing.New(tracing.Config{TracerProvider: ex.tp})

	// The publisher reports to both; so does the router.
	if ex.pub, err = jetstream.NewPublisher(ex.nc, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{m.PublishObserver, tr.PublishObserver}}); err != nil {
		return nil, err
	}
	cfg := router.Config{Stream: "AUTH_EVENTS", Logger: quiet, MaxDeliver: 3,
		Backoff: transport.Backoff{Initial: 50 * time.Millisecond, Max: time.Second, Jitter: -1}}
	m.Instrument(&cfg)
	tr.Instrument(&cfg)
	if ex.r, err = router.New(ex.nc, cfg); err != nil {
		return nil, err
	}
	ex.r.Group("accounts", "auth.user.created", "auth.user.deleted").
		On("user.created", func(ctx context.Context, e *envelope.Event) error {
			// Published with the handler's context: a child of this delivery's span.
			return ex.pub.Publish(ctx, "auth.user.welcomed", envelope.NewEvent("user.welcomed", "accounts", e.OrganizationID, e.Timestamp, map[string]any{"for": e.ID}))
		}).
		On("user.deleted", func(context.Context, *envelope.Event) error {
			return middleware.Permanent(errors.New("deleting users is not supported yet"))
		})
	ex.r.Group("mailer", "auth.user.welcomed").On("user.welcomed", func(context.Context, *envelope.Event) error {
		ex.welcomed <- struct{}{}
		return nil
	})
	m.WatchRouter(ex.r)

	rctx, cancel := context.WithCancel(context.Background())
	ex.stop = cancel
	go func() { ex.ran <- ex.r.Run(rctx) }()
	select {
	case <-ex.r.Running():
	case err := <-ex.ran:
		return nil, err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return ex, nil
}

// handler serves /metrics.
func (ex *example) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(ex.reg, promhttp.HandlerOpts{}))
	return mux
}

// traffic publishes two signups (each handled, then its welcome event
// handled) and one event its handler refuses (dead-lettered), and waits
// until both groups have settled everything.
func (ex *example) traffic(ctx context.Context) error {
	ts := time.Date(2024, 1, 15, 10, 30, 45, 0, time.UTC)
	signup := ex.tp.Tracer("example")
	for i, email := range []string{"ada@example.com", "grace@example.com"} {
		// As an HTTP handler would: the publish is a child of the request's span.
		sctx, span := signup.Start(ctx, "POST /signup")
		err := ex.pub.Publish(sctx, "auth.user.created", envelope.NewEvent("user.created", "auth-service", "org-123", ts, map[string]any{"user_id": i + 1, "email": email}))
		span.End()
		if err != nil {
			return err
		}
	}
	if err := ex.pub.Publish(ctx, "auth.user.deleted", envelope.NewEvent("user.deleted", "auth-service", "org-123", ts, map[string]any{"user_id": 1})); err != nil {
		return err
	}
	for range 2 {
		select {
		case <-ex.welcomed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for {
		h := ex.r.Health(ctx)
		settled := h.Ready
		for _, g := range h.Groups {
			settled = settled && g.InfoErr == nil && g.Pending == 0 && g.AckPending == 0
		}
		if settled {
			return nil
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (ex *example) close() {
	if ex.stop != nil {
		ex.stop()
		<-ex.ran
	}
	if ex.pub != nil {
		_ = ex.pub.Close()
	}
	if ex.tp != nil {
		_ = ex.tp.Shutdown(context.Background())
	}
	if ex.nc != nil {
		ex.nc.Close()
	}
	if ex.srv != nil {
		ex.srv.Shutdown()
	}
}

func run(ctx context.Context, out io.Writer, addr string, serve bool) error {
	var cancel context.CancelFunc
	if serve {
		ctx, cancel = context.WithCancel(ctx)
	} else {
		ctx, cancel = context.WithTimeout(ctx, 60*time.Second)
	}
	defer cancel()
	ex, err := start(ctx)
	if err != nil {
		return err
	}
	defer ex.close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: ex.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	defer func() { _ = hs.Close() }()
	url := "http://" + ln.Addr().String() + "/metrics"
	fmt.Fprintf(out, "serving %s\n\n", url)

	if err := ex.traffic(ctx); err != nil {
		return err
	}
	body, err := scrape(ctx, url)
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "jetevents metrics after the traffic:")
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "jetevents_") && !strings.Contains(line, "_bucket{") {
			fmt.Fprintln(out, "  "+line)
		}
	}
	fmt.Fprintln(out)
	printTraces(out, ex.spans.GetSpans())
	if serve {
		fmt.Fprintln(out, "serving until interrupted")
		<-ctx.Done()
	}
	return nil
}

func scrape(ctx context.Context, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(b), nil
}

// printTraces prints each trace as a tree of spans, children under their
// parent, in start order.
func printTraces(out io.Writer, spans tracetest.SpanStubs) {
	children := map[trace.SpanID][]tracetest.SpanStub{}
	var roots []tracetest.SpanStub
	known := map[trace.SpanID]bool{}
	for _, s := range spans {
		known[s.SpanContext.SpanID()] = true
	}
	for _, s := range spans {
		if p := s.Parent.SpanID(); s.Parent.IsValid() && known[p] {
			children[p] = append(children[p], s)
		} else {
			roots = append(roots, s)
		}
	}
	byStart := func(ss []tracetest.SpanStub) {
		sort.Slice(ss, func(i, j int) bool { return ss[i].StartTime.Before(ss[j].StartTime) })
	}
	byStart(roots)
	var walk func(s tracetest.SpanStub, depth int)
	walk = func(s tracetest.SpanStub, depth int) {
		fmt.Fprintf(out, "%s%s [%s]%s\n", strings.Repeat("  ", depth+1), s.Name, strings.TrimPrefix(s.SpanKind.String(), "SpanKind"), details(s))
		kids := children[s.SpanContext.SpanID()]
		byStart(kids)
		for _, k := range kids {
			walk(k, depth+1)
		}
	}
	for _, r := range roots {
		fmt.Fprintf(out, "trace %s\n", r.SpanContext.TraceID())
		walk(r, 0)
	}
}

// details are the attributes worth a glance, and an error status.
func details(s tracetest.SpanStub) string {
	var parts []string
	for _, kv := range s.Attributes {
		switch kv.Key {
		case "messaging.consumer.group.name":
			parts = append(parts, "group="+kv.Value.Emit())
		case "messaging.nats.message.delivery_attempt":
			parts = append(parts, "attempt="+kv.Value.Emit())
		case "jetevents.delivery.outcome":
			parts = append(parts, "outcome="+kv.Value.Emit())
		case "jetevents.delivery.reason":
			parts = append(parts, "reason="+kv.Value.Emit())
		}
	}
	if s.Status.Code.String() == "Error" {
		parts = append(parts, "status=Error")
	}
	if len(parts) == 0 {
		return ""
	}
	return " " + strings.Join(parts, " ")
}
