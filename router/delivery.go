package router

import (
	"context"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// Delivery describes the delivery of the event a handler is handling: where
// it came from, which attempt this is, and the conversation it belongs to.
// Handlers read it with DeliveryFrom(ctx).
type Delivery struct {
	// Subject the event was published on.
	Subject string
	// Stream and Consumer (durable) that delivered it; StreamSeq is its
	// sequence in the stream.
	Stream, Consumer string
	StreamSeq        uint64
	// Attempt is the 1-based delivery attempt: 1 first, MaxDeliver last.
	Attempt uint64
	// CorrelationID is the conversation's id (received, or the event's own
	// id for the first event of a conversation).
	CorrelationID string
	// CausedBy is the id of the event whose handling published this one
	// (its ce-causationid), or "" for the first event of a conversation.
	// Not to be confused with envelope.CausationID(ctx), which is the id of
	// this event: the causation of whatever the handler publishes.
	CausedBy string
}

// DeliveryFrom returns the Delivery of the event handled with ctx; ok is
// false outside a router handler. It is built on demand from the delivery
// the transport parsed once.
func DeliveryFrom(ctx context.Context) (d Delivery, ok bool) {
	td := transport.FromContext(ctx)
	if td == nil {
		return Delivery{}, false
	}
	d = Delivery{
		Subject:       td.Subject,
		Stream:        td.Stream,
		Consumer:      td.Consumer,
		StreamSeq:     td.StreamSeq,
		Attempt:       td.Attempt,
		CorrelationID: envelope.CorrelationID(ctx),
	}
	if c, _ := td.Value.(*carrier); c != nil && c.msg != nil {
		d.CausedBy = c.msg.Metadata.Get(marshaler.MetadataCausationID)
		if d.CorrelationID == "" {
			d.CorrelationID = c.msg.Metadata.Get(marshaler.MetadataCorrelationID)
		}
	}
	return d, true
}
