package jetstream

import (
	"context"
	"fmt"
	"maps"
	"slices"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/partition"
	"github.com/jetevents/events/transport"
)

// MessagePublisher is a Watermill message.Publisher over a Publisher's
// machinery: the same connection, pending window, timeouts and counters.
// Messages must be events (built with marshaler.ToMessage, or received and
// forwarded); they are encoded with the marshaler's Marshal.
type MessagePublisher struct {
	p   *Publisher
	own bool
}

var _ message.Publisher = (*MessagePublisher)(nil)

// NewMessagePublisher returns a MessagePublisher with a Publisher of its own
// on nc (configured by opts); its Close closes that Publisher, never nc.
func NewMessagePublisher(nc *nats.Conn, config ...PublisherConfig) (*MessagePublisher, error) {
	p, err := NewPublisher(nc, config...)
	if err != nil {
		return nil, err
	}
	return &MessagePublisher{p: p, own: true}, nil
}

// MessagePublisher returns a Watermill view of p. Its Close waits for p's
// pending publishes (Flush, bounded by CloseTimeout) but leaves p open:
// closing p stays the job of p's owner.
func (p *Publisher) MessagePublisher() *MessagePublisher {
	return &MessagePublisher{p: p}
}

// Publish publishes messages on topic (the NATS subject, as given: never
// derived from a stream name), pipelined, and waits for every ack. A message
// is encoded with Marshal: its metadata become headers, its UUID should be
// the event id (Nats-Msg-Id comes from the ce-id metadata). Correlation and
// causation ids are taken from the metadata, or else from the message's
// context. If any message cannot be encoded nothing is sent. The error is a
// *BatchError with one entry per message (nil: stored) when any failed;
// errors.Is works through it. Each ack is awaited for up to AckTimeout.
func (mp *MessagePublisher) Publish(topic string, messages ...*message.Message) error {
	if len(messages) == 0 {
		return nil
	}
	var dones []func(PublishResult)
	if mp.p.observing() {
		messages = slices.Clone(messages) // the caller's slice is left as it is
		dones = make([]func(PublishResult), len(messages))
		for i, wm := range messages {
			var ctx context.Context
			if wm != nil {
				ctx = wm.Context()
			}
			octx, done := mp.p.observe(ctx, messageInfo(topic, wm))
			dones[i] = done
			if wm != nil && octx != nil && octx != ctx {
				// Encoded with the observers' context (a producer span),
				// without changing the caller's message.
				cp := message.NewMessage(wm.UUID, wm.Payload)
				cp.Metadata = wm.Metadata
				cp.SetContext(octx)
				messages[i] = cp
			}
		}
	}
	failAll := func(err error) error {
		for i := range messages {
			finish(doneAt(dones, i), err)
		}
		return err
	}
	if mp.p.isClosed() {
		return failAll(fmt.Errorf("publish %s: %w", topic, transport.ErrClosed))
	}
	if err := envelope.ValidateSubject(topic); err != nil {
		return failAll(fmt.Errorf("publish: %w", err))
	}
	msgs := make([]*nats.Msg, len(messages))
	errs := make([]error, len(messages))
	invalid := false
	for i, wm := range messages {
		msgs[i], errs[i] = mp.encode(topic, wm)
		invalid = invalid || errs[i] != nil
	}
	if invalid {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("publish %s message %s: %w: another message of the call cannot be encoded", topic, messages[i].UUID, transport.ErrNotSent)
			}
			finish(doneAt(dones, i), errs[i])
		}
		return &BatchError{Errs: errs}
	}
	return mp.p.sendBatch(context.Background(), msgs, dones)
}

func (mp *MessagePublisher) encode(topic string, wm *message.Message) (*nats.Msg, error) {
	if wm == nil {
		return nil, fmt.Errorf("publish %s: %w: nil message", topic, envelope.ErrInvalidEvent)
	}
	wm = withContextRelations(wm)
	msg, err := mp.p.m.Marshal(topic, wm)
	if err != nil {
		// ErrNotAnEvent and ErrInvalidMetadata are the marshaler's; envelope.ErrInvalidEvent
		// lets callers treat every "cannot be sent as is" the same way.
		return nil, fmt.Errorf("publish %s: %w: %w", topic, envelope.ErrInvalidEvent, err)
	}
	if partition.Specs(mp.p.cfg.Partitions).Covers(topic) {
		// The key is the event's: read it back from what was encoded.
		_, e, err := mp.p.m.DecodeNATS(msg.Header, msg.Data)
		if err != nil {
			return nil, fmt.Errorf("publish %s message %s: %w: a partitioned subject needs an event to read its key from: %w", topic, wm.UUID, envelope.ErrInvalidEvent, err)
		}
		placed, header := partition.Specs(mp.p.cfg.Partitions).Place(topic, e)
		msg.Subject = placed
		msg.Header.Set(partition.Header, header)
	}
	if err := marshaler.CheckMaxPayload(msg, mp.p.nc.MaxPayload()); err != nil {
		return nil, fmt.Errorf("publish %s message %s: %w", topic, wm.UUID, err)
	}
	return msg, nil
}

// withContextRelations returns wm, or a copy of it (the caller's message is
// not modified) whose metadata also carries the correlation and causation
// ids of its context that the metadata lacks.
func withContextRelations(wm *message.Message) *message.Message {
	rel := marshaler.RelationsFromContext(wm.Context())
	addCorr := rel.CorrelationID != "" && wm.Metadata.Get(marshaler.MetadataCorrelationID) == ""
	addCaus := rel.CausationID != "" && wm.Metadata.Get(marshaler.MetadataCausationID) == ""
	if !addCorr && !addCaus {
		return wm
	}
	cp := &message.Message{UUID: wm.UUID, Payload: wm.Payload, Metadata: maps.Clone(wm.Metadata)}
	if cp.Metadata == nil {
		cp.Metadata = make(message.Metadata, 2)
	}
	if addCorr {
		cp.Metadata[marshaler.MetadataCorrelationID] = rel.CorrelationID
	}
	if addCaus {
		cp.Metadata[marshaler.MetadataCausationID] = rel.CausationID
	}
	return cp
}

// Close flushes pending publishes; for a MessagePublisher made by
// NewMessagePublisher it then closes its Publisher (see Publisher.Close).
// It never closes the connection.
func (mp *MessagePublisher) Close() error {
	if mp.own {
		return mp.p.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), mp.p.cfg.CloseTimeout)
	defer cancel()
	return mp.p.Flush(ctx)
}

// Publisher returns the Publisher underneath.
func (mp *MessagePublisher) Publisher() *Publisher { return mp.p }
