package router

import (
	"context"
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
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
	// CorrelationID is the conversation's id (received, or created at entry).
	CorrelationID string
	// CausedBy is the id of the event whose handling published this one
	// (its ce-causationid), or "" for the first event of a conversation.
	// Not to be confused with envelope.CausationID(ctx), which is the id of
	// this event: the causation of whatever the handler publishes.
	CausedBy string
}

type deliveryKey struct{}

// DeliveryFrom returns the Delivery of the event handled with ctx; ok is
// false outside a router handler.
func DeliveryFrom(ctx context.Context) (d Delivery, ok bool) {
	d, ok = ctx.Value(deliveryKey{}).(Delivery)
	return d, ok
}

func withDelivery(ctx context.Context, msg *message.Message) context.Context {
	seq, _ := strconv.ParseUint(msg.Metadata.Get(jetstream.MetadataStreamSeq), 10, 64)
	return context.WithValue(ctx, deliveryKey{}, Delivery{
		Subject:       msg.Metadata.Get(jetstream.MetadataSubject),
		Stream:        msg.Metadata.Get(jetstream.MetadataStream),
		Consumer:      msg.Metadata.Get(jetstream.MetadataConsumer),
		StreamSeq:     seq,
		Attempt:       jetstream.DeliveryAttempt(msg),
		CorrelationID: msg.Metadata.Get(marshaler.MetadataCorrelationID),
		CausedBy:      msg.Metadata.Get(marshaler.MetadataCausationID),
	})
}
