package memory

import (
	"fmt"
	"sync"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/transport"
)

// MessagePublisher is a Watermill message.Publisher on a Bus, the
// counterpart of jetstream.MessagePublisher: messages must be events (made
// by marshaler.ToMessage or the CQRS marshaler, or received and forwarded)
// and are encoded with the marshaler's Marshal, the correlation and
// causation ids coming from the metadata or else the message's context.
// Safe for concurrent use.
type MessagePublisher struct {
	b *Bus
	m *marshaler.Marshaler

	mu     sync.Mutex
	closed bool
}

var _ message.Publisher = (*MessagePublisher)(nil)

// NewMessagePublisher returns a MessagePublisher on b encoding with m
// (marshaler.Default() when nil). Its Close never closes b.
func NewMessagePublisher(b *Bus, m *marshaler.Marshaler) (*MessagePublisher, error) {
	if b == nil {
		return nil, fmt.Errorf("memory message publisher: %w: nil Bus", envelope.ErrInvalidConfig)
	}
	if m == nil {
		m = marshaler.Default()
	}
	return &MessagePublisher{b: b, m: m}, nil
}

// Publish stores messages on topic (the subject, as given), in order. If
// any message cannot be encoded nothing is stored. The error is a
// *BatchError with one entry per message when any failed.
func (mp *MessagePublisher) Publish(topic string, messages ...*message.Message) error {
	if len(messages) == 0 {
		return nil
	}
	mp.mu.Lock()
	closed := mp.closed
	mp.mu.Unlock()
	if closed {
		return fmt.Errorf("publish %s: %w", topic, transport.ErrClosed)
	}
	if err := envelope.ValidateSubject(topic); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	msgs := make([]*nats.Msg, len(messages))
	errs := make([]error, len(messages))
	invalid := false
	for i, wm := range messages {
		if wm == nil {
			errs[i] = fmt.Errorf("publish %s: %w: nil message", topic, envelope.ErrInvalidEvent)
		} else if msgs[i], errs[i] = mp.m.Marshal(topic, wm); errs[i] != nil {
			errs[i] = fmt.Errorf("publish %s: %w: %w", topic, envelope.ErrInvalidEvent, errs[i])
		} else if errs[i] = marshaler.CheckMaxPayload(msgs[i], int64(mp.b.MaxPayload())); errs[i] != nil {
			errs[i] = fmt.Errorf("publish %s message %s: %w", topic, wm.UUID, errs[i])
		}
		invalid = invalid || errs[i] != nil
	}
	if invalid {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("publish %s message %s: %w: another message of the call cannot be encoded", topic, messages[i].UUID, transport.ErrNotSent)
			}
		}
		return &BatchError{Errs: errs}
	}
	failed := false
	for i, m := range msgs {
		_, errs[i] = mp.b.publish(topic, m.Header, m.Data, m.Header.Get(nats.MsgIdHdr), "")
		failed = failed || errs[i] != nil
	}
	if failed {
		return &BatchError{Errs: errs}
	}
	return nil
}

// Close makes later publishes fail with transport.ErrClosed; it never closes the Bus.
func (mp *MessagePublisher) Close() error {
	mp.mu.Lock()
	mp.closed = true
	mp.mu.Unlock()
	return nil
}
