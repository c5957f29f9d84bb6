package metrics

import (
	"context"
	"sync"
	"time"

	natsjs "github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jetevents/events/router"
	"github.com/jetevents/events/transport"
)

// Sources of jetevents_scrape_errors_total.
const (
	// SourceConsumerInfo: a group's consumer info could not be read.
	SourceConsumerInfo = "consumer_info"
	// SourceStreamInfo: a dead-letter stream's info could not be read.
	SourceStreamInfo = "stream_info"
	// SourceOutbox: an outbox table's backlog could not be read.
	SourceOutbox = "outbox"
)

// OutboxBacklog reads an outbox table's backlog: outbox.Outbox.Backlog has
// this signature.
type OutboxBacklog func(ctx context.Context) (table string, pending int64, oldest time.Duration, err error)

// deadLetters is one watched dead-letter stream.
type deadLetters struct {
	js     natsjs.JetStream
	stream string
}

// scrapeCollector reads the broker at scrape time: the watched routers'
// Health (consumer counts, group state) and the watched dead-letter streams'
// depth. What cannot be read within ScrapeTimeout is left out of the scrape
// and counted as a scrape error, so a slow broker never hangs /metrics.
type scrapeCollector struct {
	m *Metrics

	mu       sync.Mutex
	routers  []*router.Router
	dlqs     []deadLetters
	outboxes []OutboxBacklog

	pending, ackPending, redelivered, held, up, stalls, dlqDepth *prometheus.Desc
	paused, pausedUntil                                          *prometheus.Desc
	outboxPending, outboxOldest                                  *prometheus.Desc
	errors                                                       *prometheus.CounterVec
}

func newScrapeCollector(m *Metrics) *scrapeCollector {
	ns, cl := m.cfg.Namespace, m.cfg.ConstLabels
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(ns, "", name), help, labels, cl)
	}
	return &scrapeCollector{
		m:             m,
		pending:       desc("consumer_pending", "Messages in the group's durable consumer not yet delivered (consumer info, read at scrape).", "group"),
		ackPending:    desc("consumer_ack_pending", "Messages delivered to the group's durable and not yet acked, across every process bound to it (consumer info, read at scrape).", "group"),
		redelivered:   desc("consumer_redelivered", "Messages of the group's durable delivered more than once and not yet acked (consumer info, read at scrape).", "group"),
		held:          desc("group_held", "Messages this process holds for the group: queued for its workers and in its handlers.", "group"),
		up:            desc("group_up", "1 while the group pulls, 0 while it is stalled (recovering) or ended.", "group"),
		stalls:        desc("group_stalls_total", "Stalls the group recovered from since the router started.", "group"),
		paused:        desc("group_paused", "1 while the group's durable is paused (it delivers nothing until the pause ends), 0 otherwise (consumer info, read at scrape).", "group"),
		pausedUntil:   desc("group_paused_until_timestamp_seconds", "When the paused group's durable resumes by itself, as a Unix time; only while it is paused (consumer info, read at scrape).", "group"),
		dlqDepth:      desc("dead_letter_messages", "Messages stored in the dead-letter stream (stream info, read at scrape).", "stream"),
		outboxPending: desc("outbox_pending", "Rows of the outbox table committed and not yet relayed (read at scrape).", "table"),
		outboxOldest:  desc("outbox_oldest_age_seconds", "Age of the oldest row of the outbox table, 0 when empty: the relay's lag, or how long a held subject waits (read at scrape).", "table"),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: ns, Name: "scrape_errors_total", ConstLabels: cl,
			Help: "Broker reads at scrape time that failed or timed out, by source (consumer_info, stream_info); their series are missing from that scrape.",
		}, []string{"source"}),
	}
}

func (c *scrapeCollector) addRouter(r *router.Router) {
	if r == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.routers = append(c.routers, r)
}

func (c *scrapeCollector) addDeadLetters(js natsjs.JetStream, stream string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.dlqs = append(c.dlqs, deadLetters{js: js, stream: stream})
}

// Describe implements prometheus.Collector.
func (c *scrapeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.pending, c.ackPending, c.redelivered, c.held, c.up, c.stalls, c.paused, c.pausedUntil, c.dlqDepth, c.outboxPending, c.outboxOldest} {
		ch <- d
	}
	c.errors.Describe(ch)
}

// Collect implements prometheus.Collector: one bounded round of broker
// reads per scrape.
func (c *scrapeCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	routers := append([]*router.Router(nil), c.routers...)
	dlqs := append([]deadLetters(nil), c.dlqs...)
	outboxes := append([]OutboxBacklog(nil), c.outboxes...)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), c.m.cfg.ScrapeTimeout)
	defer cancel()

	gauge := func(d *prometheus.Desc, v float64, label string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, label)
	}
	for _, r := range routers {
		for _, g := range r.Health(ctx).Groups {
			up := 0.0
			if g.State == transport.StateActive {
				up = 1
			}
			gauge(c.up, up, g.Group)
			gauge(c.held, float64(g.Held), g.Group)
			ch <- prometheus.MustNewConstMetric(c.stalls, prometheus.CounterValue, float64(g.Stalls), g.Group)
			if g.InfoErr != nil {
				c.errors.WithLabelValues(SourceConsumerInfo).Inc()
				continue
			}
			gauge(c.pending, float64(g.Pending), g.Group)
			gauge(c.ackPending, float64(g.AckPending), g.Group)
			gauge(c.redelivered, float64(g.Redelivered), g.Group)
			paused := 0.0
			if !g.PausedUntil.IsZero() {
				paused = 1
				gauge(c.pausedUntil, float64(g.PausedUntil.UnixNano())/1e9, g.Group)
			}
			gauge(c.paused, paused, g.Group)
		}
	}
	for _, d := range dlqs {
		s, err := d.js.Stream(ctx, d.stream)
		if err != nil {
			c.errors.WithLabelValues(SourceStreamInfo).Inc()
			continue
		}
		gauge(c.dlqDepth, float64(s.CachedInfo().State.Msgs), d.stream)
	}
	for _, read := range outboxes {
		table, n, oldest, err := read(ctx)
		if err != nil {
			c.errors.WithLabelValues(SourceOutbox).Inc()
			continue
		}
		gauge(c.outboxPending, float64(n), table)
		gauge(c.outboxOldest, oldest.Seconds(), table)
	}
	c.errors.Collect(ch)
}

// WatchDeadLetters makes every scrape read the depth of the dead-letter
// stream (its stored messages) through js, bounded by Config.ScrapeTimeout:
// jetevents_dead_letter_messages{stream}. It grows with every dead letter
// and falls when dead letters are replayed and purged or age out.
func (m *Metrics) WatchDeadLetters(js natsjs.JetStream, stream string) {
	if js == nil || stream == "" {
		return
	}
	m.scrape.addDeadLetters(js, stream)
}

// WatchOutbox makes every scrape read an outbox table's backlog with
// backlog (outbox.Outbox.Backlog), bounded by Config.ScrapeTimeout:
// jetevents_outbox_pending{table} and jetevents_outbox_oldest_age_seconds{table}.
// A read that fails is left out and counted in jetevents_scrape_errors_total{source="outbox"}.
func (m *Metrics) WatchOutbox(backlog OutboxBacklog) {
	if backlog == nil {
		return
	}
	m.scrape.mu.Lock()
	defer m.scrape.mu.Unlock()
	m.scrape.outboxes = append(m.scrape.outboxes, backlog)
}
