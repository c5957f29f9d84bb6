package middleware_test

import (
	"context"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// delivered builds a Watermill message as a transport delivers it: the
// decoded event's metadata, and the delivery view (*transport.Delivery) in
// its context, without the stored headers and payload (Header, Data nil).
func delivered(eventID, subject string, streamSeq, attempt uint64) *message.Message {
	msg := message.NewMessage(eventID, []byte(`{"id":"`+eventID+`"}`))
	msg.Metadata.Set(marshaler.MetadataID, eventID)
	msg.Metadata.Set(marshaler.MetadataType, "user.created")
	msg.SetContext(transport.NewContext(context.Background(), &transport.Delivery{
		Subject: subject, Stream: "AUTH_EVENTS", Consumer: "users",
		StreamSeq: streamSeq, Attempt: attempt,
	}))
	return msg
}

// nakDelay is the redelivery delay middleware marked on msg's delivery, as
// text ("" when unmarked or msg has no delivery).
func nakDelay(msg *message.Message) string {
	dv := transport.FromContext(msg.Context())
	if dv == nil {
		return ""
	}
	if dv.Verdict.Kind == transport.Retried {
		return dv.Verdict.Delay.String()
	}
	return ""
}

// handlerReturning is a handler that counts its calls and returns err.
func handlerReturning(calls *int, err error) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		*calls++
		return nil, err
	}
}
