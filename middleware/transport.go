package middleware

import (
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// This file is the only one that reads the transport's delivery view (the
// *transport.Delivery every transport puts in a message's context), so that
// a change of the seam touches one place. The view is parsed once by the
// transport and shared by every middleware: nothing here re-reads metadata
// strings.

// deliveryOf returns the delivery of msg, or an empty one when msg did not
// come from a transport (a message built by hand in a unit test): every
// field is then zero and the attempt unknown.
func deliveryOf(msg *message.Message) *transport.Delivery {
	if d := transport.FromContext(msg.Context()); d != nil {
		return d
	}
	return &transport.Delivery{Subject: message.SubscribeTopicFromCtx(msg.Context())}
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

// nakWithDelay asks the transport to redeliver msg after d when it fails.
func nakWithDelay(msg *message.Message, d time.Duration) {
	if dv := transport.FromContext(msg.Context()); dv != nil {
		dv.SetNakDelay(d)
	}
}

// nakDelayOf returns the delay set by nakWithDelay, if any (for logging).
func nakDelayOf(msg *message.Message) (time.Duration, bool) {
	if dv := transport.FromContext(msg.Context()); dv != nil {
		return dv.NakDelay()
	}
	return 0, false
}
