package memory_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/memory"
	"github.com/jetevents/events/subscriber"
	"github.com/jetevents/events/transport"
)

// Watermill's universal Pub/Sub suite against the bus's own MessagePublisher
// and Subscriber. The suite publishes arbitrary payloads ("x", "42", nil),
// and our publishers carry events only; so the suite's messages are wrapped
// into events on the way in (suitePublisher: UUID = event id, payload in the
// event's data, metadata as headers) and unwrapped on the way out
// (suiteUnmarshaler). Everything between, the library's publisher, the bus
// and its subscriber, runs as shipped.

// conformanceFeatures is what the memory bus promises, flag by flag.
func conformanceFeatures() tests.Features {
	return tests.Features{
		// A consumer group is a durable: subscribers with the same Durable
		// share its messages, another Durable gets all of them.
		ConsumerGroups: true,
		// At-least-once, as JetStream: a Nack, an AckWait expiry or a close
		// with messages in flight hands them back.
		ExactlyOnceDelivery: false,
		// A durable delivers in stream order, and with Concurrency 1 the next
		// message is sent only after the previous one is settled. Several
		// subscribers sharing a durable take turns, so the order holds ...
		GuaranteedOrder: true,
		// ... for one subscriber only.
		GuaranteedOrderWithSingleSubscriber: true,
		// Messages live in the bus's streams across Subscriber and Publisher
		// instances on it (the suite builds new ones on the same bus), for
		// the life of the Bus: nothing outlives the process.
		Persistent: true,
		// Subscribers without a group share the durable derived from the
		// topic: a new one continues where it is, as on JetStream.
		NewSubscriberReceivesOldMessages: false,
		// There is no server to restart.
		RestartServiceCommand: nil,
		// Any number of Subscribers and Publishers run on one bus.
		RequireSingleInstance: false,
		// Messages are stored as bytes and headers, as on the wire: a
		// context does not travel (a test passing here passes on JetStream).
		ContextPreserved: false,
		// The full sizes run in seconds.
		ForceShort: false,
	}
}

// suiteEvent carries a suite payload (any bytes) in an event's data.
type suiteEvent struct {
	Payload []byte `json:"payload"`
}

// suitePublisher wraps each suite message into an event and publishes it
// with the library's publisher.
type suitePublisher struct{ message.Publisher }

func (p suitePublisher) Publish(topic string, msgs ...*message.Message) error {
	wrapped := make([]*message.Message, len(msgs))
	for i, m := range msgs {
		e, err := envelope.NewWithData("conformance.message", "watermill-conformance", "", time.Now(), suiteEvent{Payload: m.Payload})
		if err != nil {
			return err
		}
		e.ID = m.UUID
		wm, err := marshaler.Default().ToMessage(e)
		if err != nil {
			return err
		}
		for k, v := range m.Metadata {
			wm.Metadata[k] = v
		}
		wm.SetContext(m.Context())
		wrapped[i] = wm
	}
	return p.Publisher.Publish(topic, wrapped...)
}

// suiteUnmarshaler decodes with the library's marshaler, then gives the
// message the suite's payload back.
type suiteUnmarshaler struct{}

func (suiteUnmarshaler) Unmarshal(_ string, header map[string][]string, data []byte) (*message.Message, error) {
	wm, e, err := marshaler.Default().DecodeNATS(header, data)
	if err != nil {
		return nil, err
	}
	var se suiteEvent
	if err := json.Unmarshal(e.Data, &se); err != nil {
		return nil, err
	}
	wm.Payload = se.Payload
	return wm, nil
}

// suiteSubscriber forgives Close the one error the suite provokes on
// purpose (TestMessageCtx closes with a message it never acked: it is nacked
// at the deadline and Close says so with ErrCloseTimeout).
type suiteSubscriber struct{ *subscriber.Subscriber }

func (s suiteSubscriber) Close() error {
	if err := s.Subscriber.Close(); err != nil && !errors.Is(err, transport.ErrCloseTimeout) {
		return err
	}
	return nil
}

func conformanceConstructors(t *testing.T) (tests.PubSubConstructor, tests.ConsumerGroupPubSubConstructor) {
	bus, err := memory.NewBus(memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = bus.Close() })
	withGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		t.Helper()
		pub, err := memory.NewMessagePublisher(bus, nil)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := subscriber.New(bus, subscriber.Config{
			Durable:        group,
			StreamForTopic: func(topic string) string { return topic },
			InitializeStream: func(_ context.Context, stream, topic string) error {
				return bus.AddStream(memory.StreamConfig{Name: stream, Subjects: []string{topic}})
			},
			Unmarshal: suiteUnmarshaler{}.Unmarshal,
			// The suite expects a Nack'd message back at once; the delay
			// policy has its own tests.
			NakDelay: func(uint64) time.Duration { return 0 },
			// Only TestMessageCtx closes with an unsettled message.
			CloseTimeout: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		return suitePublisher{pub}, suiteSubscriber{sub}
	}
	return func(t *testing.T) (message.Publisher, message.Subscriber) { return withGroup(t, "") }, withGroup
}

func TestPubSubConformance_MessagePublisher_and_Subscriber(t *testing.T) {
	pubSub, withGroup := conformanceConstructors(t)
	tests.TestPubSub(t, conformanceFeatures(), pubSub, withGroup)
}
