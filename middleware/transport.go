package middleware

import (
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// This file is the only one that reads the transport's delivery view (the
// *transport.Delivery every transport puts in a message's context), so that
// a change of the seam touches one place. The view is parsed once by the
// transport and shared by every middleware: nothing here re-reads metadata
// strings. The verdict a middleware decides (retry, dead-lettered,
// skipped) is written on it, for the settlement and the outer middleware.

// deliveryOf returns the delivery of msg. A message that did not come from a
// transport (built by hand, or from a foreign Subscriber) gets an empty one
// attached to its context the first time, so that verdicts decided on it
// are seen by the middleware outside: every field is zero and the attempt
// unknown.
func deliveryOf(msg *message.Message) *transport.Delivery {
	if d := transport.FromContext(msg.Context()); d != nil {
		return d
	}
	d := &transport.Delivery{Subject: message.SubscribeTopicFromCtx(msg.Context())}
	msg.SetContext(transport.NewContext(msg.Context(), d))
	return d
}

// setVerdict records v as msg's verdict.
func setVerdict(msg *message.Message, v transport.Verdict) { deliveryOf(msg).Verdict = v }

// VerdictOf returns the verdict the middleware decided on msg so far (the
// zero Verdict when none did).
func VerdictOf(msg *message.Message) transport.Verdict {
	if d := transport.FromContext(msg.Context()); d != nil {
		return d.Verdict
	}
	return transport.Verdict{}
}

// eventID is the id of the event msg carries: the ce-id metadata the
// marshaler sets, else the Watermill UUID (which the marshaler sets to the
// same id).
func eventID(msg *message.Message) string {
	if id := msg.Metadata.Get(marshaler.MetadataID); id != "" {
		return id
	}
	return msg.UUID
}
