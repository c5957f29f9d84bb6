package jetstream

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	natsjs "github.com/nats-io/nats.go/jetstream"
)

// Metadata the Subscriber sets on every delivered Watermill message, read
// from the JetStream delivery (not from the message's headers, so a producer
// cannot forge them). The "js-" prefix is the Subscriber's: before setting
// these, it deletes every "js-" key the Unmarshaler produced, so neither
// these nor the settlement marks below can come from a producer's headers.
const (
	// MetadataStream is the stream the message is stored in.
	MetadataStream = "js-stream"
	// MetadataConsumer is the durable consumer that delivered it.
	MetadataConsumer = "js-consumer"
	// MetadataStreamSeq is its stream sequence (decimal).
	MetadataStreamSeq = "js-stream-seq"
	// MetadataConsumerSeq is the consumer sequence of this delivery (decimal).
	MetadataConsumerSeq = "js-consumer-seq"
	// MetadataDeliveryAttempt is the 1-based delivery attempt (decimal):
	// 1 on first delivery, MaxDeliver on the last one.
	MetadataDeliveryAttempt = "js-delivery-attempt"
	// MetadataSubject is the subject the message was published on.
	MetadataSubject = "js-subject"
)

// Settlement marks a handler (or middleware) sets on a message before it is
// nacked; the Subscriber reads them when the Nack arrives.
const (
	// MetadataTerminate, when present, turns the Nack into
	// TermWithReason(value): no redelivery. Set it with Terminate.
	MetadataTerminate = "js-terminate"
	// MetadataNakDelay, when present, is a Go duration string that replaces
	// NakDelay for this Nack. Set it with NakWithDelay.
	MetadataNakDelay = "js-nak-delay"
)

// rawMsgKey is the context key of the delivered natsjs.Msg.
type rawMsgKey struct{}

// withRawMessage returns ctx carrying msg for RawMessage.
func withRawMessage(ctx context.Context, msg natsjs.Msg) context.Context {
	return context.WithValue(ctx, rawMsgKey{}, msg)
}

// RawMessage returns the JetStream message a Watermill message came from,
// unchanged (headers and payload as stored), when ctx is that message's
// context (msg.Context()) or derives from it. The dead-letter path republishes
// it as is. Do not ack, nak or term it directly: Ack/Nack the Watermill
// message and let the Subscriber settle it.
func RawMessage(ctx context.Context) (natsjs.Msg, bool) {
	if ctx == nil {
		return nil, false
	}
	m, ok := ctx.Value(rawMsgKey{}).(natsjs.Msg)
	return m, ok && m != nil
}

// DeliveryAttempt returns the 1-based delivery attempt of a message delivered
// by the Subscriber, or 0 if msg carries no (valid) MetadataDeliveryAttempt.
func DeliveryAttempt(msg *message.Message) uint64 {
	if msg == nil {
		return 0
	}
	n, err := strconv.ParseUint(msg.Metadata.Get(MetadataDeliveryAttempt), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Terminate marks msg so that its next Nack terminates it on the server
// (TermWithReason(reason)) instead of scheduling a redelivery. It does not
// nack: the caller (or the router, when the handler returns an error) must.
// An empty reason is recorded as "terminated".
func Terminate(msg *message.Message, reason string) {
	if reason == "" {
		reason = "terminated"
	}
	msg.Metadata.Set(MetadataTerminate, reason)
}

// NakWithDelay marks msg so that its next Nack redelivers it after d,
// overriding the subscriber's NakDelay policy (d <= 0: at once). It does not
// nack. Terminate takes precedence over it.
func NakWithDelay(msg *message.Message, d time.Duration) {
	if d < 0 {
		d = 0
	}
	msg.Metadata.Set(MetadataNakDelay, d.String())
}

// metadataPrefix is the prefix of every key the Subscriber owns.
const metadataPrefix = "js-"

// setDeliveryMetadata writes the Metadata* keys of one delivery, after
// deleting any "js-" key the Unmarshaler copied from the headers: a forged
// js-terminate would otherwise turn the handler's retryable error into a
// Term (the event lost, no dead letter).
func setDeliveryMetadata(md message.Metadata, subject string, jm *natsjs.MsgMetadata) {
	for k := range md {
		if strings.HasPrefix(k, metadataPrefix) {
			delete(md, k)
		}
	}
	md[MetadataStream] = jm.Stream
	md[MetadataConsumer] = jm.Consumer
	md[MetadataStreamSeq] = strconv.FormatUint(jm.Sequence.Stream, 10)
	md[MetadataConsumerSeq] = strconv.FormatUint(jm.Sequence.Consumer, 10)
	md[MetadataDeliveryAttempt] = strconv.FormatUint(deliveryAttempt(jm), 10)
	md[MetadataSubject] = subject
}

// deliveryAttempt is NumDelivered, at least 1.
func deliveryAttempt(jm *natsjs.MsgMetadata) uint64 {
	if jm == nil || jm.NumDelivered == 0 {
		return 1
	}
	return jm.NumDelivered
}
