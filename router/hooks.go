package router

import (
	"fmt"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/jetevents/events/envelope"
)

// The router's observability hooks. The router imports neither Prometheus
// nor OpenTelemetry: it calls hooks, and packages metrics and tracing
// implement them. With no hook set nothing is wrapped or called, so a router
// without observability pays nothing for it.
//
//   - Config.Observe receives every delivery's Outcome (group, type, attempt,
//     handled / retried / dead-lettered with its reason, skipped duplicate or
//     unknown type, duration): counters and histograms.
//   - Config.Instrument wraps every group's whole stack, once per delivery,
//     outermost:
//
//	[Instrument...] -> Correlation -> Logging -> [Observe] -> DeadLetterer -> Retry -> [Middleware...] -> [Idempotency] -> [Timeout] -> Recoverer -> handler
//
//     An Instrument middleware sees the message decoded (its metadata holds
//     the event's attributes and, as received, its traceparent; its
//     context holds the transport's delivery, transport.FromContext), and
//     the context it sets on the message with SetContext is the one the
//     handler gets and publishes with (a consumer span there is the parent
//     of what the handler publishes). It sees each delivery's final verdict:
//     an error when the delivery is nacked for a redelivery; nil when it is
//     acked: handled, skipped (metadata middleware.MetadataSkipped) or
//     dead-lettered (metadata middleware.MetadataDeadLetterReason). It must
//     return the stack's error unchanged (an error it adds makes the
//     delivery a retry) and must not hold the message past its return.
//   - Health (health.go) gives each group's state and the durable's counts
//     from the broker, for a readiness probe or a scrape-time collector.
//
// The publish side's hook is jetstream.PublishObserver.

// instrument wraps a group's stack in Config.Instrument, the first outermost.
func (r *Router) instrument(h message.HandlerFunc) message.HandlerFunc {
	for i := len(r.cfg.Instrument) - 1; i >= 0; i-- {
		h = r.cfg.Instrument[i](h)
	}
	return h
}

// validateHooks refuses a nil Instrument middleware.
func (c Config) validateHooks() error {
	for i, m := range c.Instrument {
		if m == nil {
			return fmt.Errorf("%w: Instrument[%d] is nil", envelope.ErrInvalidConfig, i)
		}
	}
	return nil
}
