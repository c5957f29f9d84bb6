package metrics

import (
	"fmt"
	"time"

	"github.com/jetevents/events/envelope"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults of Config.
const (
	// defaultNamespace prefixes every metric name.
	defaultNamespace = "jetevents"
	// defaultMaxLabelValues bounds the distinct values of the subject, type
	// and organization labels.
	defaultMaxLabelValues = 200
	// defaultScrapeTimeout bounds the broker reads of one scrape.
	defaultScrapeTimeout = 2 * time.Second
	// OtherLabel is the label value that stands for every value past
	// MaxLabelValues.
	OtherLabel = "_other"
)

// DefaultHandlerBuckets are the handler duration buckets, in seconds:
// Watermill's components/metrics handler buckets (0.5 ms to 1 s), which fit
// handlers in the µs to ms range, with 2.5 s and 10 s added for slow ones.
var DefaultHandlerBuckets = []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10}

// DefaultPublishBuckets are the publish duration buckets, in seconds: an
// acked publish takes a round trip to the stream leader (0.1 ms on loopback,
// ms across a network) and up to AckTimeout when it fails.
var DefaultPublishBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 10}

// DefaultOutboxLagBuckets are the buckets of the outbox relay's lag, in
// seconds: from Publish in the service's transaction to the stream's ack
// of the relay's publish (a NOTIFY-woken relay: ms; a polling one: up to
// its PollMax; a held subject: its retries).
var DefaultOutboxLagBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}

// Config configures Metrics. Zero fields take the documented defaults.
type Config struct {
	// Namespace prefixes every metric name. Default "jetevents".
	Namespace string

	// ConstLabels are added to every metric (service, region, ...).
	// Default none.
	ConstLabels prometheus.Labels

	// OrganizationLabel adds an "organization" label (the event's
	// organization id) to jetevents_events_published_total and
	// jetevents_deliveries_total. Default false: tenant ids are many and
	// often not for a metrics backend. Capped like the other labels.
	OrganizationLabel bool

	// MaxLabelValues bounds the distinct values of each of the subject,
	// type and organization labels; later values are reported as
	// OtherLabel. Subjects and types come from producers, so a label must
	// not grow with them. Default 200.
	MaxLabelValues int

	// HandlerBuckets are the buckets of jetevents_handler_duration_seconds.
	// Default DefaultHandlerBuckets.
	HandlerBuckets []float64

	// PublishBuckets are the buckets of jetevents_publish_duration_seconds.
	// Default DefaultPublishBuckets.
	PublishBuckets []float64

	// OutboxLagBuckets are the buckets of jetevents_outbox_relay_lag_seconds.
	// Default DefaultOutboxLagBuckets.
	OutboxLagBuckets []float64

	// ScrapeTimeout bounds the broker reads of one scrape: the consumer info
	// of every watched group and the stream info of every watched dead-letter
	// stream. A read that does not answer in time is left out of that scrape
	// and counted in jetevents_scrape_errors_total. Default 2s.
	ScrapeTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.Namespace == "" {
		c.Namespace = defaultNamespace
	}
	if c.MaxLabelValues == 0 {
		c.MaxLabelValues = defaultMaxLabelValues
	}
	if c.HandlerBuckets == nil {
		c.HandlerBuckets = DefaultHandlerBuckets
	}
	if c.PublishBuckets == nil {
		c.PublishBuckets = DefaultPublishBuckets
	}
	if c.OutboxLagBuckets == nil {
		c.OutboxLagBuckets = DefaultOutboxLagBuckets
	}
	if c.ScrapeTimeout == 0 {
		c.ScrapeTimeout = defaultScrapeTimeout
	}
}

// Validate reports a configuration that cannot work; errors match
// envelope.ErrInvalidConfig.
func (c Config) Validate() error {
	switch {
	case c.MaxLabelValues < 1:
		return fmt.Errorf("%w: MaxLabelValues %d must be >= 1", envelope.ErrInvalidConfig, c.MaxLabelValues)
	case c.ScrapeTimeout < 0:
		return fmt.Errorf("%w: ScrapeTimeout %s is negative", envelope.ErrInvalidConfig, c.ScrapeTimeout)
	case len(c.HandlerBuckets) == 0 || len(c.PublishBuckets) == 0 || (c.OutboxLagBuckets != nil && len(c.OutboxLagBuckets) == 0):
		return fmt.Errorf("%w: empty histogram buckets", envelope.ErrInvalidConfig)
	}
	for _, b := range [][]float64{c.HandlerBuckets, c.PublishBuckets, c.OutboxLagBuckets} {
		for i := 1; i < len(b); i++ {
			if b[i] <= b[i-1] {
				return fmt.Errorf("%w: histogram buckets %v not increasing", envelope.ErrInvalidConfig, b)
			}
		}
	}
	return nil
}
