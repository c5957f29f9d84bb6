package metrics

import (
	"time"

	"github.com/jetevents/events/jetstream"
)

// OutboxRelayed records one row an outbox relay published: set it as
// outbox.RelayConfig.OnRelayed. It counts
// jetevents_outbox_relayed_total{table,subject,result} (result named as in
// jetevents_events_published_total) and observes the lag of a stored row
// in jetevents_outbox_relay_lag_seconds{table}.
//
// Why plain arguments and not an outbox type: this package must not import
// outbox, which links pgx, so that a service with metrics and no outbox
// links no database driver code.
func (m *Metrics) OutboxRelayed(table, subject string, lag time.Duration, err error) {
	result := resultOf(jetstream.PublishResult{Err: err})
	m.outboxRelayed.WithLabelValues(table, m.subjects.value(subject), result).Inc()
	if err == nil {
		m.outboxLag.WithLabelValues(table).Observe(lag.Seconds())
	}
}
