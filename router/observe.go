package router

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// Result is what became of one delivery.
type Result string

// Results reported to Config.Observe.
const (
	// ResultHandled: the handler returned nil (or the event was a duplicate or
	// of an unknown type, acked: Outcome.Skipped says so); the event is acked.
	ResultHandled Result = "handled"
	// ResultRetried: the handler failed; the event is nacked for redelivery.
	ResultRetried Result = "retried"
	// ResultDeadLettered: the event is in the dead-letter stream; it is acked.
	ResultDeadLettered Result = "dead_lettered"
)

// Why an acked event's handler did not run (Outcome.Skipped).
const (
	// SkippedDuplicate: Config.Idempotency found the event already handled.
	SkippedDuplicate = middleware.SkippedDuplicate
	// SkippedUnknownType: no handler of the group takes the event's type
	// (UnknownTypeAck).
	SkippedUnknownType = middleware.SkippedUnknownType
)

// Outcome describes one delivery, for metrics (Config.Observe).
type Outcome struct {
	// Group is the handler group (durable name).
	Group string
	// Type is the event type ("" when the message could not be decoded).
	Type string
	// Attempt is the 1-based delivery attempt.
	Attempt uint64
	// Result is what became of the delivery.
	Result Result
	// Reason is the dead-letter reason, for ResultDeadLettered.
	Reason string
	// Duration is the time spent in the middleware stack and handler.
	Duration time.Duration
	// Err is the handler's error, if any.
	Err error
	// Skipped, for ResultHandled, says why the handler did not run:
	// SkippedDuplicate or SkippedUnknownType ("" when it ran).
	Skipped string
	// OrganizationID is the event's organization ("" when it has none or
	// could not be decoded), for metrics that opt in to it.
	OrganizationID string
}

// observe is the metrics hook: it sits just inside Logging and outside the
// dead-letter middleware, so that it sees each delivery's final verdict.
func (r *Router) observe(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		start := r.cfg.Clock.Now()
		out, err := h(msg)
		var group string
		var attempt uint64
		if d := transport.FromContext(msg.Context()); d != nil {
			group, attempt = d.Consumer, d.Attempt
		}
		o := Outcome{
			Group:          group,
			Type:           msg.Metadata.Get(marshaler.MetadataType),
			Attempt:        attempt,
			Duration:       r.cfg.Clock.Now().Sub(start),
			Err:            err,
			Result:         ResultHandled,
			OrganizationID: msg.Metadata.Get(marshaler.MetadataOrganization),
		}
		switch reason := msg.Metadata.Get(middleware.MetadataDeadLetterReason); {
		case err != nil:
			o.Result = ResultRetried
		case reason != "":
			o.Result, o.Reason = ResultDeadLettered, reason
			if cause := msg.Metadata.Get(middleware.MetadataDeadLetterError); cause != "" {
				o.Err = errorString(cause)
			}
		default:
			o.Skipped = msg.Metadata.Get(middleware.MetadataSkipped)
		}
		r.cfg.Observe(o)
		return out, err
	}
}

// errorString carries a dead-letter error text as an error.
type errorString string

func (e errorString) Error() string { return string(e) }
