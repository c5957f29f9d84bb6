package jetstream_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/tests"
	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/jetevents/events/envelope"
	"github.com/jetevents/events/eventstest"
	"github.com/jetevents/events/jetstream"
	"github.com/jetevents/events/marshaler"
	"github.com/jetevents/events/subscriber"
	"github.com/jetevents/events/transport"
)

// Watermill's universal Pub/Sub suite against the library's own Watermill
// pair: MessagePublisher (the one users wire into Watermill's router and CQRS
// event bus) and Subscriber (consumer groups on), on the embedded server. The
// suite publishes arbitrary payloads ("x", "42", nil), and MessagePublisher
// carries events only; so each suite message is wrapped into an event on the
// way in (suitePublisher: UUID = event id, hence Nats-Msg-Id; payload in the
// event's data; metadata as headers) and unwrapped on the way out
// (suiteUnmarshaler, on the library's marshaler). Everything between runs as
// shipped: MessagePublisher's pipelined batch publish with its acks, the
// Subscriber's durable pull consumers, settlement and shutdown.

// conformanceFeatures is what the Subscriber promises, flag by flag.
func conformanceFeatures() tests.Features {
	return tests.Features{
		// A consumer group is a durable consumer: subscribers with the same
		// Durable share its messages, another Durable gets all of them.
		ConsumerGroups: true,
		// At-least-once: a Nack, an AckWait expiry or a Close with messages
		// in flight hands messages back, and a lost ack means a redelivery.
		ExactlyOnceDelivery: false,
		// A durable consumer delivers in stream order, and with Concurrency 1
		// the next message is sent only after the previous one is settled
		// (TestNoAck checks exactly that). Redeliveries break the order, and
		// so do several subscribers sharing a durable, hence ...
		GuaranteedOrder: true,
		// ... the order is promised for one subscriber only.
		GuaranteedOrderWithSingleSubscriber: true,
		// Messages live in the stream, across Subscriber instances.
		Persistent: true,
		// Subscribers without a group share the durable derived from the
		// topic: a new one continues where the durable is, it does not replay
		// the stream (that is what a new Durable, i.e. a group, does).
		NewSubscriberReceivesOldMessages: false,
		// No command can restart an in-process server; reconnects are covered
		// by TestSubscriber_survives_a_server_restart with embedded Restart.
		RestartServiceCommand: nil,
		// Any number of Subscribers run side by side.
		RequireSingleInstance: false,
		// A context does not travel over NATS.
		ContextPreserved: false,
		// The full sizes (5000 messages over 50 subscribers, 10000 published
		// messages...) run in well under a minute on 2 cores under -race.
		ForceShort: false,
	}
}

// suiteEvent carries a suite payload (any bytes) in an event's data.
type suiteEvent struct {
	Payload []byte `json:"payload"`
}

// suitePublisher wraps each suite message into an event and publishes them
// all in one call of the library's publisher.
type suitePublisher struct{ *jetstream.MessagePublisher }

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
	return p.MessagePublisher.Publish(topic, wrapped...)
}

// suiteUnmarshaler decodes with the library's marshaler (the Subscriber's
// default), then gives the message the suite's payload back.
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

// suiteSubscriber adapts Close to the suite, which requires a nil error even
// when it closes with a message it deliberately never acked
// (TestMessageCtx): the Subscriber nacks such a message at the deadline and
// says so with ErrCloseTimeout. Only that error is forgiven.
type suiteSubscriber struct{ *subscriber.Subscriber }

func (s suiteSubscriber) Close() error {
	if err := s.Subscriber.Close(); err != nil && !errors.Is(err, transport.ErrCloseTimeout) {
		return err
	}
	return nil
}

// conformanceConfig is the Subscriber config of the suite: one memory stream
// per topic (the suite's topics are valid stream names), created by
// SubscribeInitialize.
func conformanceConfig(js natsjs.JetStream, durable string) subscriber.Config {
	return subscriber.Config{
		Durable:        durable,
		StreamForTopic: func(topic string) string { return topic },
		InitializeStream: func(ctx context.Context, stream, topic string) error {
			_, err := js.CreateOrUpdateStream(ctx, natsjs.StreamConfig{Name: stream, Subjects: []string{topic}, Storage: natsjs.MemoryStorage})
			return err
		},
		Unmarshal: suiteUnmarshaler{}.Unmarshal,
		// The suite expects a Nack'd message back at once (like gochannel);
		// the delay policy has its own tests.
		NakDelay: func(uint64) time.Duration { return 0 },
		// Only TestMessageCtx closes with an unsettled message; waiting for
		// it longer proves nothing.
		CloseTimeout: time.Second,
	}
}

func conformanceConstructors(srv *eventstest.Server) (tests.PubSubConstructor, tests.ConsumerGroupPubSubConstructor) {
	withGroup := func(t *testing.T, group string) (message.Publisher, message.Subscriber) {
		t.Helper()
		nc := srv.Connect(t)
		pub, err := jetstream.NewMessagePublisher(nc)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := jetstream.NewTransport(nc, jetstream.TransportConfig{})
		if err != nil {
			t.Fatal(err)
		}
		js, err := natsjs.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		sub, err := subscriber.New(tr, conformanceConfig(js, group))
		if err != nil {
			t.Fatal(err)
		}
		return suitePublisher{pub}, suiteSubscriber{sub}
	}
	return func(t *testing.T) (message.Publisher, message.Subscriber) { return withGroup(t, "") }, withGroup
}

func TestPubSubConformance_MessagePublisher_and_Subscriber(t *testing.T) {
	srv := eventstest.NewServer(t)
	pubSub, withGroup := conformanceConstructors(srv)
	tests.TestPubSub(t, conformanceFeatures(), pubSub, withGroup)
}
