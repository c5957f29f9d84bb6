package router

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/middleware"
	"github.com/jetevents/events/transport"
)

// Result is what became of one delivery: its verdict's outcome, the
// module's one vocabulary (transport.Outcome; its String is the label
// metrics and traces use).
type Result = transport.Outcome

// Results reported to Config.Observe.
const (
	// ResultHandled: the handler returned nil; the event is acked.
	ResultHandled = transport.Handled
	// ResultRetried: the handler failed; the event is nacked for redelivery.
	ResultRetried = transport.Retried
	// ResultDeadLettered: the event is in the dead-letter stream; it is acked.
	ResultDeadLettered = transport.DeadLettered
	// ResultSkipped: the handler did not run (Outcome.Reason says why:
	// transport.SkipDuplicate, transport.SkipUnknownType); it is acked.
	ResultSkipped = transport.Skipped
)

// Outcome describes one delivery, for metrics (Config.Observe).
type Outcome struct {
	// Group is the handler group (durable name).
	Group string
	// Type is the event type ("" when the message could not be decoded).
	Type string
	// Attempt is the 1-based handler attempt.
	Attempt uint64
	// Result is what became of the delivery.
	Result Result
	// Reason is the dead-letter reason (ResultDeadLettered) or why the
	// handler did not run (ResultSkipped).
	Reason string
	// Duration is the time spent in the middleware stack and handler.
	Duration time.Duration
	// Err is the handler's error, if any.
	Err error
	// OrganizationID is the event's organization ("" when it has none or
	// could not be decoded), for metrics that opt in to it.
	OrganizationID string
}

// final is the verdict a delivery is settled by, from what the stack
// decided (v) and returned (err): an error without a retry verdict (a user
// or Instrument middleware's own) is a retry; nil without a verdict is
// handled. (The retry's delay is the pipeline's business.)
func final(v transport.Verdict, err error) transport.Verdict {
	switch {
	case err != nil && v.Kind != transport.Retried:
		return transport.Verdict{Kind: transport.Retried, Err: err}
	case err == nil && (v.Kind == transport.Undecided || v.Kind == transport.Retried):
		return transport.Verdict{Kind: transport.Handled}
	}
	return v
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
		v := final(middleware.VerdictOf(msg), err)
		r.cfg.Observe(Outcome{
			Group:          group,
			Type:           msg.Metadata.Get(marshaler.MetadataType),
			Attempt:        attempt,
			Duration:       r.cfg.Clock.Now().Sub(start),
			Result:         v.Kind,
			Reason:         v.Reason,
			Err:            v.Err,
			OrganizationID: msg.Metadata.Get(marshaler.MetadataOrganization),
		})
		return out, err
	}
}
