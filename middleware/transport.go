package middleware

import (
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
)

// This file is the only one that reads the jetstream subscriber's contract
// (metadata keys, raw message in the context, settle marks), so that a change
// of the transport touches one place.

// delivery is what the middleware knows about one delivery of a message.
// Fields the transport did not provide are zero: a message from another
// subscriber (the in-memory bus of eventstest) has no stream or sequence.
type delivery struct {
	subject   string
	stream    string
	consumer  string
	streamSeq uint64
	attempt   uint64 // 1-based; 0 when unknown
	raw       natsjs.Msg
}

// deliveryOf reads the delivery of msg: from the raw JetStream message when
// the subscriber put it in the context (authoritative), else from the
// subscriber's metadata.
func deliveryOf(msg *message.Message) delivery {
	var d delivery
	if raw, ok := jetstream.RawMessage(msg.Context()); ok && raw != nil {
		d.raw = raw
		d.subject = raw.Subject()
		if md, err := raw.Metadata(); err == nil {
			d.stream, d.consumer = md.Stream, md.Consumer
			d.streamSeq, d.attempt = md.Sequence.Stream, md.NumDelivered
		}
	}
	if d.subject == "" {
		d.subject = msg.Metadata.Get(jetstream.MetadataSubject)
	}
	if d.stream == "" {
		d.stream = msg.Metadata.Get(jetstream.MetadataStream)
	}
	if d.consumer == "" {
		d.consumer = msg.Metadata.Get(jetstream.MetadataConsumer)
	}
	if d.streamSeq == 0 {
		d.streamSeq, _ = strconv.ParseUint(msg.Metadata.Get(jetstream.MetadataStreamSeq), 10, 64)
	}
	if d.attempt == 0 {
		d.attempt = jetstream.DeliveryAttempt(msg)
	}
	return d
}

// deliveryFromRaw reads the delivery of a raw JetStream message (the
// subscriber's undecodable hook has no Watermill message).
func deliveryFromRaw(raw natsjs.Msg) delivery {
	d := delivery{raw: raw, subject: raw.Subject()}
	if md, err := raw.Metadata(); err == nil {
		d.stream, d.consumer = md.Stream, md.Consumer
		d.streamSeq, d.attempt = md.Sequence.Stream, md.NumDelivered
	}
	return d
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

// nakWithDelay asks the subscriber to redeliver msg after d when it is Nacked.
func nakWithDelay(msg *message.Message, d time.Duration) { jetstream.NakWithDelay(msg, d) }

// nakDelayOf returns the delay set by nakWithDelay, if any (for logging).
func nakDelayOf(msg *message.Message) string { return msg.Metadata.Get(jetstream.MetadataNakDelay) }
