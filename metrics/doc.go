// Package metrics exports jetevents' publishing and consuming to Prometheus:
// one call (New) registers every collector on a prometheus.Registerer, and
// the Metrics it returns implements the hooks the other packages expose, so
// that none of them imports Prometheus:
//
//	reg := prometheus.NewRegistry()
//	m, err := metrics.New(reg, metrics.Config{})
//	pub, err := jetstream.NewPublisher(nc, jetstream.PublisherConfig{Observers: []jetstream.PublishObserver{m.PublishObserver}})
//	cfg := router.Config{Stream: "AUTH_EVENTS"}
//	m.Instrument(&cfg) // Observe (outcomes) and Instrument (in flight)
//	r, err := router.New(nc, cfg)
//	m.WatchRouter(r)                    // consumer pending / ack pending / redelivered at scrape
//	js, err := natsjs.New(nc)           // natsjs "github.com/nats-io/nats.go/jetstream"
//	m.WatchDeadLetters(js, "DLQ")       // DLQ depth at scrape
//
// Without it nothing is counted and nothing costs: the router and the
// publisher skip hooks that are not set.
//
// What is measured, with bounded labels (no event ids; organization ids only
// with Config.OrganizationLabel; subjects, types and organizations capped at
// Config.MaxLabelValues distinct values, the rest counted as "_other"):
//
//	jetevents_events_published_total{subject,result}        counter
//	jetevents_publish_duration_seconds{mode}                histogram
//	jetevents_publish_pending                               gauge
//	jetevents_deliveries_total{group,type,outcome,reason}   counter
//	jetevents_handler_duration_seconds{group,type}          histogram
//	jetevents_deliveries_in_flight{group}                   gauge
//	jetevents_consumer_pending{group}                       gauge (scrape)
//	jetevents_consumer_ack_pending{group}                   gauge (scrape)
//	jetevents_consumer_redelivered{group}                   gauge (scrape)
//	jetevents_group_held{group}                             gauge (scrape)
//	jetevents_group_up{group}                               gauge (scrape)
//	jetevents_group_stalls_total{group}                     counter (scrape)
//	jetevents_group_paused{group}                           gauge (scrape)
//	jetevents_group_paused_until_timestamp_seconds{group}   gauge (scrape, while paused)
//	jetevents_dead_letter_messages{stream}                  gauge (scrape)
//	jetevents_scrape_errors_total{source}                   counter
//	jetevents_outbox_relayed_total{table,subject,result}    counter (outbox.RelayConfig.OnRelayed = m.OutboxRelayed)
//	jetevents_outbox_relay_lag_seconds{table}               histogram
//	jetevents_outbox_pending{table}                         gauge (scrape, m.WatchOutbox(ob.Backlog))
//	jetevents_outbox_oldest_age_seconds{table}              gauge (scrape)
//
// The README's Observability section says what each means and gives alerts.
//
// Why not Watermill's components/metrics: it decorates a message.Router's
// handlers, publishers and subscribers and labels by handler name, while the
// router here runs its own pipeline (no message.Router, no handler names:
// groups and event types) and the outcome of a delivery (retried,
// dead-lettered and why, a skipped duplicate) is only known to the router's
// Observe hook; its publish decorator sees a Watermill Publish call, not the
// ack of an async publish. Its histogram buckets for handler time are kept
// (DefaultHandlerBuckets), so dashboards built on them read the same.
//
// In the package map of the README it sits beside the root facade, above router:
// it imports router, jetstream, middleware, transport and marshaler, and
// nothing of this module imports it. It does not import outbox (which links
// pgx): its outbox hooks take plain values.
package metrics
