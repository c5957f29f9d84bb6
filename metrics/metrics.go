package metrics

import (
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// Metrics records what the publishers and routers it is hooked into do, on
// the collectors New registered. Safe for concurrent use.
type Metrics struct {
	cfg Config

	published      *prometheus.CounterVec   // subject, result [, organization]
	publishSeconds *prometheus.HistogramVec // mode
	publishPending prometheus.Gauge
	deliveries     *prometheus.CounterVec   // group, type, outcome, reason [, organization]
	handlerSeconds *prometheus.HistogramVec // group, type
	inFlight       *prometheus.GaugeVec     // group
	inFlightGroups sync.Map                 // group -> prometheus.Gauge
	scrape         *scrapeCollector
	outboxRelayed  *prometheus.CounterVec   // table, subject, result
	outboxLag      *prometheus.HistogramVec // table

	subjects, types, orgs *boundedLabel
}

// New registers every jetevents collector on reg and returns the Metrics
// that feeds them. Hook it in with PublishObserver, Instrument (or Observe
// and Middleware), WatchRouter and WatchDeadLetters. Errors match
// envelope.ErrInvalidConfig or ErrRegister (nothing is left registered then).
func New(reg prometheus.Registerer, cfg Config) (*Metrics, error) {
	if reg == nil {
		return nil, fmt.Errorf("%w: nil Registerer", envelope.ErrInvalidConfig)
	}
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ns, cl := cfg.Namespace, cfg.ConstLabels
	withOrg := func(labels ...string) []string {
		if cfg.OrganizationLabel {
			return append(labels, "organization")
		}
		return labels
	}
	m := &Metrics{
		cfg: cfg,
		published: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "events_published_total", ConstLabels: cl,
			Help: "Events published, by subject and result (ok, duplicate, no_stream, timeout, too_large, invalid, not_sent, closed, too_many_pending, error).",
		}, withOrg("subject", "result")),
		publishSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "publish_duration_seconds", ConstLabels: cl, Buckets: cfg.PublishBuckets,
			Help: "Time from a publish call to the stream's ack (or the failure), by mode (sync, async, batch).",
		}, []string{"mode"}),
		publishPending: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: ns, Name: "publish_pending", ConstLabels: cl,
			Help: "Async and batch publishes sent and not yet acked or failed.",
		}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "deliveries_total", ConstLabels: cl,
			Help: "Deliveries handled by the router, by group, event type, outcome (handled, retried, dead_lettered, skipped) and reason (the dead-letter reason; duplicate or unknown_type for skipped).",
		}, withOrg("group", "type", "outcome", "reason")),
		handlerSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "handler_duration_seconds", ConstLabels: cl, Buckets: cfg.HandlerBuckets,
			Help: "Time a delivery spent in the middleware stack and handler (dead-letter publish included), skipped events left out.",
		}, []string{"group", "type"}),
		inFlight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: ns, Name: "deliveries_in_flight", ConstLabels: cl,
			Help: "Deliveries being handled now, by group.",
		}, []string{"group"}),
		outboxRelayed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "outbox_relayed_total", ConstLabels: cl,
			Help: "Outbox rows an outbox relay published, by table, subject and result (ok, no_stream, timeout, ..., as events_published_total).",
		}, []string{"table", "subject", "result"}),
		outboxLag: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: ns, Name: "outbox_relay_lag_seconds", ConstLabels: cl, Buckets: cfg.OutboxLagBuckets,
			Help: "Time from an event's outbox Publish (in the service's transaction) to the stream's ack of its relayed publish.",
		}, []string{"table"}),
		subjects: newBoundedLabel(cfg.MaxLabelValues),
		types:    newBoundedLabel(cfg.MaxLabelValues),
		orgs:     newBoundedLabel(cfg.MaxLabelValues),
	}
	m.scrape = newScrapeCollector(m)
	var done []prometheus.Collector
	for _, c := range []prometheus.Collector{m.published, m.publishSeconds, m.publishPending, m.deliveries, m.handlerSeconds, m.inFlight, m.scrape, m.outboxRelayed, m.outboxLag} {
		if err := reg.Register(c); err != nil {
			for _, d := range done {
				reg.Unregister(d)
			}
			return nil, fmt.Errorf("%w: %w", ErrRegister, err)
		}
		done = append(done, c)
	}
	return m, nil
}

// Observe records one delivery's outcome: set it as router.Config.Observe
// (Instrument does). It counts jetevents_deliveries_total and, for events
// whose handler ran (or that were dead-lettered), observes
// jetevents_handler_duration_seconds.
func (m *Metrics) Observe(o router.Outcome) {
	outcome := o.Result.String()
	typ := m.types.value(o.Type)
	if m.cfg.OrganizationLabel {
		m.deliveries.WithLabelValues(o.Group, typ, outcome, o.Reason, m.orgs.value(o.OrganizationID)).Inc()
	} else {
		m.deliveries.WithLabelValues(o.Group, typ, outcome, o.Reason).Inc()
	}
	if o.Result != router.ResultSkipped {
		m.handlerSeconds.WithLabelValues(o.Group, typ).Observe(o.Duration.Seconds())
	}
}

// Middleware keeps jetevents_deliveries_in_flight: put it in
// router.Config.Instrument (Instrument does), or in a Watermill router
// (the group is then the handler's name).
func (m *Metrics) Middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		g := m.inFlightGauge(groupOf(msg))
		g.Inc()
		defer g.Dec()
		return h(msg)
	}
}

func (m *Metrics) inFlightGauge(group string) prometheus.Gauge {
	if g, ok := m.inFlightGroups.Load(group); ok {
		return g.(prometheus.Gauge)
	}
	g, _ := m.inFlightGroups.LoadOrStore(group, m.inFlight.WithLabelValues(group))
	return g.(prometheus.Gauge)
}

func groupOf(msg *message.Message) string {
	if d := transport.FromContext(msg.Context()); d != nil && d.Consumer != "" {
		return d.Consumer
	}
	return message.HandlerNameFromCtx(msg.Context())
}

// Instrument hooks m into a router configuration before router.New: its
// Observe (after an Observe already set, which keeps being called) and its
// in-flight Middleware (appended to cfg.Instrument).
func (m *Metrics) Instrument(cfg *router.Config) {
	if prev := cfg.Observe; prev != nil {
		cfg.Observe = func(o router.Outcome) {
			prev(o)
			m.Observe(o)
		}
	} else {
		cfg.Observe = m.Observe
	}
	cfg.Instrument = append(cfg.Instrument, m.Middleware)
}

// WatchRouter makes every scrape read r's Health (bounded by
// Config.ScrapeTimeout): each group's consumer pending, ack pending and
// redelivered counts as the broker reports them, its held messages, whether
// it is up, and its stalls. Watch each router once; two routers with the
// same group names would report the same series twice.
func (m *Metrics) WatchRouter(r *router.Router) { m.scrape.addRouter(r) }
