package middleware_test

import (
	"strconv"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
)

// delivered builds a Watermill message as the jetstream subscriber delivers
// it (metadata only; no raw message in the context).
func delivered(eventID, subject string, streamSeq, attempt uint64) *message.Message {
	msg := message.NewMessage(eventID, []byte(`{"id":"`+eventID+`"}`))
	msg.Metadata.Set(marshaler.MetadataID, eventID)
	msg.Metadata.Set(marshaler.MetadataType, "user.created")
	msg.Metadata.Set(jetstream.MetadataSubject, subject)
	msg.Metadata.Set(jetstream.MetadataStream, "AUTH_EVENTS")
	msg.Metadata.Set(jetstream.MetadataConsumer, "users")
	msg.Metadata.Set(jetstream.MetadataStreamSeq, strconv.FormatUint(streamSeq, 10))
	msg.Metadata.Set(jetstream.MetadataDeliveryAttempt, strconv.FormatUint(attempt, 10))
	return msg
}

// handlerReturning is a handler that counts its calls and returns err.
func handlerReturning(calls *int, err error) message.HandlerFunc {
	return func(msg *message.Message) ([]*message.Message, error) {
		*calls++
		return nil, err
	}
}
